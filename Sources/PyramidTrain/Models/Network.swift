import Foundation
import PyramidLoader

/// A classification network: a stack of layers ending in global average pooling and a linear
/// classifier, so any input size works.
///
/// Models (docs/design.md, "MixSize"): CIFAR-style ResNet-20/32/44/56 (3×3 stem with 16 channels,
/// three stages of BasicBlocks with 16/32/64 channels, `(depth−2)/6` blocks each) and a small
/// plain CNN. Initialization: convolutions N(0, √(2/(k²·Cout))), BatchNorm γ=1 β=0 (the last γ
/// of each residual block 0 with `zeroInitResidual`, as the MixSize reference), classifier
/// N(0, 0.01²) and bias 0. Every BatchNorm holds `banks` banks (RS-Nets' private BatchNorm).
public final class Network {
    /// Which architecture.
    public enum Architecture: Equatable, Sendable, CustomStringConvertible {
        case resnet(depth: Int)
        case plain
        public var description: String {
            switch self { case .resnet(let d): "resnet\(d)"; case .plain: "plain" }
        }
        /// Parses `resnet20`, `resnet32`, `resnet44`, `resnet56`, `resnet8`, `plain`.
        public init?(name: String) {
            if name == "plain" { self = .plain; return }
            guard name.hasPrefix("resnet"), let d = Int(name.dropFirst(6)), d >= 8, (d - 2) % 6 == 0 else { return nil }
            self = .resnet(depth: d)
        }
    }

    /// Everything that defines a model's shape and initial weights.
    public struct Configuration: Codable, Equatable, Sendable {
        public var architecture: String
        public var inputChannels: Int
        public var classes: Int
        public var banks: Int
        public var shortcut: String
        public var zeroInitResidual: Bool
        public var seed: UInt64
        /// Ensemble weights α (MRED), one per training size; 0 for none.
        public var ensemble: Int
        public init(architecture: String = "resnet20", inputChannels: Int, classes: Int, banks: Int = 1,
                    shortcut: BasicBlock.Shortcut = .projection, zeroInitResidual: Bool = false, seed: UInt64 = 0, ensemble: Int = 0) {
            self.architecture = architecture; self.inputChannels = inputChannels; self.classes = classes
            self.banks = banks; self.shortcut = shortcut.rawValue; self.zeroInitResidual = zeroInitResidual; self.seed = seed
            self.ensemble = ensemble
        }
    }

    public let configuration: Configuration
    public let store = ParameterStore()
    public let context = ModelContext()
    let layers: [Layer]
    let convolutions: [Conv2D]
    /// How every convolution of the model computes (algorithm, chunk sizes); the defaults unless set.
    public var convolutionTuning = Conv2D.Tuning() {
        didSet { for conv in convolutions { conv.tuning = convolutionTuning } }
    }
    let batchNorms: [BatchNorm2D]
    let classifier: Linear
    /// The BatchNorm bank of training size `index` of a parallel schedule: its own, or 0 when the
    /// sizes share one BatchNorm.
    public func bank(_ index: Int) -> Int { configuration.banks > 1 ? index : 0 }

    /// Offset of the ensemble weights α in the parameter block, if the model has them.
    public let alphaOffset: Int?
    /// The input of each branch: a layer keeps its branch's input for backward, so branches must
    /// not share one (a parallel step sets every size's input before the first backward).
    private var inputs = BranchTensors()
    private var gradInput: Tensor?

    /// - Throws: ``TrainError/unknownArchitecture(name:)``, ``TrainError/unknownShortcut(name:)``.
    public init(_ configuration: Configuration) throws {
        self.configuration = configuration
        guard let arch = Architecture(name: configuration.architecture) else {
            throw TrainError.unknownArchitecture(name: configuration.architecture)
        }
        guard let shortcut = BasicBlock.Shortcut(rawValue: configuration.shortcut) else {
            throw TrainError.unknownShortcut(name: configuration.shortcut)
        }
        var initializer = Initializer(seed: RandomKey.mix(configuration.seed, 0x696E_6974))
        let banks = max(1, configuration.banks)
        var layers: [Layer] = [], convs: [Conv2D] = [], bns: [BatchNorm2D] = []
        var channels: Int
        switch arch {
        case .resnet(let depth):
            let stem = Conv2D(store, configuration.inputChannels, 16, kernel: 3, padding: 1, initializer: &initializer, name: "stem")
            let bn = BatchNorm2D(store, context, channels: 16, banks: banks, name: "stem.bn")
            bn.fusedReLU = true
            layers += [stem, bn]; convs.append(stem); bns.append(bn)
            channels = 16
            let blocks = (depth - 2) / 6
            for (stage, width) in [16, 32, 64].enumerated() {
                for b in 0..<blocks {
                    let block = BasicBlock(store, context, channels, width, stride: stage > 0 && b == 0 ? 2 : 1, banks: banks,
                                           shortcut: shortcut, zeroInitResidual: configuration.zeroInitResidual,
                                           initializer: &initializer, name: "stage\(stage + 1).block\(b + 1)")
                    layers.append(block); convs += block.convolutions
                    bns += [block.bn1, block.bn2] + (block.projection.map { [$0.1] } ?? [])
                    channels = width
                }
            }
        case .plain:
            channels = configuration.inputChannels
            for (i, width) in [32, 64].enumerated() {
                let conv = Conv2D(store, channels, width, kernel: 3, padding: 1, initializer: &initializer, name: "conv\(i + 1)")
                let bn = BatchNorm2D(store, context, channels: width, banks: banks, name: "conv\(i + 1).bn")
                bn.fusedReLU = true
                layers += [conv, bn, Pool2D(.max)]; convs.append(conv); bns.append(bn)
                channels = width
            }
        }
        // The first convolution's input gradient would be the gradient of the data: not needed.
        convs.first?.computesInputGradient = false
        for conv in convs { conv.context = context }
        layers.append(GlobalAveragePool())
        classifier = Linear(store, channels, configuration.classes, std: 0.01, initializer: &initializer, name: "fc")
        layers.append(classifier)
        // RS-Nets initialize α to ones: softmax(α) starts uniform.
        alphaOffset = configuration.ensemble > 0 ? store.add(Array(repeating: 1, count: configuration.ensemble), kind: .alpha, name: "alpha") : nil
        self.layers = layers; convolutions = convs; batchNorms = bns
        store.finalize()
    }

    /// Multiply-adds of one forward pass of one `size × size` image (convolutions and classifier),
    /// measured by running one blank image through the network in evaluation mode.
    public func macs(size: Int) -> Int {
        let saved = (context.training, context.bank)
        context.training = false
        context.bank = .bank(0)
        defer { (context.training, context.bank) = saved }
        let probe = Tensor(shape: [configuration.inputChannels, 1, size, size])
        _ = forward(probe, branch: Branch.macsProbe)
        return convolutions.reduce(0) { $0 + $1.lastMacs } + classifier.inFeatures * classifier.outFeatures
    }

    /// Branches of forward passes that are not training steps, numbered from the top so that they
    /// never disturb a training branch's caches (training uses branches 0..<sizes).
    enum Branch {
        /// ``macs(size:)``'s blank image.
        static let macsProbe = 63
        /// ``Evaluator``'s test batches.
        static let evaluation = 62
        /// BatchNorm calibration batches.
        static let calibration = 61
        /// The RS-Nets ensemble's per-size passes.
        static let ensemble = 60
    }

    /// Loads a loader batch (`(N, C, s, s)`, or `(C, N, s, s)` with `layout: .channelsFirst`) into
    /// the input of `branch` in the network's layout `(C, N, s, s)`; it stays valid until the next
    /// input of the same branch.
    public func setInput(_ images: UnsafeBufferPointer<Float>, count n: Int, channels c: Int, size s: Int, branch: Int = 0,
                         layout: InputLayout = .samplesFirst) -> Tensor {
        let input = inputs(branch)
        input.reshape([c, n, s, s])
        switch layout {
        case .samplesFirst: Kernels.samplesToChannels(images.baseAddress!, count: n, channels: c, plane: s * s, into: input.data)
        case .channelsFirst: input.data.update(from: images.baseAddress!, count: c * n * s * s)
        }
        return input
    }

    /// How images given to ``setInput(_:count:channels:size:branch:layout:)`` are laid out.
    public enum InputLayout: Sendable {
        /// `(N, C, H, W)`, a loader's ``OutputFormat/float32``: transposed on the way in.
        case samplesFirst
        /// `(C, N, H, W)`, a loader's ``OutputFormat/float32ChannelMajor``: the network's own
        /// layout, copied as it is.
        case channelsFirst
    }

    /// Logits `(N, classes)` of `x` (`(C, N, H, W)`) on `branch`.
    public func forward(_ x: Tensor, branch: Int = 0) -> Tensor {
        var t = x
        for layer in layers { t = layer.forward(t, branch: branch) }
        return t
    }

    /// Backpropagates `gradLogits` through `branch`, accumulating parameter gradients. The returned
    /// tensor is undefined: the first convolution skips its input gradient.
    @discardableResult
    public func backward(_ gradLogits: Tensor, branch: Int = 0) -> Tensor {
        var g = gradLogits
        for layer in layers.reversed() { g = layer.backward(g, branch: branch) }
        return g
    }

    /// softmax(α), largest size first, if the model has ensemble weights.
    public var ensembleWeights: [Float]? {
        guard let a = alphaOffset else { return nil }
        let v = (0..<configuration.ensemble).map { store.values[a + $0] }
        let m = v.max()!, e = v.map { exp($0 - m) }, s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Resets every BatchNorm's running statistics, before ``ModelContext/calibrating``.
    public func resetBatchNormStatistics() {
        for bn in batchNorms { bn.resetStatistics() }
        context.calibrationBatches = 0
    }
}

/// The residual BasicBlock of CIFAR ResNets (He et al. 2016): `relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))`.
///
/// The shortcut is the identity when shapes agree; otherwise a 1×1 convolution with BatchNorm
/// (option B, as the MixSize reference's `models/resnet.py`) or the parameter-free subsample and
/// zero-pad of the original CIFAR ResNet (option A).
public final class BasicBlock: Layer {
    /// The shortcut used when the block changes shape.
    public enum Shortcut: String, Sendable, CaseIterable {
        /// 1×1 convolution (stride) + BatchNorm.
        case projection
        /// Subsample by the stride and pad channels with zeros.
        case pad
    }

    let conv1: Conv2D, bn1: BatchNorm2D, conv2: Conv2D, bn2: BatchNorm2D
    let projection: (Conv2D, BatchNorm2D)?
    let padShortcut: Bool
    let stride: Int, inChannels: Int, outChannels: Int
    private var outputs = BranchTensors(), masked = BranchTensors(), gradInputs = BranchTensors(), padded = BranchTensors()
    private var inputs: [Int: Tensor] = [:]

    init(_ store: ParameterStore, _ context: ModelContext, _ inChannels: Int, _ outChannels: Int, stride: Int, banks: Int,
         shortcut: Shortcut, zeroInitResidual: Bool, initializer: inout Initializer, name: String) {
        self.stride = stride; self.inChannels = inChannels; self.outChannels = outChannels
        conv1 = Conv2D(store, inChannels, outChannels, kernel: 3, stride: stride, padding: 1, initializer: &initializer, name: "\(name).conv1")
        bn1 = BatchNorm2D(store, context, channels: outChannels, banks: banks, name: "\(name).bn1")
        bn1.fusedReLU = true
        conv2 = Conv2D(store, outChannels, outChannels, kernel: 3, stride: 1, padding: 1, initializer: &initializer, name: "\(name).conv2")
        bn2 = BatchNorm2D(store, context, channels: outChannels, banks: banks, zeroGamma: zeroInitResidual, name: "\(name).bn2")
        let reshapes = stride != 1 || inChannels != outChannels
        if reshapes && shortcut == .projection {
            projection = (Conv2D(store, inChannels, outChannels, kernel: 1, stride: stride, initializer: &initializer, name: "\(name).shortcut"),
                          BatchNorm2D(store, context, channels: outChannels, banks: banks, name: "\(name).shortcut.bn"))
        } else {
            projection = nil
        }
        padShortcut = reshapes && shortcut == .pad
    }

    var convolutions: [Conv2D] { [conv1, conv2] + (projection.map { [$0.0] } ?? []) }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        inputs[branch] = x
        let main = bn2.forward(conv2.forward(bn1.forward(conv1.forward(x, branch: branch), branch: branch), branch: branch), branch: branch)
        let skip: Tensor
        if let (conv, bn) = projection {
            skip = bn.forward(conv.forward(x, branch: branch), branch: branch)
        } else if padShortcut {
            skip = padded(branch)
            skip.reshape(main.shape)
            paddedShortcut(x.shape, main.shape).forward(x.data, into: skip.data, outCount: skip.count)
        } else {
            skip = x
        }
        let y = outputs(branch)
        y.reshape(main.shape)
        LayerProfile.time(bn1.context.profile, LayerProfile.normalizationRow, backward: false) {
            Kernels.addReLU(main.data, skip.data, into: y.data, count: y.count)
        }
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        // The final ReLU's mask (the block's output > 0) is applied inside bn2's and the shortcut's
        // backward passes instead of in a pass of its own.
        let dy = gradOutput, mask = UnsafePointer(outputs(branch).data)
        let gMain = conv1.backward(bn1.backward(conv2.backward(bn2.backward(dy, branch: branch, mask: mask), branch: branch), branch: branch), branch: branch)
        let x = inputs[branch]!
        let gx = gradInputs(branch)
        gx.reshape(x.shape)
        let profile = bn1.context.profile
        if let (conv, bn) = projection {
            let gSkip = conv.backward(bn.backward(dy, branch: branch, mask: mask), branch: branch)
            LayerProfile.time(profile, LayerProfile.normalizationRow, backward: true) {
                Kernels.add(gMain.data, gSkip.data, into: gx.data, count: gx.count)
            }
        } else if padShortcut {
            let g = masked(branch)
            g.reshape(dy.shape)
            LayerProfile.time(profile, LayerProfile.normalizationRow, backward: true) {
                Kernels.maskedGradient(dy.data, mask: mask, into: g.data, count: g.count)
                gx.copy(from: gMain)
                paddedShortcut(x.shape, g.shape).backward(g.data, adding: gx.data)
            }
        } else {
            LayerProfile.time(profile, LayerProfile.normalizationRow, backward: true) {
                Kernels.maskedGradient(dy.data, mask: mask, adding: gMain.data, into: gx.data, count: gx.count)
            }
        }
        return gx
    }

    /// The option-A shortcut from an input of `inShape` to an output of `outShape` (both `(C, N, H, W)`).
    private func paddedShortcut(_ inShape: [Int], _ outShape: [Int]) -> Kernels.PaddedShortcut {
        Kernels.PaddedShortcut(inChannels: inChannels, batch: inShape[1], height: inShape[2], width: inShape[3],
                               outHeight: outShape[2], outWidth: outShape[3], stride: stride, offset: (outChannels - inChannels) / 2)
    }
}

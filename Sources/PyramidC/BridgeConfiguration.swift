#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache
import PyramidLoader

/// The JSON configuration of `pyramid_open`, checked completely before the loader sees it: a Swift
/// precondition inside a host process (a Python interpreter) would kill it, so every value a
/// caller can pass is either accepted here or refused with a message naming its key.
struct BridgeConfiguration {
    static let keys: Set<String> = ["schedule", "batch_size", "seed", "epochs", "augment", "rank", "world_size", "workers",
                                    "prefetch", "output", "shuffle", "drop_last", "corrupt_records", "order"]
    /// Bounds that keep every size product (images × channels × side² × 4 bytes) far from overflow.
    static let maxBatch = 1 << 20, maxThreads = 1024, maxEpochs = 1 << 24, maxWorld = 1 << 20
    static let maxBatchBytes = 1 << 40

    var loader: LoaderConfiguration

    /// - Throws: ``BridgeError/invalid(key:reason:)``, or the loader's own errors for a schedule or
    ///   augmentation that does not parse or does not fit the cache.
    init(json: String?, manifest: Manifest) throws {
        var object: [String: JSONValue] = [:]
        if let json, !json.trimmingWhitespace().isEmpty {
            guard let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) else {
                throw BridgeError.invalid(key: "configuration", reason: "not valid JSON")
            }
            guard case .object(let dictionary) = parsed else {
                throw BridgeError.invalid(key: "configuration", reason: "must be a JSON object")
            }
            object = dictionary
        }
        if let unknown = object.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw BridgeError.invalid(key: unknown, reason: "unknown key (known: \(Self.keys.sorted().joined(separator: ", ")))")
        }
        let values = Values(object)
        let largest = manifest.levelSizes.max() ?? 1
        let schedule = try ScheduleParser.parse(try values.string("schedule") ?? "fixed:\(largest)", largestLevel: largest)
        let batch = try values.int("batch_size", 1...Self.maxBatch) ?? 128
        let epochs = try values.int("epochs", 1...Self.maxEpochs) ?? 1
        let world = try values.int("world_size", 1...Self.maxWorld) ?? 1
        let rank = try values.int("rank", 0...(world - 1)) ?? 0
        let workers = try values.int("workers", 1...Self.maxThreads)
        let prefetch = try values.int("prefetch", 1...(4 * Self.maxThreads))
        let shuffle = try values.bool("shuffle") ?? true
        let augmentation: Augmentation? = try values.string("augment").map { try Augmentation.parse($0) }
        let output: OutputFormat
        switch try values.string("output") ?? "float32" {
        case "float32": output = .float32
        case "uint8": output = .uint8
        case let other: throw BridgeError.invalid(key: "output", reason: "'\(other)' is not float32 or uint8")
        }
        let policyName = try values.string("corrupt_records") ?? "fail"
        guard let policy = CorruptRecordPolicy(rawValue: policyName) else {
            throw BridgeError.invalid(key: "corrupt_records", reason: "'\(policyName)' is not fail or substitute")
        }
        let order: SampleOrder? = try values.string("order").map { text in
            guard let o = SampleOrder(text) else { throw BridgeError.invalid(key: "order", reason: "'\(text)' is not global, shards or shards:W") }
            return o
        }
        for size in schedule.sizes { try Loader.checkServable(size: size, manifest: manifest) }
        // The largest batch a step can carry: MixSize scales the base batch up for small sizes,
        // at most by (largest / smallest)², and D+ duplicates; bound the bytes generously.
        let side = max(schedule.sizes.max() ?? largest, largest)
        let smallest = max(1, schedule.sizes.min() ?? side)
        let scale = (side * side) / (smallest * smallest) + 1
        let (bytes, overflow) = batch.multipliedReportingOverflow(by: scale * side * side * manifest.channels * 4 * max(1, schedule.sizes.count))
        guard !overflow, bytes <= Self.maxBatchBytes else {
            throw BridgeError.invalid(key: "batch_size", reason: "\(batch) images at up to \(side) px would need more than \(Self.maxBatchBytes >> 30) GiB per batch")
        }
        loader = LoaderConfiguration(schedule: schedule, batchSize: batch, seed: try values.seed() ?? 0, rank: rank, worldSize: world,
                                     epochs: epochs, augmentation: augmentation, output: output, prefetch: prefetch, workers: workers,
                                     corruptRecords: policy, shuffle: shuffle, dropLast: try values.bool("drop_last"), order: order)
    }

    /// Typed reads of the JSON values, each refusing a wrong type or range by key.
    private struct Values {
        let object: [String: JSONValue]
        init(_ object: [String: JSONValue]) { self.object = object }

        func present(_ key: String) -> JSONValue? {
            guard let v = object[key], v != .null else { return nil }
            return v
        }
        func string(_ key: String) throws -> String? {
            guard let v = present(key) else { return nil }
            guard case .string(let s) = v else { throw BridgeError.invalid(key: key, reason: "must be a string") }
            return s
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = present(key) else { return nil }
            guard case .bool(let b) = v else { throw BridgeError.invalid(key: key, reason: "must be true or false") }
            return b
        }
        /// An integer in `range`; a fraction, a string or a value out of range is refused.
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = present(key) else { return nil }
            let value: Int?
            switch v {
            case .integer(let i): value = Int(exactly: i)
            case .unsigned(let u): value = Int(exactly: u)
            default: throw BridgeError.invalid(key: key, reason: "must be an integer")
            }
            guard let value, range.contains(value) else {
                throw BridgeError.invalid(key: key, reason: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        func seed() throws -> UInt64? {
            guard let v = present("seed") else { return nil }
            switch v {
            case .integer(let i) where i >= 0: return UInt64(i)
            case .unsigned(let u): return u
            default: throw BridgeError.invalid(key: "seed", reason: "must be an integer in 0...\(UInt64.max)")
            }
        }
    }
}

/// A JSON value, decoded without Foundation's untyped `JSONSerialization` (whose numbers and
/// booleans cannot be told apart reliably).
enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), integer(Int64), unsigned(UInt64), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let u = try? c.decode(UInt64.self) { self = .unsigned(u) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

/// Errors of the C layer itself; the loader's and cache's errors pass through with their own text.
enum BridgeError: Error, CustomStringConvertible {
    /// A configuration key has a wrong type or value.
    case invalid(key: String, reason: String)
    /// A call the handle's state does not allow (a closed loader, a released batch, no epoch started).
    case misuse(String)

    var description: String {
        switch self {
        case .invalid(let key, let reason): return "\(key): \(reason)"
        case .misuse(let message): return message
        }
    }
}

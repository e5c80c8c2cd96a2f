import Foundation

/// A source item that was refused while listing the source, before any decoding.
public struct SkippedItem: Codable, Equatable, Sendable {
    /// The file (or `file#record`) that was skipped.
    public var path: String
    /// Why, in words a person can act on.
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// An image file and its label.
public struct FileItem: Equatable, Sendable {
    public var path: String
    public var label: Int
    public init(path: String, label: Int) { self.path = path; self.label = label }
}

/// Many same-sized 8-bit images held in memory (CIFAR, IDX): interleaved HWC, one after another.
public struct RasterSet: Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]
    public var labels: [Int]
    /// Names a record in reports, e.g. `train-images-idx3-ubyte.gz#123`.
    public var recordName: @Sendable (Int) -> String

    public var count: Int { labels.count }
    public var imageBytes: Int { width * height * channels }

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8], labels: [Int], recordName: @escaping @Sendable (Int) -> String) {
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels; self.labels = labels; self.recordName = recordName
    }
}

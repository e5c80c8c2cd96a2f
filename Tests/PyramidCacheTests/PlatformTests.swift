import Foundation
@testable import PyramidCache
import Testing

/// The helpers that let the reading side link FoundationEssentials alone, against what Foundation
/// (NSString, String(format:), trimmingCharacters, NSCondition) gives.
@Suite struct PlatformTests {
    @Test(arguments: ["a/b/c", "a/b/c/", "/c", "/", "a//b", "/a/b", "shard-00000/level-224.mdb", "./x", "//x"])
    func pathNamesAreNSStrings(_ path: String) {
        #expect(PathName.directory(path) == (path as NSString).deletingLastPathComponent, "\(path)")
        #expect(PathName.last(path) == (path as NSString).lastPathComponent, "\(path)")
        for other in ["data.mdb", "x/y"] where !path.isEmpty {
            #expect(PathName.join(path, other) == (path as NSString).appendingPathComponent(other), "\(path) + \(other)")
        }
    }

    /// A bare name (this Foundation's NSString traps on its deletingLastPathComponent).
    @Test func aBareNameHasNoDirectory() {
        #expect(PathName.directory("c") == "" && PathName.last("c") == "c" && PathName.join("", "c") == "c")
    }

    @Test func trimmingAndFormattingAreFoundations() {
        for text in ["  a b \t", "\n\r\nx\n", "", "   ", "\"etag\"", "x"] {
            #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(text.debugDescription)")
            #expect(text.trimmingBlanks() == text.trimmingCharacters(in: .whitespaces), "\(text.debugDescription)")
            #expect(text.trimming(["\""]) == text.trimmingCharacters(in: CharacterSet(charactersIn: "\"")), "\(text.debugDescription)")
        }
        for v in [0.0, 1.25, 1.35, -2.05, 123456.789, 1e-9] {
            #expect(formatFixed(v, 1) == String(format: "%.1f", v))
        }
        #expect(hexDigits([0, 1, 0xAB, 0xFF]) == "0001abff")
    }

    @Test func aConditionWakesAWaiterAndTimesOut() {
        let condition = Condition()
        final class Flag: @unchecked Sendable { var set = false }
        let flag = Flag()
        startThread(name: "test") {
            sleepSeconds(0.05)
            condition.lock(); flag.set = true; condition.broadcast(); condition.unlock()
        }
        condition.lock()
        while !flag.set { condition.wait() }
        #expect(flag.set)
        let started = Date()
        #expect(condition.wait(seconds: 0.1) == false)
        #expect(Date().timeIntervalSince(started) >= 0.09)
        condition.unlock()
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Parses the command-line form of a schedule.
///
/// ```
/// fixed:28
/// trd:28,14,p=0.5[,milestones=82+123][,guard=2][,final=2]
/// mixsize:14,21,28,42@0.2,0.3,0.3,0.2[,mode=B+|D+][,sampling=partition|iid][,base=28][,duplicates=1]
/// parallel:28,24,20,16,12
/// progressive:16,28,start=2,end=8[,multiple=4]
/// ```
public enum ScheduleParser {
    /// The syntax, for help texts.
    public static let syntax = """
        fixed:S | trd:R,r,p=P[,milestones=M1+M2][,guard=2][,final=2] | \
        mixsize:S1,S2,…@P1,P2,…[,mode=B+|D+][,sampling=partition|iid][,base=S0][,duplicates=D0] | \
        parallel:S1,S2,… | progressive:FROM,TO,start=E1,end=E2[,multiple=4]
        """

    /// Parses `spec`.
    /// - Parameters:
    ///   - spec: the schedule string.
    ///   - largestLevel: the cache's largest level: MixSize's base size when `base=` is not given
    ///     (the largest level not above the largest size; without it, the listed size nearest `√E[s²]`).
    /// - Throws: ``LoaderError/invalidSchedule(spec:reason:)`` naming what is wrong.
    public static func parse(_ spec: String, largestLevel: Int? = nil) throws -> any ResolutionSchedule {
        func fail(_ reason: String) -> LoaderError { .invalidSchedule(spec: spec, reason: reason) }
        guard let colon = spec.firstIndex(of: ":") else {
            throw fail("expected KIND:ARGUMENTS, e.g. fixed:28 (kinds: fixed, trd, mixsize, parallel, progressive)")
        }
        let kind = spec[..<colon].lowercased()
        let body = String(spec[spec.index(after: colon)...])
        var positional: [String] = [], afterAt: [String] = [], keyed: [String: String] = [:]
        var seenAt = false
        for raw in body.split(separator: ",", omittingEmptySubsequences: false) {
            let token = raw.trimmingBlanks()
            if token.isEmpty { throw fail("empty item (two commas in a row?)") }
            if let eq = token.firstIndex(of: "=") {
                let key = token[..<eq].lowercased(), value = String(token[token.index(after: eq)...])
                if keyed[key] != nil { throw fail("\(key)= given twice") }
                keyed[key] = value
            } else if let at = token.firstIndex(of: "@") {
                if seenAt { throw fail("more than one @") }
                seenAt = true
                positional.append(String(token[..<at])); afterAt.append(String(token[token.index(after: at)...]))
            } else if seenAt { afterAt.append(token) } else { positional.append(token) }
        }
        func size(_ s: String) throws -> Int {
            guard let v = Int(s), v > 0 else { throw fail("'\(s)' is not a positive size") }
            return v
        }
        func int(_ key: String, _ def: Int?) throws -> Int {
            guard let s = keyed.removeValue(forKey: key) else {
                if let def { return def }
                throw fail("\(key)= is required")
            }
            guard let v = Int(s), v >= 0 else { throw fail("\(key)=\(s) is not a non-negative integer") }
            return v
        }
        func finish() throws {
            if let key = keyed.keys.sorted().first { throw fail("unknown option \(key)= for \(kind)") }
        }
        let schedule: any ResolutionSchedule
        switch kind {
        case "fixed":
            guard positional.count == 1, !seenAt else { throw fail("fixed takes one size, e.g. fixed:28") }
            schedule = Fixed(size: try size(positional[0]))
        case "trd":
            guard positional.count == 2, !seenAt else { throw fail("trd takes the full and the reduced size, e.g. trd:28,14,p=0.5") }
            let full = try size(positional[0]), reduced = try size(positional[1])
            guard reduced < full else { throw fail("the reduced size \(reduced) must be smaller than the full size \(full)") }
            guard let ps = keyed.removeValue(forKey: "p") else { throw fail("p= (participation rate) is required") }
            guard let p = Double(ps), p >= 0, p <= 1 else { throw fail("p=\(ps) must be a number in 0...1") }
            var milestones: [Int] = []
            if let m = keyed.removeValue(forKey: "milestones") {
                milestones = try m.split(separator: "+").map { s in
                    guard let v = Int(s), v >= 0 else { throw fail("milestones=\(m): expected epochs joined by +, e.g. 82+123") }
                    return v
                }
            }
            schedule = TemporalDecrement(full: full, reduced: reduced, participation: p, milestones: milestones,
                                         guardWidth: try int("guard", 2), finalFullEpochs: try int("final", 2))
        case "mixsize":
            guard seenAt else { throw fail("mixsize needs sizes@probabilities, e.g. mixsize:14,21,28,42@0.2,0.3,0.3,0.2") }
            let sizes = try positional.map(size)
            let probs = try afterAt.map { s -> Double in
                guard let v = Double(s), v >= 0 else { throw fail("'\(s)' is not a probability") }
                return v
            }
            guard sizes.count == probs.count else { throw fail("\(sizes.count) sizes but \(probs.count) probabilities") }
            guard Set(sizes).count == sizes.count else { throw fail("a size is listed twice") }
            let total = probs.reduce(0, +)
            guard abs(total - 1) < 1e-6 else { throw fail("probabilities add up to \(total), not 1") }
            let modeText = keyed.removeValue(forKey: "mode") ?? "B+"
            guard let mode = MixSize.Mode(rawValue: modeText.uppercased()) else { throw fail("mode=\(modeText): expected B+ or D+") }
            let samplingText = keyed.removeValue(forKey: "sampling") ?? "partition"
            guard let sampling = MixSize.Sampling(rawValue: samplingText.lowercased()) else {
                throw fail("sampling=\(samplingText): expected partition or iid")
            }
            var base: Int
            if let b = keyed.removeValue(forKey: "base") { base = try size(b) } else if let largestLevel, let b = sizes.filter({ $0 <= largestLevel }).max() {
                base = b
            } else {
                let rms = MixSize.rootMeanSquare(sizes: sizes, probabilities: probs)
                base = sizes.min(by: { abs(Double($0) - rms) < abs(Double($1) - rms) })!
            }
            schedule = MixSize(sizes: sizes, probabilities: probs, mode: mode, sampling: sampling, baseSize: base,
                               baseDuplicates: max(1, try int("duplicates", 1)))
        case "parallel":
            guard positional.count >= 1, !seenAt else { throw fail("parallel takes sizes, e.g. parallel:28,24,20,16,12") }
            let sizes = try positional.map(size)
            guard Set(sizes).count == sizes.count else { throw fail("a size is listed twice") }
            schedule = Parallel(sizes: sizes)
        case "progressive":
            guard positional.count == 2, !seenAt else { throw fail("progressive takes FROM,TO sizes, e.g. progressive:16,28,start=2,end=8") }
            let from = try size(positional[0]), to = try size(positional[1])
            let start = try int("start", nil), end = try int("end", nil)
            guard end >= start else { throw fail("end=\(end) is before start=\(start)") }
            schedule = Progressive(from: from, to: to, startEpoch: start, endEpoch: end, multiple: max(1, try int("multiple", 4)))
        default:
            throw fail("unknown kind '\(kind)' (kinds: fixed, trd, mixsize, parallel, progressive)")
        }
        try finish()
        return schedule
    }
}

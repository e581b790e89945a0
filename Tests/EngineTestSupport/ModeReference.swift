// ModeReference.swift: `VoteAggregator.mode` by its definition, scanned literally; the
// reference the fast `mode` is tested against. Test support only: not part of Engine.
import Engine

extension VoteAggregator {
    /// The definition executed literally, from the aggregator's public parameters only: for
    /// each of `candidates` evenly spaced candidates on [min vote, max vote] count the votes
    /// within `threshold`; take the middle candidate among those with the most; answer the mean
    /// of its inliers. O(n * candidates); allocates.
    public func modeScan(_ votes: UnsafeBufferPointer<Float>) -> VoteResult {
        let n = votes.count
        guard n > 0 else { return VoteResult(delay: 0, count: 0, inliers: 0) }
        var lo = Double(votes[0]), hi = lo
        for v in votes { let d = Double(v); if d < lo { lo = d }; if d > hi { hi = d } }
        func candidate(_ i: Int) -> Double {
            candidates == 1 ? lo : lo + (hi - lo) * Double(i) / Double(candidates - 1)
        }
        var counts = [Int](repeating: 0, count: candidates)
        for i in 0..<candidates {
            let c = candidate(i)
            for v in votes where abs(Double(v) - c) <= threshold { counts[i] += 1 }
        }
        let best = counts.max()!
        let tied = counts.indices.filter { counts[$0] == best }
        let c = candidate(tied[tied.count / 2])
        var s = 0.0, k = 0
        for v in votes where abs(Double(v) - c) <= threshold { s += Double(v); k += 1 }
        return VoteResult(delay: k > 0 ? s / Double(k) : c, count: n, inliers: k)
    }
}

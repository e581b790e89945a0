// GccMaskDecoding.swift: how the learned weighting's scores over the lag grid become one delay
// (docs/gccmask-spec.md, "Decoding"); the engine side of `decode` in train/tded_train/gccmask.py.
import Foundation

/// The rule that turns a network's (or an ensemble's) logits over the lag grid into a delay.
/// A model set (version 4) names it per member; earlier files always use `argmax`.
public enum GccMaskDecoding: Equatable, Sendable {
    /// The grid point with the largest logit, refined by a parabola through it and its
    /// neighbours: the most probable delay.
    case argmax
    /// The median of the posterior `softmax(logits / temperature)` over the search range, each
    /// grid point's mass spread evenly over its cell: the delay with the smallest expected
    /// absolute error. With a broad posterior (short or noisy clips) it hedges toward the middle
    /// of the evidence; with two separate peaks it lies between them.
    case median(temperature: Double)

    /// The temperatures a model may name.
    public static let temperatureRange: ClosedRange<Double> = 0.05...20

    /// The posterior median of `v` (log-probabilities or logits over the grid, any offset)
    /// within the points in range, and the grid point whose cell holds it; nil when no point
    /// is in range or the values are not finite. `scratch` holds `count` doubles.
    static func median(_ v: UnsafePointer<Double>, inRange: UnsafePointer<Bool>, count G: Int,
                       gridStep: Double, maxLag: Int, temperature: Double,
                       scratch p: UnsafeMutablePointer<Double>) -> (Int, Double)? {
        var top = -Double.infinity, first = -1, last = -1
        for j in 0..<G where inRange[j] {
            top = max(top, v[j] / temperature)
            if first < 0 { first = j }
            last = j
        }
        guard first >= 0, top.isFinite else { return nil }
        var total = 0.0
        for j in 0..<G {
            p[j] = inRange[j] ? exp(v[j] / temperature - top) : 0
            total += p[j]
        }
        guard total.isFinite, total > 0 else { return nil }
        let half = 0.5 * total
        var below = 0.0, j = first
        while j < last && below + p[j] < half { below += p[j]; j += 1 }
        let frac = p[j] > 0 ? min(1, max(0, (half - below) / p[j])) : 0.5
        let lag = { (i: Int) in Double(i) * gridStep - Double(maxLag) }
        let delay = min(lag(last), max(lag(first), lag(j) - gridStep / 2 + gridStep * frac))
        return delay.isFinite ? (j, delay) : nil
    }
}

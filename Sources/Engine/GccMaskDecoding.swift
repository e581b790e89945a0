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
        let lo = GccMaskEvaluator.lag(first, gridStep: gridStep, maxLag: maxLag)
        let hi = GccMaskEvaluator.lag(last, gridStep: gridStep, maxLag: maxLag)
        let delay = min(hi, max(lo, GccMaskEvaluator.lag(j, gridStep: gridStep, maxLag: maxLag) - gridStep / 2 + gridStep * frac))
        return delay.isFinite ? (j, delay) : nil
    }
}

/// The dominant-source check after the argmax (docs/gccmask-spec.md, "Decoding"; a model set of
/// version 4 names it per member as `decode.dominant`): PHAT-type weightings count frequency
/// bins, not power, so with two talkers the peak they favour can be the quieter one. When the
/// best other peak is nearly as probable, the check compares the two sources' power directly.
public struct GccMaskDominantCheck: Equatable, Sendable {
    /// The second peak is considered when its (mean) log-probability is at most this far below
    /// the best one's (nats).
    public let maxGap: Double
    /// It becomes the answer when cancelling the best peak's source leaves more than this many
    /// times the power that cancelling the second's leaves.
    public let minPowerRatio: Double
    /// The second way to switch (`decode.dominant.spread`), for whole clips; nil = none.
    public let spread: Spread?
    /// The two peaks are at least this far apart (samples).
    public static let minSeparation = 2.0
    /// The power sums start at this bin (55 Hz with a 1024-sample window at 16 kHz).
    public static let firstBin = 7

    /// The spread rule: the second peak also becomes the answer when it is within `maxGap`, its
    /// source's comb-corrected power (`demixedLogRatio`) is more than `minRatio` times the
    /// best one's, and that log ratio, computed on consecutive blocks of `blockWindows` pooled
    /// windows, has a population standard deviation above `minSpread` over at least two blocks
    /// (blocks with fewer than a quarter of `blockWindows` windows do not count). Two talkers'
    /// powers vary apart over time; a reflection or a head's shadow of one talker follows it,
    /// which is what makes the free-field power comparison safe to use on near-equal talkers.
    public struct Spread: Equatable, Sendable {
        public let maxGap: Double, epsilon: Double, minRatio: Double, minSpread: Double
        public let blockWindows: Int
        public init(maxGap: Double, epsilon: Double, minRatio: Double, minSpread: Double, blockWindows: Int) {
            self.maxGap = maxGap; self.epsilon = epsilon; self.minRatio = minRatio
            self.minSpread = minSpread; self.blockWindows = blockWindows
        }
    }

    public init(maxGap: Double, minPowerRatio: Double, spread: Spread? = nil) {
        self.maxGap = maxGap; self.minPowerRatio = minPowerRatio; self.spread = spread
    }

    /// Bin `k`'s power left in pooled spectra after cancelling a source at delay `t` (samples):
    /// `P_L + P_R - 2 Re(e^{i w t} G)`, `w = pi k / window`; `p` laid out as the evidence
    /// (`Re G`, `Im G`, `P_L`, `P_R` at 0, `bins`, 2 `bins`, 3 `bins`, `bins = window + 1`).
    @inline(__always)
    static func residual(_ p: UnsafePointer<Float>, bins: Int, k: Int, w: Double, t: Double) -> Double {
        Double(p[2 * bins + k]) + Double(p[3 * bins + k]) - 2 * (Double(p[k]) * cos(w * t) - Double(p[bins + k]) * sin(w * t))
    }

    /// The power left in pooled spectra `p` (the evidence layout, see `residual`) after
    /// cancelling a source at delay `t` (samples), summed over bins `firstBin ..< window`.
    static func nullPower(t: Double, window: Int, spectra p: UnsafePointer<Float>) -> Double {
        var sum = 0.0
        let w0 = Double.pi / Double(window)
        for k in firstBin..<window { sum += residual(p, bins: window + 1, k: k, w: w0 * Double(k), t: t) }
        return sum
    }

    /// `log(D(t2) / D(t1))` of pooled spectra `p` (the evidence layout, see `residual`):
    /// `D(t_a) = sum_k N_k(t_b) / (c_k + 4 epsilon)`, the power of a source at `t_a` estimated
    /// by cancelling the one at `t_b` (`N_k` the bin's `residual`) and dividing out the comb
    /// filter `c_k = 4 sin^2(w_k (t1 - t2) / 2)` that cancelling leaves on it (bins `firstBin
    /// ..< window`); nan when either sum is not positive.
    static func demixedLogRatio(t1: Double, t2: Double, epsilon: Double, window: Int, spectra p: UnsafePointer<Float>) -> Double {
        let bins = window + 1
        let w0 = Double.pi / Double(window)
        var d1 = 0.0, d2 = 0.0
        for k in firstBin..<window {
            let w = w0 * Double(k)
            let h = sin(w * (t1 - t2) / 2)
            let c = 4 * h * h + 4 * epsilon
            d1 += residual(p, bins: bins, k: k, w: w, t: t2) / c
            d2 += residual(p, bins: bins, k: k, w: w, t: t1) / c
        }
        return d1 > 0 && d2 > 0 ? log(d2 / d1) : .nan
    }

    /// The grid point and refined delay of the louder source when the check switches away from
    /// the argmax `best` of `v` (log-probabilities or logits over the grid); nil to keep it.
    /// `pooled`: the pooled spectra (`gr`, `gi`, `gl`, `gR` at 0, `window + 1`, ...); `blocks`:
    /// `blockCount` block spectra in the same layout, `blockStride` floats apart, and
    /// `blockWindows[b]` windows in block b (the spread rule; nil = off).
    func louderPeak(_ v: UnsafePointer<Double>, inRange: UnsafePointer<Bool>, count G: Int, gridStep: Double,
                    maxLag: Int, best: Int, window: Int, pooled: UnsafePointer<Float>,
                    blocks: UnsafePointer<Float>? = nil, blockCount: Int = 0, blockStride: Int = 0,
                    blockWindows: UnsafePointer<Int>? = nil) -> (Int, Double)? {
        let sep = Int((Self.minSeparation / gridStep).rounded())
        var second = -1
        if G >= 3 {
            for j in 1..<(G - 1) where inRange[j] && abs(j - best) >= sep {
                // (a neighbour out of the range counts as -inf)
                let left = inRange[j - 1] ? v[j - 1] : -Double.infinity, right = inRange[j + 1] ? v[j + 1] : -Double.infinity
                if v[j] >= left && v[j] >= right && (second < 0 || v[j] > v[second]) { second = j }
            }
        }
        guard second >= 0 else { return nil }
        let gap = v[best] - v[second]
        let t1 = GccMaskEvaluator.lag(best, gridStep: gridStep, maxLag: maxLag)
        let t2 = GccMaskEvaluator.lag(second, gridStep: gridStep, maxLag: maxLag)
        var louder = false
        if gap <= maxGap {
            louder = Self.nullPower(t: t1, window: window, spectra: pooled) > minPowerRatio * Self.nullPower(t: t2, window: window, spectra: pooled)
        }
        if !louder, let s = spread, gap <= s.maxGap, let blocks, let blockWindows, blockCount >= 2 {
            let whole = Self.demixedLogRatio(t1: t1, t2: t2, epsilon: s.epsilon, window: window, spectra: pooled)
            if whole > log(s.minRatio) {
                var n = 0, sum = 0.0, sum2 = 0.0, finite = true
                for b in 0..<blockCount where 4 * blockWindows[b] >= s.blockWindows {
                    let r = Self.demixedLogRatio(t1: t1, t2: t2, epsilon: s.epsilon, window: window, spectra: blocks + b * blockStride)
                    if !r.isFinite { finite = false; break }
                    n += 1; sum += r; sum2 += r * r
                }
                if finite && n >= 2 {
                    let mean = sum / Double(n)
                    louder = max(0, sum2 / Double(n) - mean * mean).squareRoot() > s.minSpread
                }
            }
        }
        guard louder else { return nil }
        let delay = GccMaskEvaluator.refine(v, at: second, inRange: inRange, count: G, gridStep: gridStep, maxLag: maxLag)
        return delay.isFinite ? (second, delay) : nil
    }
}

// GccMaskEnsemble.swift: the networks of a model set that share a `minSpan`, evaluated together
// (docs/gccmask-spec.md, "Model sets"); the engine side of `Ensemble` in
// train/tded_train/gccmask.py.
import Foundation

/// The learned weighting for one range of pooled spans: one network, or several whose
/// log-probabilities over the lag grid (each network's logits minus their log-sum-exp over the
/// search range) are averaged and decoded like one network's logits, by the members' shared
/// `GccMaskDecoding`. The confidence is the mean of the networks' correlations at the chosen
/// grid point. All buffers are allocated in `init`; `estimate` allocates nothing.
final class GccMaskEnsemble {
    /// The networks' evaluators (at least one; all on the same lag grid and search range).
    let members: [GccMaskEvaluator]
    private let G: Int
    private let gridStep: Double, maxLag: Int
    private let mean: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>
    /// The members' rule and dominant-source check (they share them).
    let decoding: GccMaskDecoding
    let dominant: GccMaskDominantCheck?
    private let window: Int

    /// `members` must share the lag grid (`maxLag`, `gridStep`), the decoding rule and the
    /// estimator's search range.
    init(_ members: [GccMaskEvaluator]) throws {
        guard let first = members.first else { throw EngineConfigError("pooling learned: an empty group of networks") }
        guard members.allSatisfy({ $0.model.maxLag == first.model.maxLag && $0.model.gridStep == first.model.gridStep }) else {
            throw EngineConfigError("pooling learned: networks for the same spans need the same lag grid")
        }
        guard members.allSatisfy({ $0.model.decoding == first.model.decoding && $0.model.dominant == first.model.dominant }) else {
            throw EngineConfigError("pooling learned: networks for the same spans need the same decoding")
        }
        self.members = members
        decoding = first.model.decoding
        dominant = first.model.dominant
        window = first.model.window
        G = first.model.gridCount; gridStep = first.model.gridStep; maxLag = first.model.maxLag
        mean = .allocate(capacity: G)
        mean.initialize(repeating: 0, count: G)
        scratch = .allocate(capacity: G)
        scratch.initialize(repeating: 0, count: G)
    }

    deinit { mean.deallocate(); scratch.deallocate() }

    /// The delay (samples) and confidence of pooled spectra (as `GccMaskEvaluator.estimate`;
    /// `pooled`: the cross spectrum's real and imaginary parts and the two auto spectra, `window +
    /// 1` floats each, one after the other); nil without any signal. `blocks`: the same spectra
    /// of consecutive blocks of the pooled windows (`GccMaskDominantCheck.louderPeak`), for the
    /// dominant-source check's spread rule; without them that rule is off.
    func estimate(pooled: UnsafePointer<Float>, blocks: UnsafePointer<Float>? = nil, blockCount: Int = 0,
                  blockStride: Int = 0, blockWindows: UnsafePointer<Int>? = nil) -> PooledEstimate? {
        let bins = window + 1
        let gr = pooled, gi = pooled + bins, gl = pooled + 2 * bins, gR = pooled + 3 * bins
        if members.count == 1 && decoding == .argmax && dominant == nil { return members[0].estimate(gr: gr, gi: gi, gl: gl, gR: gR) }
        let inRange = members[0].gridInRange
        mean.update(repeating: 0, count: G)
        let share = 1 / Double(members.count)
        for m in members {
            guard m.evaluate(gr: gr, gi: gi, gl: gl, gR: gR) else { return nil }
            let z = m.gridLogits
            var top = -Double.infinity
            for j in 0..<G where inRange[j] { top = max(top, Double(z[j])) }
            var sum = 0.0
            for j in 0..<G where inRange[j] { sum += exp(Double(z[j]) - top) }
            let lse = top + log(sum)
            for j in 0..<G where inRange[j] { mean[j] += (Double(z[j]) - lse) * share }
        }
        let decoded: (Int, Double)?
        switch decoding {
        case .argmax:
            decoded = GccMaskEvaluator.decode(mean, inRange: inRange, count: G, gridStep: gridStep, maxLag: maxLag)
        case .median(let temperature):
            decoded = GccMaskDecoding.median(mean, inRange: inRange, count: G, gridStep: gridStep, maxLag: maxLag,
                                             temperature: temperature, scratch: scratch)
        }
        guard var (best, delay) = decoded else { return nil }
        if let check = dominant, decoding == .argmax,
           let louder = check.louderPeak(mean, inRange: inRange, count: G, gridStep: gridStep, maxLag: maxLag, best: best,
                                         window: window, pooled: pooled, blocks: blocks, blockCount: blockCount,
                                         blockStride: blockStride, blockWindows: blockWindows) {
            (best, delay) = louder
        }
        // (each member's correlation at `best` is still in its buffers)
        var conf = 0.0
        for m in members { conf += m.correlation(at: best) * share }
        return PooledEstimate(delay: delay, confidence: min(1, max(0, conf)))
    }
}

// GccMaskEvaluator.swift: one delay from pooled spectra with the learned weighting
// (`GccMaskModel`); the engine side of train/tded_train/gccmask.py (`GccMask.forward` + `decode`).
import Foundation

/// Evaluates a `GccMaskModel` on pooled evidence: per-bin features -> frequency CNN -> bin
/// weights `w_k`; the weighted spectrum `w_k G_k / |G_k|^beta` -> its normalised correlation
/// `c` on the model's lag grid (within the search range); logits `c exp(temp) + head(c)`;
/// argmax and a parabola through it and its in-range neighbours. All buffers are allocated in
/// `init`; `estimate` allocates nothing.
final class GccMaskEvaluator {
    let model: GccMaskModel
    private let B: Int, N: Int, G: Int, L: Int
    private let wide: Int
    private let m2: UnsafeMutablePointer<Double>, sel: UnsafeMutablePointer<Double>
    /// Half log10 of the two auto spectra (the channels' levels), per bin.
    private let lvlL: UnsafeMutablePointer<Double>, lvlR: UnsafeMutablePointer<Double>
    private let pr: UnsafeMutablePointer<Double>, pi: UnsafeMutablePointer<Double>
    private let bufA: UnsafeMutablePointer<Float>, bufB: UnsafeMutablePointer<Float>
    private let corr: UnsafeMutablePointer<Double>, logits: UnsafeMutablePointer<Float>
    private let decoded: UnsafeMutablePointer<Double>
    private let inRange: UnsafeMutablePointer<Bool>
    /// Bin weights (B) and the averaged head output (G).
    private let m2w: UnsafeMutablePointer<Double>, hsum: UnsafeMutablePointer<Float>
    /// The window's normalised autocorrelation at each grid lag (see `GCCPHAT.windowOverlap`).
    private let overlap: UnsafeMutablePointer<Double>
    /// Sub-bands of the head (`model.headBands`; 0 without): each bin's band, each band's
    /// amplitude sum, and the band correlations (bands x G).
    private let nBands: Int
    private let bandOf: UnsafeMutablePointer<Int>
    private let bandNorm: UnsafeMutablePointer<Double>, bandAcc: UnsafeMutablePointer<Double>
    private let bandCorr: UnsafeMutablePointer<Double>

    /// `window`: the estimator's window (must be the model's); `maxLag`: its search range in
    /// whole samples (at most the model's grid).
    init(model: GccMaskModel, window: Int, maxLag: Int, taper: GCCPHATConfig.Taper) throws {
        guard taper == model.taper else {
            throw EngineConfigError("pooling learned: the model was trained on \(model.taper.rawValue) windows, the estimator uses \(taper.rawValue) (\(model.taper == .rectangular ? "--whole" : "per-update") model)")
        }
        guard window == model.window else {
            throw EngineConfigError("pooling learned: the model was trained for \(model.window)-sample windows, the estimator uses \(window)")
        }
        guard maxLag <= model.maxLag else {
            throw EngineConfigError("pooling learned: the search range +-\(maxLag) samples is wider than the model's +-\(model.maxLag) (mic_distance or max_delay_ms too large)")
        }
        self.model = model
        B = window + 1; N = 2 * window; G = model.gridCount; L = maxLag
        let maxCh = (model.mask + model.head).map { max($0.inChannels, $0.outChannels) }.max() ?? 1
        wide = max(B, G)
        func alloc<T>(_ n: Int, _ v: T) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: n); p.initialize(repeating: v, count: n); return p
        }
        m2 = alloc(B, 0); sel = alloc(B, 0); lvlL = alloc(B, 0); lvlR = alloc(B, 0); pr = alloc(B, 0); pi = alloc(B, 0)
        bufA = alloc(maxCh * wide, 0); bufB = alloc(maxCh * wide, 0)
        corr = alloc(G, 0); logits = alloc(G, 0); inRange = alloc(G, false); decoded = alloc(G, 0)
        overlap = alloc(G, 1); m2w = alloc(B, 0); hsum = alloc(G, 0)
        nBands = model.headBands.isEmpty ? 0 : model.headBands.count + 1
        bandOf = alloc(B, 0); bandNorm = alloc(max(nBands, 1), 0); bandAcc = alloc(max(nBands, 1), 0)
        bandCorr = alloc(max(nBands, 1) * G, 0)
        var band = 0
        for k in 0..<B {
            while band < model.headBands.count && k >= model.headBands[band] { band += 1 }
            bandOf[k] = band
        }
        for j in 0..<G {
            inRange[j] = abs(lag(j)) <= Double(L) + 1e-9
            overlap[j] = GCCPHAT.windowOverlap(lag(j), taper: taper, window: window)
        }
    }

    deinit {
        for p in [m2, sel, lvlL, lvlR, pr, pi, corr, overlap, m2w, decoded] { p.deallocate() }
        hsum.deallocate(); bandOf.deallocate(); bandNorm.deallocate(); bandAcc.deallocate(); bandCorr.deallocate()
        bufA.deallocate(); bufB.deallocate(); logits.deallocate(); inRange.deallocate()
    }

    /// Grid point `j`'s lag in samples: `j * gridStep - maxLag`.
    @inline(__always) static func lag(_ j: Int, gridStep: Double, maxLag: Int) -> Double { Double(j) * gridStep - Double(maxLag) }
    @inline(__always) private func lag(_ j: Int) -> Double { Self.lag(j, gridStep: model.gridStep, maxLag: model.maxLag) }

    /// The delay (samples) and confidence of pooled spectra: `gr`/`gi` the cross spectrum
    /// `conj(L) R`, `gl`/`gR` the two auto spectra (B floats each); nil without any signal.
    func estimate(gr: UnsafePointer<Float>, gi: UnsafePointer<Float>,
                  gl: UnsafePointer<Float>, gR: UnsafePointer<Float>) -> PooledEstimate? {
        guard evaluate(gr: gr, gi: gi, gl: gl, gR: gR) else { return nil }
        for j in 0..<G { decoded[j] = Double(logits[j]) }
        guard let (best, delay) = Self.decode(decoded, inRange: inRange, count: G, gridStep: model.gridStep, maxLag: model.maxLag) else { return nil }
        return PooledEstimate(delay: delay, confidence: min(1, max(0, corr[best])))
    }

    /// The logits over the lag grid after `evaluate` (`gridCount` values, -1e4 outside the
    /// search range).
    var gridLogits: UnsafePointer<Float> { UnsafePointer(logits) }
    /// Grid points inside the search range.
    var gridInRange: UnsafePointer<Bool> { UnsafePointer(inRange) }
    /// The normalised weighted correlation at grid point `j` after `evaluate`.
    func correlation(at j: Int) -> Double { corr[j] }

    /// Computes the logits over the lag grid (`gridLogits`) and the correlation; false without
    /// any signal (then neither is meaningful).
    func evaluate(gr: UnsafePointer<Float>, gi: UnsafePointer<Float>,
                  gl: UnsafePointer<Float>, gR: UnsafePointer<Float>) -> Bool {
        var peak = 0.0
        for k in 0..<B {
            let v = Double(gr[k]) * Double(gr[k]) + Double(gi[k]) * Double(gi[k])
            m2[k] = v; peak = max(peak, v)
        }
        guard peak > 0, peak.isFinite else { return false }
        let floor = peak * 1e-20
        // features [4][B]: levels (half log10 of powers) relative to the lower quartile of the
        // mean channel level, then k / B
        for k in 0..<B {
            lvlL[k] = 0.5 * log10(max(Double(gl[k]), 1e-30)); lvlR[k] = 0.5 * log10(max(Double(gR[k]), 1e-30))
            sel[k] = 0.5 * (lvlL[k] + lvlR[k])
        }
        let ref = quickselect(sel, count: B, rank: B / 4)
        // (the conv stack overwrites bufA, so the features are written again for the swapped order)
        func fill(swapped: Bool) {
            let a = swapped ? wide : 0, b = swapped ? 0 : wide
            for k in 0..<B {
                bufA[a + k] = Float(lvlL[k] - ref)
                bufA[b + k] = Float(lvlR[k] - ref)
                bufA[2 * wide + k] = Float(0.5 * log10(max(m2[k], 1e-30)) - ref)
                bufA[3 * wide + k] = Float(Double(k) / Double(B))
                if model.maskInputs == 5 {
                    bufA[4 * wide + k] = Float(min(1, max(0, m2[k] / max(Double(gl[k]) * Double(gR[k]), 1e-300))))
                }
            }
        }
        fill(swapped: false)
        // both channel orders (feature rows 0 and 1 swapped), sigmoids averaged: swapping the
        // channels negates the delay exactly
        let z = run(model.mask, count: B)
        for k in 0..<B { m2w[k] = Double(1 / (1 + exp(-z[k]))) }
        fill(swapped: true)
        let zs = run(model.mask, count: B)
        for k in 0..<B { m2w[k] = 0.5 * (m2w[k] + Double(1 / (1 + exp(-zs[k])))) }
        var norm = 0.0
        let beta = Double(model.beta)
        for b in 0..<nBands { bandNorm[b] = 0 }
        for k in 0..<B {
            // (a zeroed bin still adds sqrt(1e-60) to the norms, as in PyTorch)
            if m2[k] > floor {
                let g = m2w[k] * pow(max(m2[k].squareRoot(), 1e-30), -beta)
                pr[k] = Double(gr[k]) * g; pi[k] = Double(gi[k]) * g
            } else {
                pr[k] = 0; pi[k] = 0
            }
            let wk = (k == 0 || k == B - 1) ? 1.0 : 2.0
            let a = wk * (pr[k] * pr[k] + pi[k] * pi[k] + 1e-60).squareRoot()
            norm += a
            if nBands > 0 { bandNorm[bandOf[k]] += a }
        }
        guard norm > 0, norm.isFinite else { return false }
        for b in 0..<nBands { bandNorm[b] = max(bandNorm[b], 1e-30) }
        // correlation on the grid (in range only; zero elsewhere, as the head's input)
        for j in 0..<G {
            guard inRange[j] else {
                corr[j] = 0
                for b in 0..<nBands { bandCorr[b * G + j] = 0 }
                continue
            }
            let tau = lag(j)
            let a = 2 * Double.pi * tau / Double(N)
            let sr = cos(a), si = sin(a)
            var zr = 1.0, zi = 0.0, acc = 0.0
            for b in 0..<nBands { bandAcc[b] = 0 }
            for k in 0..<B {
                let wk = (k == 0 || k == B - 1) ? 1.0 : 2.0
                let v = wk * (pr[k] * zr - pi[k] * zi)
                acc += v
                if nBands > 0 { bandAcc[bandOf[k]] += v }
                let nr = zr * sr - zi * si
                zi = zr * si + zi * sr; zr = nr
            }
            for b in 0..<nBands { bandCorr[b * G + j] = bandAcc[b] / overlap[j] / bandNorm[b] }
            corr[j] = acc / overlap[j] / norm
        }
        // the head on the correlation and on its mirror image (the swapped channels' view),
        // the latter mirrored back, averaged
        for j in 0..<G {
            bufA[j] = Float(corr[j]); bufA[wide + j] = inRange[j] ? 1 : 0
            bufA[2 * wide + j] = Float(lag(j) / Double(model.maxLag))
            for b in 0..<nBands { bufA[(3 + b) * wide + j] = Float(bandCorr[b * G + j]) }
        }
        let h1 = run(model.head, count: G)
        for j in 0..<G { hsum[j] = h1[j] }
        for j in 0..<G {
            bufA[j] = Float(corr[G - 1 - j]); bufA[wide + j] = inRange[G - 1 - j] ? 1 : 0
            bufA[2 * wide + j] = Float(lag(j) / Double(model.maxLag))
            for b in 0..<nBands { bufA[(3 + b) * wide + j] = Float(bandCorr[b * G + G - 1 - j]) }
        }
        let h2 = run(model.head, count: G)
        for j in 0..<G { hsum[j] = 0.5 * (hsum[j] + h2[G - 1 - j]) }
        let h = hsum
        let scale = exp(model.temp)
        var any = false
        for j in 0..<G {
            logits[j] = inRange[j] ? Float(corr[j]) * scale + h[j] : -1e4
            any = any || inRange[j]
        }
        return any
    }

    /// The grid point with the largest value among those in range, and its delay: the point's
    /// lag plus a parabola through it and its neighbours when both are in range and the
    /// parabola opens downward (offset clamped to +-0.5 grid steps); nil when no point is in
    /// range or the delay is not finite.
    static func decode(_ v: UnsafePointer<Double>, inRange: UnsafePointer<Bool>, count G: Int,
                       gridStep: Double, maxLag: Int) -> (Int, Double)? {
        var best = -1
        for j in 0..<G where inRange[j] && (best < 0 || v[j] > v[best]) { best = j }
        guard best >= 0 else { return nil }
        let delay = refine(v, at: best, inRange: inRange, count: G, gridStep: gridStep, maxLag: maxLag)
        return delay.isFinite ? (best, delay) : nil
    }

    /// Grid point `j`'s lag plus a parabola through it and its neighbours when both are in range
    /// and the parabola opens downward (offset clamped to +-0.5 grid steps).
    static func refine(_ v: UnsafePointer<Double>, at j: Int, inRange: UnsafePointer<Bool>, count G: Int,
                       gridStep: Double, maxLag: Int) -> Double {
        var off = 0.0
        if j > 0, j < G - 1, inRange[j - 1], inRange[j + 1] {
            let a = v[j - 1], b = v[j], c = v[j + 1]
            let den = a - 2 * b + c
            if den < 0 { off = min(0.5, max(-0.5, 0.5 * (a - c) / den)) }
        }
        return lag(j, gridStep: gridStep, maxLag: maxLag) + off * gridStep
    }

    /// Runs a conv stack on `bufA` (`layers[0].inChannels` rows of stride `wide`, `count`
    /// columns), ReLU between layers; returns the last layer's single output row.
    private func run(_ layers: [GccMaskModel.Conv], count n: Int) -> UnsafeMutablePointer<Float> {
        var src = bufA, dst = bufB
        // (an index loop: a debug build's generic enumerated() iterator allocates per call)
        for li in 0..<layers.count {
            let l = layers[li]
            let p = l.kernel / 2
            let from = src, to = dst
            l.weight.withUnsafeBufferPointer { w in
                for o in 0..<l.outChannels {
                    let out = to + o * wide
                    let b = l.bias[o]
                    for i in 0..<n { out[i] = b }
                    for c in 0..<l.inChannels {
                        let x = from + c * wide
                        for t in 0..<l.kernel {
                            let wv = w[(o * l.inChannels + c) * l.kernel + t]
                            let shift = t - p
                            let lo = max(0, -shift), hi = min(n, n - shift)
                            if lo >= hi { continue }
                            // (an axpy over the columns with the input pre-shifted and no
                            // overflow-checked index: LLVM vectorises it; each output element is
                            // still out + wv * x, in the same order, so results do not change)
                            let xs = x + shift
                            var i = lo
                            while i < hi { out[i] += wv * xs[i]; i &+= 1 }
                        }
                    }
                    if li < layers.count - 1 { for i in 0..<n where out[i] < 0 { out[i] = 0 } }
                }
            }
            swap(&src, &dst)
        }
        return src
    }
}

// GCCPHAT.swift: GCC-PHAT delay estimator over sliding windows (the paper's baseline).
import Foundation

/// Optional sub-sample refinement of the per-window correlation peak.
public enum SubsampleRefinement: Equatable, Sendable {
    /// Integer argmax (what the paper ran).
    case none
    /// Parabola through the integer peak and its two neighbours. Cheap; biased toward the
    /// nearest integer by up to ~0.15 samples on the sharp PHAT peak.
    case parabolic
    /// Evaluates the band-limited correlation (the exact inverse DTFT of the whitened cross
    /// spectrum) on a grid of `1/factor` samples within +-1 sample of the integer peak, then fits
    /// a parabola on that fine grid. Accurate to ~0.01 sample; costs `2*factor+1` extra dot
    /// products of length `window + 1` per window.
    case upsampled(factor: Int)
}

/// GCC-PHAT configuration. Defaults follow the paper (16 kHz): 1024-sample rectangular
/// windows, step 1, lags +-24 (1.5 ms), integer argmax.
public struct GCCPHATConfig: Equatable, Sendable {
    /// How the two windowed spectra are obtained for each window.
    public enum Algorithm: String, Equatable, Sendable {
        /// `sliding` when `step < 4`, otherwise `direct`.
        case auto
        /// Sliding-DFT update of both spectra every sample (O(window) per sample) with an exact
        /// FFT resynchronisation every `resyncInterval` window starts to bound float drift.
        case sliding
        /// Two fresh forward FFTs per vote window.
        case direct
    }
    /// Window length in samples (rFFT size is `2 * window`).
    public var window: Int = 1024
    /// Distance between vote windows in samples.
    public var step: Int = 1
    /// Lags searched: `-maxLag ... maxLag` samples.
    public var maxLag: Int = 24
    /// Sub-sample refinement of each window's peak.
    public var refinement: SubsampleRefinement = .none
    /// Spectrum algorithm (results agree to float rounding; see `Algorithm`).
    public var algorithm: Algorithm = .auto
    /// Sliding mode: exact FFT recomputation whenever the window start is a multiple of this.
    public var resyncInterval: Int = 256
    /// Analysis window shape. The paper ran `rectangular` (default); `hann` (applied exactly in
    /// the frequency domain, `0.5 X[k] - 0.25 (X[k-2] + X[k+2])`) suppresses the truncation
    /// leakage that biases PHAT toward lag 0 on narrow-band signals.
    public var taper: Taper = .rectangular
    /// Window shapes.
    public enum Taper: String, Equatable, Sendable, CaseIterable { case rectangular, hann }
    /// How window cross-spectra are weighted when pooled over a span (`post = pooled`).
    public var pooling: PoolWeighting = .phat(beta: 1)
    /// Bins of the `2 * window`-point spectrum used by pooled estimates (`post = pooled`); nil =
    /// all. Bins outside carry no weight (e.g. below 300 Hz and above 3.5 kHz for speech, where
    /// its energy is low and whitening would give noise the same weight as speech).
    public var pooledBins: ClosedRange<Int>? = nil
    /// The networks of `pooling = .learned` (required then, unused otherwise), in
    /// non-decreasing `minSpan` order (`GccMaskModel.members(file:)`): a pooled estimate uses
    /// the networks with the largest `minSpan` its span `(windows - 1) x step + window`
    /// reaches (the first ones also take every shorter span); several with the same `minSpan`
    /// are an ensemble (`GccMaskEnsemble`: their log-probabilities averaged).
    public var poolingModels: [GccMaskModel] = []

    /// Weighting of the pooled cross-power spectrum (the evidence of `post = pooled`).
    public enum PoolWeighting: Equatable, Sendable {
        /// Sum the windows' raw cross-power spectra `G = sum conj(L) R`, then weight once by
        /// `1 / |G|^beta` (beta 1: PHAT on the pooled spectrum, what a whole-clip GCC-PHAT
        /// does; beta < 1 keeps some of the spectrum's shape, PHAT-beta).
        case phat(beta: Double)
        /// Whiten each window's cross spectrum, then sum (per-frame PHAT, SRP-PHAT for two
        /// microphones): every window counts the same, loud or quiet.
        case srp
        /// PHAT-beta on the pooled spectrum times a function of the pooled magnitude-squared
        /// coherence `C = |G_LR|^2 / (G_LL G_RR)` of each bin: bins where the two channels do
        /// not agree (uncorrelated noise, no source energy) lose their weight, which plain PHAT
        /// gives them in full.
        case masked(beta: Double, mask: BinMask)
        /// The learned weighting (`GccMaskModel`, in `GCCPHATConfig.poolingModels`): a per-bin
        /// weight predicted from the pooled levels, a learned PHAT exponent and a small
        /// correction over the lag grid, trained on simulated rooms (docs/gccmask-spec.md).
        /// Two models: rectangular windows for one estimate over a whole clip (`--whole`) and
        /// Hann windows for per-update (live) estimates.
        case learned

        /// Per-bin weights computed from the pooled auto-power spectra `G_LL`, `G_RR` and the
        /// cross spectrum `G_LR`, multiplied into the PHAT-beta weight.
        public enum BinMask: Equatable, Sendable {
            /// The magnitude-squared coherence `C = |G_LR|^2 / (G_LL G_RR)`: coherence-weighted
            /// PHAT. Needs several independent windows in the pool to mean anything.
            case coh
            /// `C / (1 - C)` (C capped at 0.99): the maximum-likelihood (Hannan-Thomson)
            /// weighting of Knapp and Carter when beta is 1.
            case ml
            /// A spectral-subtraction gain `max(0.1, 1 - kappa * floor / P_k)` (`snr`: kappa 4,
            /// the best of 1-8 on the tuning sets, eval/devset.py) with
            /// `P_k = sqrt(G_LL G_RR)` and `floor` the lower quartile of `P` over the used bins
            /// (the noise floor where at least a quarter of the band holds no source energy):
            /// bins no louder than a few times the floor keep a tenth of their weight. Works on
            /// a single window. The 0.1 floor keeps every bin in play when the source itself is
            /// flat (white), where the quartile is the source's level, not the noise's.
            case snr(kappa: Double)

            /// The smallest gain of `snr`.
            static let snrFloorGain = 0.1

            init?(parsing s: String) {
                switch s {
                case "coh": self = .coh
                case "ml": self = .ml
                case "snr": self = .snr(kappa: 4)
                default:
                    guard s.hasPrefix("snr="), let k = Double(s.dropFirst(4)), k > 0, k <= 100 else { return nil }
                    self = .snr(kappa: k)
                }
            }

            var name: String {
                switch self {
                case .coh: return "coh"
                case .ml: return "ml"
                case .snr(let k): return k == 4 ? "snr" : "snr=\(k)"
                }
            }
        }

        /// Whether the evidence carries the two auto-power spectra besides the cross spectrum.
        public var needsAutoSpectra: Bool {
            switch self {
            case .masked, .learned: return true
            case .phat, .srp: return false
            }
        }

        /// Parses `phat`, `srp`, `phat-beta=B` (0 < B <= 1), a mask alone (`coh`, `ml`, `snr`,
        /// `snr=K`: PHAT times the mask) or `phat-beta=B+MASK`; nil otherwise.
        public init?(parsing s: String) {
            let parts = s.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else { return nil }
            if parts.count == 1, let mask = BinMask(parsing: s) { self = .masked(beta: 1, mask: mask); return }
            var beta = 1.0
            switch parts[0] {
            case "phat": beta = 1
            case "srp": guard parts.count == 1 else { return nil }; self = .srp; return
            case "learned": guard parts.count == 1 else { return nil }; self = .learned; return
            default:
                let prefix = "phat-beta="
                guard parts[0].hasPrefix(prefix), let b = Double(parts[0].dropFirst(prefix.count)), b > 0, b <= 1 else { return nil }
                beta = b
            }
            if parts.count == 2 {
                guard let mask = BinMask(parsing: parts[1]) else { return nil }
                self = .masked(beta: beta, mask: mask)
            } else {
                self = .phat(beta: beta)
            }
        }

        /// The name `init(parsing:)` reads.
        public var name: String {
            switch self {
            case .srp: return "srp"
            case .learned: return "learned"
            case .phat(let b): return b == 1 ? "phat" : "phat-beta=\(b)"
            case .masked(let b, let mask): return b == 1 ? mask.name : "phat-beta=\(b)+\(mask.name)"
            }
        }
    }

    public init(window: Int = 1024, step: Int = 1, maxLag: Int = 24,
                refinement: SubsampleRefinement = .none, algorithm: Algorithm = .auto,
                resyncInterval: Int = 256, taper: Taper = .rectangular,
                pooling: PoolWeighting = .phat(beta: 1)) {
        self.taper = taper; self.pooling = pooling
        self.window = window; self.step = step; self.maxLag = maxLag
        self.refinement = refinement; self.algorithm = algorithm
        self.resyncInterval = resyncInterval
    }

    /// Lag range in samples for a maximum delay in milliseconds (rounded down).
    public static func lags(maxDelayMs: Double, sampleRate: Double) -> Int {
        Int((maxDelayMs * sampleRate / 1000 + 1e-9).rounded(.down))
    }
}

/// GCC-PHAT over sliding windows: for each window start `s` (multiple of `step`) the windows
/// `left[s ..< s+W]`, `right[s ..< s+W]` (rectangular) are zero-padded to `N = 2W`, the cross
/// spectrum `R = conj(L) * R` is whitened `R / (|R| + 1e-20)`, inverse-transformed, and the
/// argmax over lags `-maxLag ... maxLag` is the vote (positive = right channel later).
///
/// Cost per sample at step 1 (sliding): two O(W) spectrum updates, one O(W) whitening and one
/// complex inverse FFT of size W (the real inverse of size 2W at half cost). Allocation-free after `init`.
public final class GCCPHAT: EvidenceEstimator {
    public let config: GCCPHATConfig
    public var name: String { "gcc-phat" }
    /// `PipelineConfig.learnedMinConfidence` with the learned weighting, else the classical one.
    public var defaultMinConfidence: Double {
        if case .learned = config.pooling { return PipelineConfig.learnedMinConfidence }
        return PipelineConfig.classicalMinConfidence
    }
    public var windowLength: Int { config.window }
    public var voteStride: Int { config.step }
    public var maxDelay: Int { config.maxLag }
    public var voteLatency: Int { 0 }
    public private(set) var samplesConsumed: Int64 = 0
    /// Evidence per window: the (tapered) cross-power spectrum `conj(L) R`, real parts of bins
    /// `0 ... window` then imaginary parts (`2 * (window + 1)` floats); whitened per window
    /// with `pooling = .srp`.
    public var evidenceLength: Int { config.pooling.needsAutoSpectra ? 4 * B : 2 * B }
    /// See `EvidenceEstimator`.
    public var evidenceOutput: UnsafeMutablePointer<Float>?

    private let W: Int, N: Int, B: Int, L: Int
    private let sliding: Bool
    private let histL: UnsafeMutablePointer<Float>, histR: UnsafeMutablePointer<Float>
    private let xlr: UnsafeMutablePointer<Float>, xli: UnsafeMutablePointer<Float>
    private let xrr: UnsafeMutablePointer<Float>, xri: UnsafeMutablePointer<Float>
    private let twr: UnsafeMutablePointer<Float>, twi: UnsafeMutablePointer<Float>
    private let sgn: UnsafeMutablePointer<Float>
    private let pr: UnsafeMutablePointer<Float>, pi: UnsafeMutablePointer<Float>
    private let cc: UnsafeMutablePointer<Float>
    private let tlr: UnsafeMutablePointer<Float>, tli: UnsafeMutablePointer<Float>
    /// Scratch for the noise-floor quantile of `BinMask.snr` (B floats).
    private let sel: UnsafeMutablePointer<Float>
    /// `BinMask.snr`: per-bin level `sqrt(G_LL G_RR)` (B floats).
    private let lvl: UnsafeMutablePointer<Float>
    private let trr: UnsafeMutablePointer<Float>, tri: UnsafeMutablePointer<Float>
    private let fwd: ForwardRealFFT, inv: InverseComplexFFT
    private var spectraStart: Int64 = -1
    // upsampled refinement tables
    private let upFactor: Int
    private let circR: UnsafeMutablePointer<Float>?, circI: UnsafeMutablePointer<Float>?
    private let fracR: UnsafeMutablePointer<Float>?, fracI: UnsafeMutablePointer<Float>?
    private let wk: UnsafeMutablePointer<Float>?
    private let rotR: UnsafeMutablePointer<Float>?, rotI: UnsafeMutablePointer<Float>?
    private let fine: UnsafeMutablePointer<Double>?
    /// The learned weighting's networks, grouped by `minSpan`, and the fewest pooled windows
    /// each group takes (the first takes fewer too).
    private let learned: [(minWindows: Int, networks: GccMaskEnsemble)]

    /// Creates the estimator; throws `EngineConfigError` for an invalid configuration.
    public init(config: GCCPHATConfig = GCCPHATConfig()) throws {
        guard config.window >= 4 && config.window <= 1 << 20 else {
            throw EngineConfigError("GCC-PHAT window must be 4 ... 1048576 samples (got \(config.window))")
        }
        guard config.step >= 1 else { throw EngineConfigError("GCC-PHAT step must be >= 1 (got \(config.step))") }
        guard config.maxLag >= 1 && config.maxLag < config.window else {
            throw EngineConfigError("GCC-PHAT max lag must be in 1 ..< window (got \(config.maxLag) for window \(config.window))")
        }
        guard config.resyncInterval >= 1 else { throw EngineConfigError("GCC-PHAT resync interval must be >= 1") }
        if case .upsampled(let f) = config.refinement, !(2...64).contains(f) {
            throw EngineConfigError("GCC-PHAT upsampling factor must be in 2...64 (got \(f))")
        }
        if config.pooling == .learned {
            let models = config.poolingModels
            guard !models.isEmpty else { throw EngineConfigError("pooling learned needs its model (poolingModels)") }
            guard zip(models, models.dropFirst()).allSatisfy({ $0.minSpan <= $1.minSpan }) else {
                throw EngineConfigError("pooling learned: the models' minimum spans must not decrease")
            }
            guard config.pooledBins == nil else { throw EngineConfigError("pooling learned uses every bin (no band)") }
            var groups: [(minWindows: Int, networks: GccMaskEnsemble)] = []
            // each distinct minSpan, in order: its networks are one group (an ensemble when several)
            for span in models.map(\.minSpan).reduce(into: [Int](), { if $0.last != $1 { $0.append($1) } }) {
                // fewest windows n with (n - 1) step + window >= minSpan
                let n = 1 + max(0, (span - config.window + config.step - 1) / config.step)
                let evaluators = try models.filter { $0.minSpan == span }.map {
                    try GccMaskEvaluator(model: $0, window: config.window, maxLag: config.maxLag, taper: config.taper)
                }
                groups.append((n, try GccMaskEnsemble(evaluators)))
            }
            learned = groups
            spreadBlockWindows = groups.reversed().lazy.compactMap { $0.networks.dominant?.spread?.blockWindows }.first
        } else {
            learned = []
            spreadBlockWindows = nil
        }
        self.config = config
        W = config.window; N = 2 * W; B = W + 1; L = config.maxLag
        switch config.algorithm {
        case .auto: sliding = config.step < 4
        case .sliding: sliding = true
        case .direct: sliding = false
        }
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n); p.initialize(repeating: 0, count: n); return p
        }
        histL = alloc(2 * W); histR = alloc(2 * W)
        xlr = alloc(B); xli = alloc(B); xrr = alloc(B); xri = alloc(B)
        twr = alloc(B); twi = alloc(B); sgn = alloc(B)
        pr = alloc(B); pi = alloc(B); cc = alloc(2 * L + 1)
        tlr = alloc(B); tli = alloc(B); trr = alloc(B); tri = alloc(B); sel = alloc(B)
        lvl = alloc(B)
        for k in 0..<B {
            let a = 2 * Double.pi * Double(k) / Double(N)
            twr[k] = Float(cos(a)); twi[k] = Float(sin(a)); sgn[k] = k % 2 == 0 ? 1 : -1
        }
        fwd = ForwardRealFFT(size: N); inv = InverseComplexFFT(size: W)
        if case .upsampled(let f) = config.refinement {
            upFactor = f
            let cR = alloc(N), cI = alloc(N)
            for m in 0..<N {
                let a = 2 * Double.pi * Double(m) / Double(N)
                cR[m] = Float(cos(a)); cI[m] = Float(sin(a))
            }
            let w = alloc(B)
            for k in 0..<B { w[k] = (k == 0 || k == B - 1) ? 1 : 2 }
            let fR = alloc(f * B), fI = alloc(f * B)
            for j in 1...f {
                for k in 0..<B {
                    let a = 2 * Double.pi * Double(k) * Double(j) / (Double(f) * Double(N))
                    fR[(j - 1) * B + k] = Float(cos(a)) * w[k]
                    fI[(j - 1) * B + k] = Float(sin(a)) * w[k]
                }
            }
            circR = cR; circI = cI; fracR = fR; fracI = fI; wk = w
            rotR = alloc(B); rotI = alloc(B)
            let fi = UnsafeMutablePointer<Double>.allocate(capacity: 2 * f + 1)
            fi.initialize(repeating: 0, count: 2 * f + 1); fine = fi
        } else {
            upFactor = 0; circR = nil; circI = nil; fracR = nil; fracI = nil; wk = nil
            rotR = nil; rotI = nil; fine = nil
        }
    }

    deinit {
        for p in [histL, histR, xlr, xli, xrr, xri, twr, twi, sgn, pr, pi, cc, tlr, tli, trr, tri, sel, lvl] { p.deallocate() }
        for p in [circR, circI, fracR, fracI, wk, rotR, rotI] { p?.deallocate() }
        fine?.deallocate()
    }

    public func maxVotes(forBlockLength n: Int) -> Int { n / config.step + 1 }

    public func reset() {
        samplesConsumed = 0; spectraStart = -1
        histL.update(repeating: 0, count: 2 * W); histR.update(repeating: 0, count: 2 * W)
    }

    public func process(left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>,
                        votes: UnsafeMutableBufferPointer<Vote>) -> Int {
        precondition(left.count == right.count, "left and right blocks differ in length")
        precondition(votes.count >= maxVotes(forBlockLength: left.count), "vote storage too small")
        guard let lb = left.baseAddress, let rb = right.baseAddress, let vb = votes.baseAddress else { return 0 }
        var emitted = 0
        let step = Int64(config.step), resync = Int64(config.resyncInterval)
        for i in 0..<left.count {
            let p = Int(samplesConsumed % Int64(W))
            let oldL = histL[p], oldR = histR[p]
            let nl = lb[i], nr = rb[i]
            histL[p] = nl; histL[p + W] = nl; histR[p] = nr; histR[p + W] = nr
            samplesConsumed += 1
            let s = samplesConsumed - Int64(W)
            if s < 0 { continue }
            let isVote = s % step == 0
            if sliding {
                if spectraStart == s - 1 && s % resync != 0 {
                    slide(oldL: oldL, newL: nl, oldR: oldR, newR: nr)
                } else {
                    exactSpectra(offset: (p + 1) % W)
                }
                spectraStart = s
            } else if isVote {
                exactSpectra(offset: (p + 1) % W)
            }
            if isVote {
                vb[emitted] = Vote(start: s, delay: voteFromSpectra(evidence: evidenceOutput.map { $0 + emitted * evidenceLength }))
                emitted += 1
            }
        }
        return emitted
    }

    @inline(__always)
    private func slide(oldL: Float, newL: Float, oldR: Float, newR: Float) {
        let lr = xlr, li = xli, rr = xrr, ri = xri, cr = twr, ci = twi, sg = sgn
        for k in 0..<B {
            let a = lr[k] - oldL + sg[k] * newL, b = li[k]
            lr[k] = a * cr[k] - b * ci[k]; li[k] = a * ci[k] + b * cr[k]
            let c = rr[k] - oldR + sg[k] * newR, d = ri[k]
            rr[k] = c * cr[k] - d * ci[k]; ri[k] = c * ci[k] + d * cr[k]
        }
    }

    private func exactSpectra(offset: Int) {
        transform(histL + offset, re: xlr, im: xli)
        transform(histR + offset, re: xrr, im: xri)
    }

    private func transform(_ x: UnsafePointer<Float>, re: UnsafeMutablePointer<Float>, im: UnsafeMutablePointer<Float>) {
        let inp = fwd.input
        inp.update(from: x, count: W)
        (inp + W).update(repeating: 0, count: N - W)
        fwd.execute()
        let out = fwd.output
        for k in 0..<B { re[k] = out[2 * k]; im[k] = out[2 * k + 1] }
    }

    /// Whitened cross-correlation of the current spectra -> the window's delay.
    /// Hann taper in the frequency domain: Y[k] = 0.5 X[k] - 0.25 (X[k-2] + X[k+2]), using the
    /// Hermitian symmetry of a real signal's spectrum beyond both ends.
    private func hann(_ xr: UnsafeMutablePointer<Float>, _ xi: UnsafeMutablePointer<Float>,
                      _ yr: UnsafeMutablePointer<Float>, _ yi: UnsafeMutablePointer<Float>) {
        @inline(__always) func at(_ k: Int) -> (Float, Float) {
            if k < 0 { return (xr[-k], -xi[-k]) }
            if k >= B { let m = 2 * (B - 1) - k; return (xr[m], -xi[m]) }
            return (xr[k], xi[k])
        }
        for k in [0, 1, B - 2, B - 1] {
            let (a, b) = at(k - 2), (c, d) = at(k + 2)
            yr[k] = 0.5 * xr[k] - 0.25 * (a + c); yi[k] = 0.5 * xi[k] - 0.25 * (b + d)
        }
        for k in 2..<(B - 2) {
            yr[k] = 0.5 * xr[k] - 0.25 * (xr[k - 2] + xr[k + 2])
            yi[k] = 0.5 * xi[k] - 0.25 * (xi[k - 2] + xi[k + 2])
        }
    }

    /// Inverse real FFT of size N = 2W of the whitened half spectrum `pr + i pi` (bins 0...W)
    /// through one complex inverse FFT of size W: with `E_k = P_k + conj(P_{W-k})` and
    /// `O_k = e^{2 pi i k / N} (P_k - conj(P_{W-k}))`, the inverse of `E + i O` is
    /// `x[2m] + i x[2m+1]`, so `inv.output` read as floats is x[0 ..< N] in order (the same
    /// unnormalised sum a c2r transform computes, at half its cost).
    private func halfSizeInverse() {
        let z = inv.input, qr = pr, qi = pi, cr = twr, ci = twi
        let n4 = W & ~3
        var k = 0
        while k < n4 {
            // bins k ..< k+4 and their mirrors W-k ... W-k-3 (loaded from W-k-3 and reversed)
            let ar = UnsafeRawPointer(qr + k).loadUnaligned(as: SIMD4<Float>.self)
            let ai = UnsafeRawPointer(qi + k).loadUnaligned(as: SIMD4<Float>.self)
            let mr = UnsafeRawPointer(qr + (W - k - 3)).loadUnaligned(as: SIMD4<Float>.self)
            let mi = UnsafeRawPointer(qi + (W - k - 3)).loadUnaligned(as: SIMD4<Float>.self)
            let br = SIMD4<Float>(mr[3], mr[2], mr[1], mr[0])
            let bi = -SIMD4<Float>(mi[3], mi[2], mi[1], mi[0])          // conj
            let er = ar + br, ei = ai + bi
            let dr = ar - br, di = ai - bi
            let wr = UnsafeRawPointer(cr + k).loadUnaligned(as: SIMD4<Float>.self)
            let wi = UnsafeRawPointer(ci + k).loadUnaligned(as: SIMD4<Float>.self)
            let or = dr * wr - di * wi, oi = dr * wi + di * wr
            let zr = er - oi, zi = ei + or
            UnsafeMutableRawPointer(z + 2 * k).storeBytes(
                of: SIMD8<Float>(zr[0], zi[0], zr[1], zi[1], zr[2], zi[2], zr[3], zi[3]), as: SIMD8<Float>.self)
            k += 4
        }
        while k < W {
            let ar = qr[k], ai = qi[k], br = qr[W - k], bi = -qi[W - k]
            let er = ar + br, ei = ai + bi, dr = ar - br, di = ai - bi
            let or = dr * cr[k] - di * ci[k], oi = dr * ci[k] + di * cr[k]
            z[2 * k] = er - oi; z[2 * k + 1] = ei + or
            k += 1
        }
        inv.execute()
    }

    private func voteFromSpectra(evidence: UnsafeMutablePointer<Float>?) -> Float {
        var lr = xlr, li = xli, rr = xrr, ri = xri
        if config.taper == .hann {
            hann(xlr, xli, tlr, tli); hann(xrr, xri, trr, tri)
            lr = tlr; li = tli; rr = trr; ri = tri
        }
        let qr = pr, qi = pi
        // Whitening, four bins at a time (explicit SIMD: the compiler does not vectorise this
        // loop by itself; per-element operations are the same as the scalar tail's).
        let n4 = B & ~3
        var k = 0
        while k < n4 {
            let a = UnsafeRawPointer(lr + k).loadUnaligned(as: SIMD4<Float>.self)
            let b = UnsafeRawPointer(li + k).loadUnaligned(as: SIMD4<Float>.self)
            let c = UnsafeRawPointer(rr + k).loadUnaligned(as: SIMD4<Float>.self)
            let d = UnsafeRawPointer(ri + k).loadUnaligned(as: SIMD4<Float>.self)
            let re = a * c + b * d
            let im = a * d - b * c
            let g = SIMD4<Float>(repeating: 1) / ((re * re + im * im).squareRoot() + SIMD4<Float>(repeating: 1e-20))
            UnsafeMutableRawPointer(qr + k).storeBytes(of: re * g, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(qi + k).storeBytes(of: im * g, as: SIMD4<Float>.self)
            k += 4
        }
        while k < B {
            let re = lr[k] * rr[k] + li[k] * ri[k]
            let im = lr[k] * ri[k] - li[k] * rr[k]
            let g = 1 / ((re * re + im * im).squareRoot() + 1e-20)
            qr[k] = re * g; qi[k] = im * g
            k += 1
        }
        // DC and Nyquist of a real signal's spectrum are real (a real inverse FFT ignores
        // their imaginary parts; the sliding update can leave float dust there)
        qi[0] = 0; qi[W] = 0
        if let ev = evidence {
            if case .srp = config.pooling {
                ev.update(from: qr, count: B); (ev + B).update(from: qi, count: B)
            } else {
                crossSpectrum(lr, li, rr, ri, re: ev, im: ev + B)
                if config.pooling.needsAutoSpectra {
                    let al = ev + 2 * B, ar = ev + 3 * B
                    for k in 0..<B {
                        al[k] = lr[k] * lr[k] + li[k] * li[k]
                        ar[k] = rr[k] * rr[k] + ri[k] * ri[k]
                    }
                }
            }
        }
        halfSizeInverse()
        let c = inv.output
        for j in 0...(2 * L) {
            let lag = j - L
            cc[j] = lag >= 0 ? c[lag] : c[N + lag]
        }
        var best = 0
        for j in 1...(2 * L) where cc[j] > cc[best] { best = j }
        let lag0 = best - L
        switch config.refinement {
        case .none:
            return Float(lag0)
        case .parabolic:
            guard best > 0 && best < 2 * L else { return Float(lag0) }
            return Float(lag0) + Float(parabolicVertex(Double(cc[best - 1]), Double(cc[best]), Double(cc[best + 1])))
        case .upsampled:
            return Float(upsampledPeak(lag0))
        }
    }

    private func upsampledPeak(_ lag0: Int) -> Double {
        let f = upFactor
        let cR = circR!, cI = circI!, fR = fracR!, fI = fracI!, w = wk!, zr = rotR!, zi = rotI!, fv = fine!
        // rotate the whitened spectrum by the integer lag: R'_k = R_k e^{2 pi i k lag0 / N}
        let m = ((lag0 % N) + N) % N
        var idx = 0
        for k in 0..<B {
            let c = cR[idx], s = cI[idx]
            zr[k] = pr[k] * c - pi[k] * s; zi[k] = pr[k] * s + pi[k] * c
            idx += m; if idx >= N { idx -= N }
        }
        var c0: Float = 0
        for k in 0..<B { c0 += w[k] * zr[k] }
        fv[f] = Double(c0)
        for j in 1...f {
            let tr = fR + (j - 1) * B, ti = fI + (j - 1) * B
            var a: Float = 0, b: Float = 0
            for k in 0..<B { a += zr[k] * tr[k]; b += zi[k] * ti[k] }
            fv[f + j] = Double(a - b); fv[f - j] = Double(a + b)
        }
        var best = 0
        for j in 1...(2 * f) where fv[j] > fv[best] { best = j }
        var off = Double(best - f)
        if best > 0 && best < 2 * f { off += parabolicVertex(fv[best - 1], fv[best], fv[best + 1]) }
        return Double(lag0) + off / Double(f)
    }

    // MARK: - Pooled evidence

    /// `conj(L) R` of the given spectra into `re`/`im` (bins 0 ... W; DC and Nyquist real).
    private func crossSpectrum(_ lr: UnsafeMutablePointer<Float>, _ li: UnsafeMutablePointer<Float>,
                               _ rr: UnsafeMutablePointer<Float>, _ ri: UnsafeMutablePointer<Float>,
                               re: UnsafeMutablePointer<Float>, im: UnsafeMutablePointer<Float>) {
        for k in 0..<B {
            re[k] = lr[k] * rr[k] + li[k] * ri[k]
            im[k] = lr[k] * ri[k] - li[k] * rr[k]
        }
        im[0] = 0; im[W] = 0
    }

    /// The delay of pooled cross-power spectra (`evidenceLength` floats, see `evidenceLength`):
    /// weight per `config.pooling`, inverse FFT, the largest correlation in `-maxLag ... maxLag`,
    /// then the band-limited correlation (the exact inverse DTFT of the weighted spectrum)
    /// evaluated on a 1/8-sample grid within +-1 sample of that peak and a parabola through
    /// the best grid point and its neighbours. Correlations are divided by the window's
    /// overlap at each lag (see `overlap`) before peaks are compared.
    ///
    /// Confidence: the correlation at the peak divided by its largest possible value
    /// `sum_k w_k |P_k|` (the weighted spectrum's magnitudes), i.e. how much of the pooled
    /// spectrum's weight agrees in phase with one delay: 1 for a pure delay, about
    /// `1/sqrt(bins)` for noise.
    ///
    /// `windows`: how many windows were pooled (the learned weighting picks its network by it).
    public func resolve(pooled: UnsafePointer<Float>, windows: Int) -> PooledEstimate? {
        resolve(pooled: pooled, windows: windows, blocks: nil, blockCount: 0, blockWindows: nil)
    }

    /// The learned weighting's dominant-source check with a spread rule reads blocks of this
    /// many windows (`GccMaskDominantCheck.Spread.blockWindows`); nil for other weightings.
    public var wholeBlockWindows: Int? { spreadBlockWindows }
    private let spreadBlockWindows: Int?

    /// `resolve(pooled:windows:)` of a whole stream with its blocks' evidence (see
    /// `EvidenceEstimator`): the learned weighting's dominant-source check uses them.
    public func resolve(pooled: UnsafePointer<Float>, windows: Int, blocks: UnsafePointer<Float>, blockCount: Int,
                        blockWindows: UnsafePointer<Int>) -> PooledEstimate? {
        resolve(pooled: pooled, windows: windows, blocks: Optional(blocks), blockCount: blockCount,
                blockWindows: Optional(blockWindows))
    }

    private func resolve(pooled: UnsafePointer<Float>, windows: Int, blocks: UnsafePointer<Float>?, blockCount: Int,
                         blockWindows: UnsafePointer<Int>?) -> PooledEstimate? {
        let gr = pooled, gi = pooled + B
        if !learned.isEmpty {
            // the last group whose span the pooled windows reach, else the first (an index
            // loop, not last(where:): a debug build allocates the closure's context per update)
            var g = 0
            for i in 1..<max(1, learned.count) where learned[i].minWindows <= windows { g = i }
            // blocks of another size than this group's spread rule wants are not used
            let fits = learned[g].networks.dominant?.spread?.blockWindows == spreadBlockWindows
            return learned[g].networks.estimate(pooled: pooled, blocks: fits ? blocks : nil, blockCount: fits ? blockCount : 0,
                                                blockStride: evidenceLength, blockWindows: fits ? blockWindows : nil)
        }
        var norm = 0.0
        // PHAT weightings: bins more than 200 dB below the strongest carry no phase information.
        var floor: Float = 0
        if config.pooling != .srp {
            var peak: Float = 0
            for k in 0..<B { peak = max(peak, gr[k] * gr[k] + gi[k] * gi[k]) }
            guard peak > 0, peak.isFinite else { return nil }
            floor = peak * 1e-20
        }
        switch config.pooling {
        case .learned:
            return nil  // handled above
        case .srp:
            for k in 0..<B {
                pr[k] = gr[k]; pi[k] = gi[k]
            }
        case .phat(let beta):
            for k in 0..<B {
                let m2 = gr[k] * gr[k] + gi[k] * gi[k]
                if m2 <= floor { pr[k] = 0; pi[k] = 0; continue }
                let g: Float = beta == 1 ? 1 / m2.squareRoot() : Float(Foundation.pow(Double(m2), -beta / 2))
                pr[k] = gr[k] * g; pi[k] = gi[k] * g
            }
        case .masked(let beta, let mask):
            let gl = pooled + 2 * B, gR = pooled + 3 * B
            var noise = 0.0, kappa = 0.0
            if case .snr(let k) = mask {
                kappa = k
                // level per bin (not smoothed: on the tuning sets a +-8..32-bin envelope was
                // worse than each bin's own level, which says how reliable its phase is)
                for b in 0..<B { lvl[b] = (max(0, gl[b]) * max(0, gR[b])).squareRoot() }
                var n = 0
                for b in 0..<B where config.pooledBins?.contains(b) ?? true {
                    sel[n] = lvl[b]; n += 1
                }
                guard n > 0 else { return nil }
                noise = Double(quickselect(sel, count: n, rank: n / 4))
            }
            for k in 0..<B {
                let m2 = gr[k] * gr[k] + gi[k] * gi[k]
                let den = Double(gl[k]) * Double(gR[k])
                if m2 <= floor || !(den > 0) { pr[k] = 0; pi[k] = 0; continue }
                let w: Double
                switch mask {
                case .coh: w = min(1, Double(m2) / den)
                case .ml: let c = min(0.99, Double(m2) / den); w = c / (1 - c)
                case .snr: w = max(GCCPHATConfig.PoolWeighting.BinMask.snrFloorGain, 1 - kappa * noise / Double(lvl[k]))
                }
                let g = Float(w * Foundation.pow(Double(m2), -beta / 2))
                pr[k] = gr[k] * g; pi[k] = gi[k] * g
            }
        }
        pi[0] = 0; pi[W] = 0
        if let band = config.pooledBins {
            for k in 0..<B where !band.contains(k) { pr[k] = 0; pi[k] = 0 }
        }
        for k in 0..<B {
            let w = (k == 0 || k == W) ? 1.0 : 2.0
            norm += w * Double((pr[k] * pr[k] + pi[k] * pi[k]).squareRoot())
        }
        guard norm > 0, norm.isFinite else { return nil }
        halfSizeInverse()
        let c = inv.output
        var best = -L
        var bestVal = -Double.infinity
        for lag in -L...L {
            let v = Double(lag >= 0 ? c[lag] : c[N + lag]) / overlap(Double(lag))
            if v > bestVal { bestVal = v; best = lag }
        }
        // Fine grid: tau = best + j/8, j = -8 ... 8.
        let f = 8
        var grid = (Double(-Double.infinity), Double(-Double.infinity), Double(-Double.infinity))
        var bestJ = 0, bestF = -Double.infinity
        var prevF = -Double.infinity
        for j in -f...f {
            let tau = Double(best) + Double(j) / Double(f)
            let v = bandLimitedCorrelation(at: tau) / overlap(tau)
            if v > bestF { bestF = v; bestJ = j; grid = (prevF, v, -Double.infinity) }
            if j == bestJ + 1 { grid.2 = v }
            prevF = v
        }
        var off = 0.0
        if bestJ > -f && bestJ < f { off = parabolicVertex(grid.0, grid.1, grid.2) }
        let tau = min(Double(L), max(Double(-L), Double(best) + (Double(bestJ) + off) / Double(f)))
        let conf = min(1, max(0, bestF / norm))
        return PooledEstimate(delay: tau, confidence: conf)
    }

    /// The analysis window's normalised autocorrelation at lag `tau` (1 at 0): how much of two
    /// windows `tau` samples apart overlaps. Pooled correlations are divided by it, so the
    /// window's own shape (rectangular: `1 - |tau| / W`) does not pull the peak toward lag 0,
    /// which it otherwise does on narrow-band sound, the more so the less the spectrum is
    /// whitened (PHAT-beta < 1).
    @inline(__always) private func overlap(_ tau: Double) -> Double {
        Self.windowOverlap(tau, taper: config.taper, window: W)
    }

    /// See `overlap`: the normalised autocorrelation of a `window`-sample `taper` at lag `tau`.
    static func windowOverlap(_ tau: Double, taper: GCCPHATConfig.Taper, window W: Int) -> Double {
        let a = abs(tau)
        switch taper {
        case .rectangular:
            return max(1e-6, 1 - a / Double(W))
        case .hann:
            // sum_t h[t] h[t+a] / sum_t h[t]^2 for the periodic Hann window, continuous form:
            // ((1 - x)(2 + cos 2 pi x) + 3 sin(2 pi x) / (2 pi)) / 3 with x = a / W.
            let x = min(1, a / Double(W))
            let v = ((1 - x) * (2 + cos(2 * Double.pi * x)) + 3 * sin(2 * Double.pi * x) / (2 * Double.pi)) / 3
            return max(1e-6, v)
        }
    }

    /// `sum_k w_k Re(P_k e^{2 pi i k tau / N})` of the weighted spectrum in `pr`/`pi` (`w` 1
    /// at DC and Nyquist, 2 elsewhere): the inverse real DFT at a fractional lag.
    private func bandLimitedCorrelation(at tau: Double) -> Double {
        let a = 2 * Double.pi * tau / Double(N)
        let sr = cos(a), si = sin(a)
        var zr = 1.0, zi = 0.0
        var acc = 0.0
        for k in 0..<B {
            let w = (k == 0 || k == W) ? 1.0 : 2.0
            acc += w * (Double(pr[k]) * zr - Double(pi[k]) * zi)
            let nr = zr * sr - zi * si
            zi = zr * si + zi * sr; zr = nr
        }
        return acc
    }
}

/// The `rank`-th smallest of `a[0 ..< count]` (0-based), by in-place quickselect (Hoare
/// partition, middle pivot); reorders `a`. No allocation.
func quickselect<T: Comparable>(_ a: UnsafeMutablePointer<T>, count: Int, rank: Int) -> T {
    precondition(count > 0 && rank >= 0 && rank < count)
    var lo = 0, hi = count - 1
    while lo < hi {
        let pivot = a[(lo + hi) / 2]
        var i = lo, j = hi
        while i <= j {
            while a[i] < pivot { i += 1 }
            while a[j] > pivot { j -= 1 }
            if i <= j { let t = a[i]; a[i] = a[j]; a[j] = t; i += 1; j -= 1 }
        }
        if rank <= j { hi = j } else if rank >= i { lo = i } else { return a[rank] }
    }
    return a[lo]
}

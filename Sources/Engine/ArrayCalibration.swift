// ArrayCalibration.swift: checking a two-mic array's channel order and spacing from sound.
// Guided: claps at the LEFT end, then at the RIGHT end (end-fire delays, their signs).
// Passive: the coherence of a diffuse noise field, sinc(2 pi f d / c).
import Foundation

/// A calibration that cannot give an answer, with the one-line reason.
public struct CalibrationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Which end of the array a clap was made at.
public enum ArrayEnd: String, Sendable, CaseIterable {
    case left, right
    /// The sign of the delay a source at this end gives when the channels are in order
    /// (LEFT end: reaches the left mic first, right channel later: positive).
    public var expectedSign: Double { self == .left ? 1 : -1 }
}

// MARK: - Guided (claps)

/// One detected clap: the update where the level peaked.
public struct ClapEvent: Equatable, Sendable {
    /// Time of the loudest update of the clap, seconds.
    public var t: Double
    /// Raw (unsmoothed) delay of that update, samples.
    public var delaySamples: Double
    /// Its level, dBFS, and how far above the background it was, dB.
    public var levelDb: Double
    public var riseDb: Double
    /// Its confidence.
    public var confidence: Double
}

/// Finds claps in a stream of updates (live lines or `TDEPipeline` updates): a clap starts
/// when the level rises `riseDb` above the background, ends when it falls back below
/// `riseDb / 2` above it (or after `maxSeconds`), and is reported at its end with the delay of
/// its loudest update. The background follows the level down at once and up by at most
/// `floorRiseDbPerSecond`, so a clap barely moves it.
public struct ClapDetector: Sendable {
    public var riseDb = 15.0
    public var maxSeconds = 0.6
    public var floorRiseDbPerSecond = 6.0
    /// Claps whose loudest update has a lower confidence are dropped (an echo-dominated or
    /// clipped clap); `rejected` counts them.
    public var minConfidence = 0.2
    public private(set) var rejected = 0

    private var floor: Double?
    private var lastT = 0.0
    private var inClap = false
    private var start = 0.0
    private var best: ClapEvent?

    public init() {}

    /// Feeds one update; returns a clap when one just ended.
    public mutating func feed(t: Double, levelDb: Double, delaySamples: Double, confidence: Double) -> ClapEvent? {
        defer { lastT = t }
        guard levelDb.isFinite, delaySamples.isFinite, confidence.isFinite else { return nil }
        guard let f = floor else { floor = levelDb; return nil }
        let rise = levelDb - f
        var out: ClapEvent? = nil
        if inClap {
            if levelDb > (best?.levelDb ?? -Double.infinity) {
                best = ClapEvent(t: t, delaySamples: delaySamples, levelDb: levelDb, riseDb: rise, confidence: confidence)
            }
            if rise < riseDb / 2 || t - start > maxSeconds {
                inClap = false
                if let b = best {
                    if b.confidence >= minConfidence { out = b } else { rejected += 1 }
                }
                best = nil
            }
        } else if rise >= riseDb {
            inClap = true; start = t
            best = ClapEvent(t: t, delaySamples: delaySamples, levelDb: levelDb, riseDb: rise, confidence: confidence)
        }
        if !inClap {
            floor = min(levelDb, f + floorRiseDbPerSecond * max(0, t - lastT))
        }
        return out
    }
}

/// What the claps say about the array.
public struct GuidedCalibration: Equatable, Sendable {
    /// The left-end claps gave negative delays and the right-end ones positive: the two
    /// channels are swapped.
    public var channelsSwapped: Bool
    /// Spacing `c * mean|tau|`, metres, and its standard uncertainty.
    public var micDistance: Double
    public var micDistanceUncertainty: Double
    /// Mean end-fire delay magnitude, samples, per end.
    public var leftDelay: Double, rightDelay: Double
    public var leftClaps: Int, rightClaps: Int
    /// Remarks (inconsistent claps, a delay at the search limit, ...).
    public var warnings: [String]

    /// Computes the result from the raw delays (samples) of the claps at each end.
    /// `maxDelaySamples`: the estimator's search limit; a delay within `limitMargin` of it
    /// (same units) gives a warning (a clipped end-fire delay shortens the spacing).
    /// Throws when there are fewer than `minClaps` claps at an end, or when the two ends do not
    /// give opposite signs (the claps were not at the two ends, or one end was not heard).
    public static func evaluate(left: [Double], right: [Double], sampleRate: Double, soundSpeed: Double,
                                maxDelaySamples: Double? = nil, limitMargin: Double = 0.6, minClaps: Int = 2) throws -> GuidedCalibration {
        for (name, d) in [("LEFT", left), ("RIGHT", right)] where d.count < minClaps {
            throw CalibrationError("\(d.count) clap(s) detected at the \(name) end, need at least \(minClaps): clap louder or closer, on the array's axis beyond the \(name) mic")
        }
        let ml = left.reduce(0, +) / Double(left.count), mr = right.reduce(0, +) / Double(right.count)
        let sl = left.filter { $0 > 0 }.count, sr = right.filter { $0 > 0 }.count
        // majority sign per end
        let leftPositive = 2 * sl > left.count, rightPositive = 2 * sr > right.count
        guard leftPositive != rightPositive else {
            throw CalibrationError(String(format: "the LEFT-end claps (mean delay %+.2f samples) and the RIGHT-end claps (%+.2f) have the same sign: clap on the array's axis, first beyond the left mic, then beyond the right one", ml, mr))
        }
        let swapped = !leftPositive
        var warnings: [String] = []
        let sign = swapped ? -1.0 : 1.0
        let mags = left.map { sign * $0 } + right.map { -sign * $0 }
        let wrong = mags.filter { $0 <= 0 }.count
        if wrong > 0 { warnings.append("\(wrong) clap(s) gave the opposite sign and were left out") }
        let good = mags.filter { $0 > 0 }
        let n = Double(good.count)
        let mean = good.reduce(0, +) / n
        let sd = good.count > 1 ? (good.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : mean * 0.1
        // standard error plus a 0.05-sample floor for the estimator's own bias
        let u = (sd * sd / n + 0.05 * 0.05).squareRoot()
        let aL = left.map { abs($0) }.reduce(0, +) / Double(left.count)
        let aR = right.map { abs($0) }.reduce(0, +) / Double(right.count)
        if abs(aL - aR) > max(1, 0.15 * max(aL, aR)) {
            warnings.append(String(format: "the two ends disagree (%.2f vs %.2f samples): a clap was off the array's axis (which shortens the delay)", aL, aR))
        }
        if let m = maxDelaySamples, good.contains(where: { $0 > m - limitMargin }) {
            warnings.append("a delay reached the search limit (engine.max_delay_ms): raise it and calibrate again")
        }
        return GuidedCalibration(channelsSwapped: swapped, micDistance: soundSpeed * mean / sampleRate,
                                 micDistanceUncertainty: soundSpeed * u / sampleRate,
                                 leftDelay: aL, rightDelay: aR, leftClaps: left.count, rightClaps: right.count,
                                 warnings: warnings)
    }
}

// MARK: - Passive (diffuse-field coherence)

/// The complex coherence of two channels per frequency (Welch: Hann segments, 50 % overlap),
/// accumulated in `blocks` consecutive parts of the recording (for a jackknife uncertainty).
public struct CoherenceSpectrum: Sendable {
    public var sampleRate: Double
    public var fftSize: Int
    /// Per block, per bin: sum of |L|^2, |R|^2, and of L conj(R) (re, im).
    public var sll: [[Double]], srr: [[Double]], slrRe: [[Double]], slrIm: [[Double]]
    public var segments: Int

    /// Frequency of bin `k`, Hz.
    public func frequency(_ k: Int) -> Double { Double(k) * sampleRate / Double(fftSize) }

    /// Coherence (re, im) at bin `k`, from the blocks in `use` (nil = all).
    public func coherence(_ k: Int, leaving out: Int? = nil) -> (re: Double, im: Double) {
        var a = 0.0, b = 0.0, cr = 0.0, ci = 0.0
        for j in 0..<sll.count where j != out { a += sll[j][k]; b += srr[j][k]; cr += slrRe[j][k]; ci += slrIm[j][k] }
        let den = (a * b).squareRoot()
        guard den > 0 else { return (0, 0) }
        return (cr / den, ci / den)
    }

    /// Welch estimate with `fftSize`-sample Hann segments, hop `fftSize / 2`, in `blocks` parts.
    public static func estimate(left: [Float], right: [Float], sampleRate: Double, fftSize: Int = 1024,
                                blocks: Int = 8) -> CoherenceSpectrum {
        precondition(left.count == right.count && fftSize >= 16)
        let bins = fftSize / 2 + 1, hop = fftSize / 2
        let fl = ForwardRealFFT(size: fftSize), fr = ForwardRealFFT(size: fftSize)
        let win = (0..<fftSize).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(fftSize))) }
        let nseg = left.count >= fftSize ? (left.count - fftSize) / hop + 1 : 0
        let z = [[Double]](repeating: [Double](repeating: 0, count: bins), count: blocks)
        var s = CoherenceSpectrum(sampleRate: sampleRate, fftSize: fftSize, sll: z, srr: z, slrRe: z, slrIm: z, segments: nseg)
        for g in 0..<nseg {
            let off = g * hop
            for i in 0..<fftSize { fl.input[i] = left[off + i] * win[i]; fr.input[i] = right[off + i] * win[i] }
            fl.execute(); fr.execute()
            let blk = min(blocks - 1, g * blocks / max(1, nseg))
            for k in 0..<bins {
                let lr = Double(fl.output[2 * k]), li = Double(fl.output[2 * k + 1])
                let rr = Double(fr.output[2 * k]), ri = Double(fr.output[2 * k + 1])
                s.sll[blk][k] += lr * lr + li * li
                s.srr[blk][k] += rr * rr + ri * ri
                s.slrRe[blk][k] += lr * rr + li * ri
                s.slrIm[blk][k] += li * rr - lr * ri
            }
        }
        return s
    }
}

/// The spacing fitted to a diffuse-field coherence, and whether the field was diffuse enough.
public struct DiffuseFieldFit: Equatable, Sendable {
    /// Fitted spacing, metres, and its jackknife standard uncertainty.
    public var micDistance: Double
    public var micDistanceUncertainty: Double
    /// Fitted coherence scale (1 = no uncorrelated noise; mic self-noise lowers it).
    public var scale: Double
    /// RMS misfit of the real part, and RMS imaginary part, over the band.
    public var residual: Double
    public var imaginaryRMS: Double
    /// Band used, Hz.
    public var bandHz: ClosedRange<Double>
    /// Segments averaged.
    public var segments: Int
    /// nil when the fit can be trusted; otherwise why not (one line).
    public var untrustedReason: String?
    public var trusted: Bool { untrustedReason == nil }

    /// Largest RMS misfit of a trusted fit.
    public static let maxResidual = 0.12
    /// Largest RMS imaginary coherence of a trusted fit (a diffuse field's is 0).
    public static let maxImaginary = 0.15
    /// Smallest coherence scale of a trusted fit.
    public static let minScale = 0.3

    /// Fits `scale * sinc(2 pi f d / c)` to the real part of the coherence over `band`
    /// (default 100 Hz ... 0.44 x the sample rate, at most 7 kHz), d in `searchRange` metres:
    /// a 0.5 mm grid, `scale` by least squares for each d, a parabola through the best point;
    /// uncertainty by leaving out one block at a time (jackknife).
    public static func fit(_ s: CoherenceSpectrum, soundSpeed: Double = 343, band: ClosedRange<Double>? = nil,
                           searchRange: ClosedRange<Double> = 0.01...0.6, minSegments: Int = 150) throws -> DiffuseFieldFit {
        guard s.segments >= minSegments else {
            throw CalibrationError(String(format: "too short for a passive calibration: %.1f s of audio, need at least %.1f s (a minute is best)",
                                          Double((s.segments + 1) * s.fftSize / 2) / s.sampleRate,
                                          Double((minSegments + 1) * s.fftSize / 2) / s.sampleRate))
        }
        let band = band ?? 100...min(7000, 0.44 * s.sampleRate)
        let ks = (1..<(s.fftSize / 2)).filter { band.contains(s.frequency($0)) }
        guard ks.count >= 8 else { throw CalibrationError("the band \(band) Hz holds too few frequency bins") }
        var power = 0.0
        for j in 0..<s.sll.count { for k in ks { power += s.sll[j][k] * s.srr[j][k] } }
        guard power > 0 else { throw CalibrationError("a channel is silent (digital zero): no room noise to fit") }
        let omega = ks.map { 2 * Double.pi * s.frequency($0) / soundSpeed }

        func fitOne(_ re: [Double]) -> (d: Double, scale: Double, sse: Double) {
            var bestI = 0, bestSSE = Double.infinity
            let step = 0.0005
            let count = Int(((searchRange.upperBound - searchRange.lowerBound) / step).rounded()) + 1
            var sses = [Double](repeating: 0, count: count)
            var scales = sses
            for i in 0..<count {
                let d = searchRange.lowerBound + Double(i) * step
                var mm = 0.0, ym = 0.0, yy = 0.0
                for (j, w) in omega.enumerated() {
                    let x = w * d
                    let m = x < 1e-9 ? 1 : sin(x) / x
                    mm += m * m; ym += re[j] * m; yy += re[j] * re[j]
                }
                let a = mm > 0 ? min(1.05, max(0, ym / mm)) : 0
                let sse = yy - 2 * a * ym + a * a * mm
                sses[i] = sse; scales[i] = a
                if sse < bestSSE { bestSSE = sse; bestI = i }
            }
            var off = 0.0
            if bestI > 0 && bestI < count - 1 {
                let den = sses[bestI - 1] - 2 * sses[bestI] + sses[bestI + 1]
                if den > 0 { off = max(-0.5, min(0.5, 0.5 * (sses[bestI - 1] - sses[bestI + 1]) / den)) }
            }
            return (searchRange.lowerBound + (Double(bestI) + off) * step, scales[bestI], bestSSE)
        }

        let all = ks.map { s.coherence($0) }
        let f = fitOne(all.map(\.re))
        let n = Double(ks.count)
        let residual = (max(0, f.sse) / n).squareRoot()
        let imag = (all.map { $0.im * $0.im }.reduce(0, +) / n).squareRoot()
        // jackknife over the blocks
        let B = s.sll.count
        var jk: [Double] = []
        if B > 1 {
            for b in 0..<B { jk.append(fitOne(ks.map { s.coherence($0, leaving: b).re }).d) }
        }
        let jm = jk.isEmpty ? f.d : jk.reduce(0, +) / Double(jk.count)
        let u = jk.isEmpty ? 0 : (Double(B - 1) / Double(B) * jk.map { ($0 - jm) * ($0 - jm) }.reduce(0, +)).squareRoot()

        var reason: String? = nil
        let firstZero = Double.pi / omega.last!  // spacing whose first sinc zero is at the band's top
        if f.scale < minScale {
            reason = String(format: "the channels are hardly coherent (scale %.2f < %.2f): mic self-noise or electrical noise dominates, or the channels are not two mics of one array", f.scale, minScale)
        } else if imag > maxImaginary {
            reason = String(format: "the field is not diffuse: a directional source dominates (RMS imaginary coherence %.2f > %.2f); record quiet room noise with nobody talking and no loudspeaker or fan near the array", imag, maxImaginary)
        } else if residual > maxResidual {
            reason = String(format: "the field is not diffuse: the coherence does not follow sinc(2 pi f d / c) (RMS misfit %.2f > %.2f); record quiet room noise away from single noise sources", residual, maxResidual)
        } else if f.d < 1.2 * firstZero {
            reason = String(format: "the coherence stays high over the whole band: a source near broadside dominates, or the spacing is below %.3f m, too small to fit below %.0f Hz", 1.2 * firstZero, band.upperBound)
        } else if f.d > searchRange.upperBound - 0.005 {
            reason = "the fitted spacing is at the top of the search range: no spacing fits"
        } else if u > 0.1 * f.d {
            reason = String(format: "the fit is unstable across the recording (spacing %.3f +- %.3f m): record longer, in steadier noise", f.d, u)
        }
        return DiffuseFieldFit(micDistance: f.d, micDistanceUncertainty: u, scale: f.scale, residual: residual,
                               imaginaryRMS: imag, bandHz: band, segments: s.segments, untrustedReason: reason)
    }
}

// MARK: - Guided session

/// The guided procedure over a stream of updates: the first `clapsPerEnd` claps are taken as
/// made at the LEFT end, the next `clapsPerEnd` at the RIGHT end (the prompts follow `phase`).
public struct GuidedSession: Sendable {
    public let clapsPerEnd: Int
    public var detector = ClapDetector()
    public private(set) var left: [ClapEvent] = []
    public private(set) var right: [ClapEvent] = []

    public init(clapsPerEnd: Int = 3) {
        precondition(clapsPerEnd >= 1)
        self.clapsPerEnd = clapsPerEnd
    }

    /// The end the next clap is expected at; nil when every clap has been heard.
    public var phase: ArrayEnd? {
        left.count < clapsPerEnd ? .left : (right.count < clapsPerEnd ? .right : nil)
    }

    /// Feeds one update; returns the clap it completed (already assigned to its end), if any.
    public mutating func feed(t: Double, levelDb: Double, delaySamples: Double, confidence: Double) -> (ArrayEnd, ClapEvent)? {
        guard let end = phase,
              let c = detector.feed(t: t, levelDb: levelDb, delaySamples: delaySamples, confidence: confidence) else { return nil }
        if end == .left { left.append(c) } else { right.append(c) }
        return (end, c)
    }

    /// The calibration from the claps heard so far (at least 2 per end).
    public func result(sampleRate: Double, soundSpeed: Double, maxDelaySamples: Double? = nil,
                       limitMargin: Double = 0.6) throws -> GuidedCalibration {
        try GuidedCalibration.evaluate(left: left.map(\.delaySamples), right: right.map(\.delaySamples),
                                       sampleRate: sampleRate, soundSpeed: soundSpeed,
                                       maxDelaySamples: maxDelaySamples, limitMargin: limitMargin,
                                       minClaps: min(2, clapsPerEnd))
    }
}

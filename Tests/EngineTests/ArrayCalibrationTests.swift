import XCTest
@testable import Engine

/// Simulated sound fields for the calibration tests.
enum Fields {
    /// A diffuse field: `waves` plane waves from directions uniform on the sphere, each an
    /// independent white noise, reaching the mics (on the x axis, `spacing` apart) with the
    /// fractional delays `+-spacing cos(theta) / (2 c)`, applied in the frequency domain; plus
    /// independent sensor noise `noiseDb` below the field. `2^log2n` samples at 16 kHz.
    static func diffuse(spacing: Double, log2n: Int = 17, waves: Int = 64, noiseDb: Double = -20,
                        seed: UInt64 = 1) -> (left: [Float], right: [Float]) {
        let n = 1 << log2n, bins = n / 2 + 1
        var lre = [Double](repeating: 0, count: bins), lim = lre, rre = lre, rim = lre
        var rng = SeededRNG(seed: seed)
        for j in 0..<waves {
            // uniform on the sphere (cos theta uniform), stratified so that a few dozen waves
            // already give the diffuse coherence
            let cosTheta = -1 + (2 * Double(j) + rng.uniform()) / Double(waves)
            let tau = spacing * cosTheta / 343 * 16000 / 2                // half delay, samples
            let dphi = 2 * Double.pi * tau / Double(n)
            let cr = cos(dphi), ci = sin(dphi)
            var zr = 1.0, zi = 0.0
            for k in 0..<bins {
                let sr = rng.gaussian(), si = rng.gaussian()
                // left: S e^{+i phi}, right: S e^{-i phi}
                lre[k] += sr * zr - si * zi; lim[k] += sr * zi + si * zr
                rre[k] += sr * zr + si * zi; rim[k] += si * zr - sr * zi
                let nr = zr * cr - zi * ci; zi = zr * ci + zi * cr; zr = nr
            }
        }
        func synth(_ re: [Double], _ im: [Double]) -> [Float] {
            let f = InverseRealFFT(size: n)
            for k in 0..<bins { f.input[2 * k] = Float(re[k]); f.input[2 * k + 1] = k == 0 || k == bins - 1 ? 0 : Float(im[k]) }
            f.execute()
            return Array(UnsafeBufferPointer(start: f.output, count: n))
        }
        var l = synth(lre, lim), r = synth(rre, rim)
        let rms = (l.map { Double($0 * $0) }.reduce(0, +) / Double(n)).squareRoot()
        let g = 0.1 / rms, ns = 0.1 * pow(10, noiseDb / 20)
        for i in 0..<n {
            l[i] = Float(Double(l[i]) * g + ns * rng.gaussian())
            r[i] = Float(Double(r[i]) * g + ns * rng.gaussian())
        }
        return (l, r)
    }

    /// Claps (8 ms decaying noise bursts) at `times`, each reaching the right channel `delay`
    /// samples after the left (fractional), over a quiet noise floor.
    static func claps(times: [Double], delays: [Double], seconds: Double, seed: UInt64 = 3) -> (left: [Float], right: [Float]) {
        let n = Int(seconds * 16000)
        var rng = SeededRNG(seed: seed)
        var l = (0..<n).map { _ in Float(0.0005 * rng.gaussian()) }, r = (0..<n).map { _ in Float(0.0005 * rng.gaussian()) }
        for (t, d) in zip(times, delays) {
            let len = 128, pad = 64
            let burst = (0..<(len + 2 * pad)).map { i -> Double in
                let j = i - pad
                return j < 0 || j >= len ? 0 : 0.5 * rng.gaussian() * exp(-Double(j) / 48)
            }
            let s = Int(t * 16000)
            for j in 0..<(len + 64) where s + j < n {
                l[s + j] += Float(TestSignals.interpolate(burst, at: Double(j + pad)))
                r[s + j] += Float(TestSignals.interpolate(burst, at: Double(j + pad) - d))
            }
        }
        return (l, r)
    }
}

final class ArrayCalibrationTests: XCTestCase {
    func testPassiveFitRecoversSpacings() throws {
        for (i, d) in [0.05, 0.1, 0.2, 0.3].enumerated() {
            let s = Fields.diffuse(spacing: d, seed: UInt64(10 + i))
            let fit = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: s.left, right: s.right, sampleRate: 16000))
            XCTAssertNil(fit.untrustedReason, "d = \(d): \(fit)")
            XCTAssertEqual(fit.micDistance, d, accuracy: 0.1 * d, "d = \(d): \(fit)")
            XCTAssertLessThan(fit.micDistanceUncertainty, 0.1 * d)
            XCTAssertGreaterThan(fit.scale, 0.85)          // sensor noise 20 dB below: 0.99
            print(String(format: "passive calibration: true %.3f m, fitted %.4f +- %.4f m (error %.1f %%), misfit %.3f",
                         d, fit.micDistance, fit.micDistanceUncertainty, 100 * (fit.micDistance - d) / d, fit.residual))
        }
    }

    func testPassiveFitRefusesADirectionalSource() throws {
        // One white-noise source 5 samples off broadside, little else: coherence e^{-i w tau}.
        let s = TestSignals.stereo(.white, count: 1 << 17, delay: 5, snrDb: 20)
        let fit = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: s.left, right: s.right, sampleRate: 16000))
        XCTAssertFalse(fit.trusted)
        XCTAssertTrue(fit.untrustedReason!.contains("not diffuse"), fit.untrustedReason!)
        // A broadside source: coherence 1 everywhere, which a tiny spacing would also give.
        let b = TestSignals.stereo(.white, count: 1 << 17, delay: 0, snrDb: 20)
        let fb = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: b.left, right: b.right, sampleRate: 16000))
        XCTAssertFalse(fb.trusted, "\(fb)")
        // A diffuse field under a loud talker is not trusted either.
        let dif = Fields.diffuse(spacing: 0.1, seed: 4)
        let talker = TestSignals.stereo(.speechLike, count: 1 << 17, delay: -4, snrDb: 60)
        let mix = (zip(dif.left, talker.left).map { $0 + 2 * $1 }, zip(dif.right, talker.right).map { $0 + 2 * $1 })
        let fm = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: mix.0, right: mix.1, sampleRate: 16000))
        XCTAssertFalse(fm.trusted, "\(fm)")
        // Independent channels: not coherent.
        var rng = SeededRNG(seed: 9)
        let u = (0..<(1 << 17)).map { _ in Float(rng.gaussian()) }, v = (0..<(1 << 17)).map { _ in Float(rng.gaussian()) }
        let fu = try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: u, right: v, sampleRate: 16000))
        XCTAssertTrue(fu.untrustedReason?.contains("hardly coherent") ?? false, "\(fu)")
    }

    func testPassiveFitErrorsOnShortOrSilentInput() {
        let s = Fields.diffuse(spacing: 0.1, log2n: 15)   // 2 s
        XCTAssertThrowsError(try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: s.left, right: s.right, sampleRate: 16000))) {
            XCTAssertTrue("\($0)".hasPrefix("too short for a passive calibration: 2.0 s"), "\($0)")
        }
        let z = [Float](repeating: 0, count: 1 << 17)
        XCTAssertThrowsError(try DiffuseFieldFit.fit(CoherenceSpectrum.estimate(left: z, right: z, sampleRate: 16000))) {
            XCTAssertTrue("\($0)".contains("silent"), "\($0)")
        }
    }

    func testGuidedEvaluateSignsAndSpacing() throws {
        // 0.15 m at 16 kHz: 7.0 samples end-fire.
        let tau = 0.15 / 343 * 16000
        let ok = try GuidedCalibration.evaluate(left: [tau, tau + 0.1, tau - 0.1], right: [-tau, -tau + 0.05, -tau],
                                                sampleRate: 16000, soundSpeed: 343)
        XCTAssertFalse(ok.channelsSwapped)
        XCTAssertEqual(ok.micDistance, 0.15, accuracy: 0.002)
        XCTAssertGreaterThan(ok.micDistanceUncertainty, 0)
        XCTAssertTrue(ok.warnings.isEmpty, "\(ok.warnings)")
        let sw = try GuidedCalibration.evaluate(left: [-tau, -tau], right: [tau, tau], sampleRate: 16000, soundSpeed: 343)
        XCTAssertTrue(sw.channelsSwapped)
        XCTAssertEqual(sw.micDistance, 0.15, accuracy: 0.002)
        // end-fire delays clipped at the search limit are flagged
        let clipped = try GuidedCalibration.evaluate(left: [6, 6.1], right: [-6.1, -6], sampleRate: 16000, soundSpeed: 343, maxDelaySamples: 6.13)
        XCTAssertTrue(clipped.warnings.contains { $0.contains("search limit") }, "\(clipped.warnings)")
        XCTAssertFalse(ok.warnings.contains { $0.contains("search limit") })
        let roomy = try GuidedCalibration.evaluate(left: [6, 6.1], right: [-6.1, -6], sampleRate: 16000, soundSpeed: 343, maxDelaySamples: 24)
        XCTAssertTrue(roomy.warnings.isEmpty, "\(roomy.warnings)")
        XCTAssertThrowsError(try GuidedCalibration.evaluate(left: [tau, tau], right: [tau, tau], sampleRate: 16000, soundSpeed: 343)) {
            XCTAssertTrue("\($0)".contains("same sign"), "\($0)")
        }
        XCTAssertThrowsError(try GuidedCalibration.evaluate(left: [tau], right: [-tau, -tau], sampleRate: 16000, soundSpeed: 343)) {
            XCTAssertTrue("\($0)".hasPrefix("1 clap(s) detected at the LEFT end"), "\($0)")
        }
    }

    private func clapPipeline() throws -> TDEPipeline {
        var c = PipelineConfig()
        c.post = .pooled; c.memorySeconds = 0.3; c.micDistance = 0.1
        return try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 16, maxLag: 24, taper: .hann, pooling: .phat(beta: 0.7))), config: c)
    }

    /// End-fire claps through the engine, in order and with the channels swapped.
    func testGuidedSessionOnClapsThroughThePipeline() throws {
        let d = 0.2, tau = d / 343 * 16000
        let times = [1.0, 1.8, 2.6, 4.0, 4.8, 5.6]
        let delays = [tau, tau, tau, -tau, -tau, -tau]
        let s = Fields.claps(times: times, delays: delays, seconds: 6.5)
        for swapped in [false, true] {
            let (l, r) = swapped ? (s.right, s.left) : (s.left, s.right)
            var session = GuidedSession(clapsPerEnd: 3)
            for u in try clapPipeline().process(left: l, right: r) {
                _ = session.feed(t: u.t, levelDb: u.levelDb, delaySamples: u.delaySamples, confidence: u.confidence)
            }
            XCTAssertNil(session.phase, "claps heard: \(session.left.count) + \(session.right.count)")
            XCTAssertEqual(session.left.map(\.t).map { ($0 * 2).rounded(.down) / 2 }, [1.0, 1.5, 2.5])
            let res = try session.result(sampleRate: 16000, soundSpeed: 343, maxDelaySamples: 24)
            XCTAssertEqual(res.channelsSwapped, swapped)
            XCTAssertEqual(res.micDistance, d, accuracy: 0.05 * d, "\(res)")
            XCTAssertLessThan(res.micDistanceUncertainty, 0.05 * d)
        }
    }
}

// Pooled evidence (`post = pooled`): GCC-PHAT cross-spectra and learned band probabilities
// summed over a span or with a time constant, one refined peak.
import XCTest
import EngineTestSupport
@testable import Engine

final class PooledEvidenceTests: XCTestCase {
    private func gcc(step: Int = 8, taper: GCCPHATConfig.Taper = .hann,
                     pooling: GCCPHATConfig.PoolWeighting = .phat(beta: 1)) throws -> GCCPHAT {
        try GCCPHAT(config: GCCPHATConfig(step: step, taper: taper, pooling: pooling))
    }

    private func pipeline(_ est: DelayEstimator, post: VotePost = .pooled, memory: Double = 0,
                          keepAll: Bool = false) throws -> TDEPipeline {
        var c = PipelineConfig()
        c.post = post; c.memorySeconds = memory; c.keepAllVotes = keepAll; c.micDistance = 0.3
        return try TDEPipeline(estimator: est, config: c)
    }

    /// Whole-stream pooled GCC-PHAT recovers fractional delays of both signs to a few
    /// hundredths of a sample, for every weighting, where integer per-window votes cannot.
    /// (Measured: white noise within 0.016 sample, the test signal's own fractional-delay
    /// interpolation included; speech-like within 0.08 with PHAT, 0.03 with PHAT-beta 0.7.)
    func testWholePooledGCCPHATRecoversFractionalDelays() throws {
        for pooling in [GCCPHATConfig.PoolWeighting.phat(beta: 1), .phat(beta: 0.7), .srp,
                        .masked(beta: 0.7, mask: .snr(kappa: 4)), .masked(beta: 1, mask: .coh), .masked(beta: 1, mask: .ml)] {
            for (kind, d) in [(SignalKind.white, 3.3), (.speechLike, -5.7), (.white, -0.45), (.speechLike, 11.25)] {
                let s = TestSignals.stereo(kind, count: 8000, delay: d, snrDb: 30, seed: 3)
                let p = try pipeline(try gcc(pooling: pooling), keepAll: true)
                _ = p.process(left: s.left, right: s.right)
                p.finish()
                let w = p.wholeResult()
                print("[pooled \(pooling.name)] \(kind) \(d): \(w.delaySamples) conf \(w.confidence)")
                XCTAssertEqual(w.delaySamples, d, accuracy: kind == .white ? 0.03 : 0.1, "\(pooling.name) \(kind) \(d)")
                XCTAssertEqual(w.post, .pooled)
                XCTAssertEqual(w.votes, (8000 - 1024) / 8 + 1)
                XCTAssertGreaterThan(w.confidence, 0.2)
                XCTAssertLessThanOrEqual(w.confidence, 1)
            }
        }
    }

    /// Pooling names read back to what they print, and malformed ones are refused.
    func testPoolWeightingNamesRoundTrip() throws {
        typealias P = GCCPHATConfig.PoolWeighting
        let cases: [(String, P)] = [
            ("phat", .phat(beta: 1)), ("srp", .srp), ("phat-beta=0.7", .phat(beta: 0.7)),
            ("coh", .masked(beta: 1, mask: .coh)), ("ml", .masked(beta: 1, mask: .ml)),
            ("snr", .masked(beta: 1, mask: .snr(kappa: 4))), ("phat-beta=0.7+snr", .masked(beta: 0.7, mask: .snr(kappa: 4))),
            ("phat-beta=0.5+snr=2.0", .masked(beta: 0.5, mask: .snr(kappa: 2))), ("phat-beta=0.7+coh", .masked(beta: 0.7, mask: .coh)),
        ]
        for (name, p) in cases {
            XCTAssertEqual(P(parsing: name), p, name)
            XCTAssertEqual(P(parsing: p.name), p, name)
            XCTAssertEqual(p.needsAutoSpectra, name.contains("snr") || name.contains("coh") || name.contains("ml"))
        }
        XCTAssertEqual(P(parsing: "phat+snr"), .masked(beta: 1, mask: .snr(kappa: 4)))
        for bad in ["", "scot", "srp+snr", "phat+", "phat+foo", "snr=0", "snr=-1", "phat-beta=0+snr", "phat+snr+coh", "+snr"] {
            XCTAssertNil(P(parsing: bad), bad)
        }
        // The evidence grows by the two auto-power spectra only when a mask needs them.
        XCTAssertEqual(try gcc(pooling: .masked(beta: 0.7, mask: .snr(kappa: 4))).evidenceLength,
                       2 * (try gcc(pooling: .phat(beta: 0.7))).evidenceLength)
    }

    /// In white noise 10 dB louder than a band-limited source, the noise-floor mask
    /// (`+snr`) stops whitening empty bins up to the source's level: over 24 short clips
    /// (1151 samples, the evaluation's length) its whole-clip error is well below plain
    /// PHAT-beta's. (Measured: see the printed line.)
    func testSNRMaskHelpsBandLimitedSourcesInWhiteNoise() throws {
        var errPlain = 0.0, errMasked = 0.0
        let delays = (0..<24).map { Double($0 % 13) - 6 + 0.37 }
        for (i, d) in delays.enumerated() {
            let s = TestSignals.stereo(.speechLike, count: 1151, delay: d, snrDb: -10, seed: UInt64(100 + i))
            for masked in [false, true] {
                let pooling: GCCPHATConfig.PoolWeighting = masked ? .masked(beta: 0.7, mask: .snr(kappa: 4)) : .phat(beta: 0.7)
                let p = try pipeline(try gcc(step: 16, taper: .rectangular, pooling: pooling), keepAll: true)
                _ = p.process(left: s.left, right: s.right)
                p.finish()
                let e = abs(p.wholeResult().delaySamples - d)
                if masked { errMasked += e } else { errPlain += e }
            }
        }
        errPlain /= Double(delays.count); errMasked /= Double(delays.count)
        print("[snr mask] -10 dB, 24 clips: MAE phat-beta=0.7 \(errPlain) samples, +snr \(errMasked)")
        XCTAssertLessThan(errMasked, 0.8 * errPlain)
    }

    /// The pooled vector of an update is the sum of exactly the windows the votes of the same
    /// span use (checked against the estimator's own evidence, summed here), and block sizes
    /// do not change any update.
    func testSpanPoolingSumsTheSpansWindowsAndIgnoresBlockSizes() throws {
        let s = TestSignals.stereo(.speechLike, count: 9600, delay: 4.4, snrDb: 20, seed: 9)
        let a = try pipeline(try gcc()).process(left: s.left, right: s.right)
        XCTAssertEqual(a.count, 12)
        XCTAssertTrue(a[0].flags.contains(.noVotes))
        // Reference: every window's evidence, then the span sums.
        let ref = try gcc()
        let L = ref.evidenceLength
        var evidence: [Int64: [Float]] = [:]
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: L * 2000)
        defer { buf.deallocate() }
        ref.evidenceOutput = buf
        var votes = [Vote](repeating: Vote(start: 0, delay: 0), count: 2000)
        let n = s.left.withUnsafeBufferPointer { l in s.right.withUnsafeBufferPointer { r in
            votes.withUnsafeMutableBufferPointer { ref.process(left: l, right: r, votes: $0) } } }
        for k in 0..<n { evidence[votes[k].start] = Array(UnsafeBufferPointer(start: buf + k * L, count: L)) }
        let sum = UnsafeMutablePointer<Float>.allocate(capacity: L)
        defer { sum.deallocate() }
        for u in a.dropFirst() {
            let end = u.sampleIndex, lo = end - 1600, hi = end - 1024
            sum.update(repeating: 0, count: L)
            var count = 0
            for (st, e) in evidence.sorted(by: { $0.key < $1.key }) where st >= lo && st <= hi {
                for j in 0..<L { sum[j] += e[j] }
                count += 1
            }
            let r = try XCTUnwrap(ref.resolve(pooled: sum, windows: count))
            XCTAssertEqual(u.votes, count)
            XCTAssertEqual(u.delaySamples, r.delay, "update at \(u.sampleIndex)")
            XCTAssertEqual(u.confidence, r.confidence)
            XCTAssertEqual(u.delaySamples, 4.4, accuracy: 0.5)
        }
        let p = try pipeline(try gcc())
        var b: [Update] = []
        feedInBlocks(s.left, s.right, sizes: [333, 1, 799, 801, 64, 4000]) { l, r in
            p.process(left: l, right: r) { b.append($0) }
        }
        XCTAssertEqual(a, b)
    }

    /// Memory mode: a source that jumps from +6 to -3 samples. The estimate follows within a
    /// few time constants, stays on the old delay for the first update after the jump (old
    /// evidence dominates), and is exact block-size independent.
    func testMemoryFollowsAJumpWithinAFewTimeConstants() throws {
        let a = TestSignals.stereo(.white, count: 16000, delay: 6, snrDb: 30, seed: 1)
        let b = TestSignals.stereo(.white, count: 16000, delay: -3, snrDb: 30, seed: 2)
        let ups = try pipeline(try gcc(), memory: 0.2).process(left: a.left + b.left, right: a.right + b.right)
        XCTAssertEqual(ups.count, 40)
        for u in ups[3..<20] { XCTAssertEqual(u.delaySamples, 6, accuracy: 0.1, "t \(u.t)") }
        XCTAssertEqual(ups[20].delaySamples, 6, accuracy: 0.5)       // t = 1.05: mostly old
        // within 0.5 s (2.5 time constants) of the jump the new source dominates
        for u in ups[30...] { XCTAssertEqual(u.delaySamples, -3, accuracy: 0.1, "t \(u.t)") }
        let firstNew = ups.firstIndex { abs($0.delaySamples + 3) < 0.5 }!
        print("[memory 0.2 s] first update within 0.5 sample of the new delay: t = \(ups[firstNew].t)")
        XCTAssertLessThan(ups[firstNew].t, 1.4)
    }

    func testPooledNeedsAnEvidenceEstimatorAndAValidMemory() throws {
        final class NoEvidence: DelayEstimator {
            let name = "none"; let windowLength = 1024; let voteStride = 1; let maxDelay = 4
            let voteLatency = 0; var samplesConsumed: Int64 = 0
            func maxVotes(forBlockLength n: Int) -> Int { n + 1 }
            func process(left: UnsafeBufferPointer<Float>, right: UnsafeBufferPointer<Float>,
                         votes: UnsafeMutableBufferPointer<Vote>) -> Int { 0 }
            func reset() {}
        }
        XCTAssertThrowsError(try pipeline(NoEvidence())) { XCTAssertTrue("\($0)".contains("evidence")) }
        XCTAssertThrowsError(try pipeline(try gcc(), memory: -1))
        XCTAssertThrowsError(try pipeline(try gcc(), memory: .infinity))
    }

    /// Digital silence carries no evidence: delay 0 at confidence 0, flagged silent and low
    /// confidence, never a direction invented.
    func testSilenceGivesNoPooledEstimate() throws {
        let z = [Float](repeating: 0, count: 4000)
        let p = try pipeline(try gcc(), keepAll: true)
        let ups = p.process(left: z, right: z)
        XCTAssertTrue(ups[0].flags.contains(.noVotes))
        for u in ups.dropFirst() {
            XCTAssertTrue(u.flags.isSuperset(of: [.silent, .lowConfidence, .holding]), "\(u.flags.names)")
            XCTAssertEqual(u.delaySamples, 0); XCTAssertEqual(u.confidence, 0)
        }
        let w = p.wholeResult()
        XCTAssertEqual(w.votes, (4000 - 1024) / 8 + 1)
        XCTAssertEqual(w.confidence, 0)
        XCTAssertTrue(w.flags.contains(.lowConfidence))
    }

    /// Learned resolve: exact for a Gaussian-shaped (log-parabolic) pooled peak, confidence is
    /// the mass within one sample, empty evidence resolves to nothing.
    func testLearnedResolveOnKnownDistributions() throws {
        let est = try LearnedEstimator(model: try smallV1Model())
        let n = est.evidenceLength
        XCTAssertEqual(n, 49)
        var q = [Float](repeating: 0, count: n)
        for k in 0..<n { let d = Double(k - 24) - 2.3; q[k] = Float(exp(-d * d / 2)) * 7 }
        let r = try XCTUnwrap(q.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!, windows: 1) })
        XCTAssertEqual(r.delay, 2.3, accuracy: 1e-3)
        let total = q.reduce(0, +)
        XCTAssertEqual(r.confidence, Double((q[25] + q[26] + q[27]) / total), accuracy: 1e-5)
        let zero = [Float](repeating: 0, count: n)
        XCTAssertNil(zero.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!, windows: 1) })
    }

    /// Learned evidence is each window's softmax band; the pooled whole-stream estimate of the
    /// pipeline equals resolving the sum of those bands.
    func testLearnedPooledIsTheSumOfWindowDistributions() throws {
        let model = try smallV1Model()
        let s = TestSignals.stereo(.speechLike, count: 4000, delay: 3, snrDb: 30, seed: 4)
        let ref = try LearnedEstimator(model: model)
        let n = ref.evidenceLength
        var sum = [Double](repeating: 0, count: n)
        var rows = 0
        ref.affinityObserver = { _, row in
            let m = row.max()!
            var z = 0.0
            var p = [Double](repeating: 0, count: row.count)
            for k in 0..<row.count { p[k] = exp(Double(row[k] - m)); z += p[k] }
            for k in 0..<row.count { sum[k] += p[k] / z }
            rows += 1
        }
        _ = ref.processAll(left: s.left, right: s.right, blockSize: 700)
        var sc = [Vote](repeating: Vote(start: 0, delay: 0), count: 64)
        _ = sc.withUnsafeMutableBufferPointer { ref.flush(votes: $0) }
        let p = try pipeline(try LearnedEstimator(model: model), keepAll: true)
        _ = p.process(left: s.left, right: s.right)
        p.finish()
        let w = p.wholeResult()
        XCTAssertEqual(w.votes, rows)
        let f = sum.map { Float($0) }
        let r = try XCTUnwrap(f.withUnsafeBufferPointer { ref.resolve(pooled: $0.baseAddress!, windows: rows) })
        XCTAssertEqual(w.delaySamples, r.delay, accuracy: 1e-3)
        XCTAssertEqual(w.confidence, r.confidence, accuracy: 1e-3)
    }

    /// A pooled band keeps only its bins: two sources in different bands (multisines with
    /// exact delays +5 and -6 samples); each band reads its own source.
    func testPooledBandSelectsItsSource() throws {
        let n = 16000
        var rng = SeededRNG(seed: 17)
        var left = [Float](repeating: 0, count: n), right = left
        func add(_ fLo: Double, _ fHi: Double, _ d: Double) {
            for _ in 0..<60 {
                let f = fLo + (fHi - fLo) * rng.uniform(), ph = 2 * Double.pi * rng.uniform()
                for t in 0..<n {
                    left[t] += Float(0.02 * cos(2 * Double.pi * f * Double(t) / 16000 + ph))
                    right[t] += Float(0.02 * cos(2 * Double.pi * f * (Double(t) - d) / 16000 + ph))
                }
            }
        }
        add(300, 900, 5); add(4500, 7000, -6)
        func whole(_ bins: ClosedRange<Int>?) throws -> Double {
            var cfg = GCCPHATConfig(step: 16, pooling: .phat(beta: 0.7)); cfg.pooledBins = bins
            let p = try pipeline(try GCCPHAT(config: cfg), keepAll: true)
            _ = p.process(left: left, right: right)
            return p.wholeResult().delaySamples
        }
        // 2048-point spectrum at 16 kHz: 7.8125 Hz per bin.
        XCTAssertEqual(try whole(38...116), 5, accuracy: 0.05)      // 297-906 Hz
        XCTAssertEqual(try whole(575...896), -6, accuracy: 0.05)    // 4.49-7 kHz
    }
}

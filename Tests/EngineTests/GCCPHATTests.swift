import XCTest
import EngineTestSupport
@testable import Engine

final class GCCPHATTests: XCTestCase {
    private func votes(_ l: [Float], _ r: [Float], _ cfg: GCCPHATConfig, block: Int = 4096) throws -> [Vote] {
        try GCCPHAT(config: cfg).processAll(left: l, right: r, blockSize: block)
    }

    private func aggregate(_ v: [Vote], _ post: VotePost) -> VoteResult {
        v.map(\.delay).withUnsafeBufferPointer { VoteAggregator().aggregate($0, post: post) }
    }

    /// The paper's rectangular window is used for the wide-band signals; band-limited noise
    /// needs the Hann taper (with a rectangular window the truncation leakage of the out-of-band
    /// bins, which PHAT weights as much as the rest, biases the peak toward lag 0; see
    /// `testRectangularWindowIsBiasedOnBandLimitedNoise`).
    private func taper(_ kind: SignalKind) -> GCCPHATConfig.Taper {
        kind == .speechLike ? .hann : .rectangular
    }

    func testIntegerDelaysAllSignalsBothPosts() throws {
        for kind in SignalKind.allCases {
            let cfg = GCCPHATConfig(step: 16, taper: taper(kind))   // integer argmax, as the paper
            for d in [-20, -7, 0, 3, 20] {
                let s = TestSignals.stereo(kind, count: 4000, delay: Double(d), snrDb: 40, seed: UInt64(d + 100))
                let v = try votes(s.left, s.right, cfg)
                XCTAssertEqual(v.count, (4000 - 1024) / 16 + 1)
                for post in VotePost.voteBased {
                    let r = aggregate(v, post)
                    XCTAssertEqual(r.delay, Double(d), accuracy: 0.1, "\(kind) d=\(d) \(post)")
                }
            }
        }
    }

    func testFractionalDelaysAllSignalsBothPosts() throws {
        for kind in SignalKind.allCases {
            let cfg = GCCPHATConfig(step: 64, refinement: .upsampled(factor: 8), taper: taper(kind))
            for d in [-19.6, -12.25, -3.5, 0.3, 4.75, 13.4, 19.9] {
                // band-limited noise: PHAT gives its noise-only bins full weight, so each vote is
                // noisier; average over 2 s instead of 1 s
                let n = kind == .speechLike ? 32000 : 16000
                let s = TestSignals.stereo(kind, count: n, delay: d, snrDb: 40, seed: 7)
                let v = try votes(s.left, s.right, cfg)
                for post in VotePost.voteBased {
                    let r = aggregate(v, post)
                    XCTAssertEqual(r.delay, d, accuracy: 0.1, "\(kind) d=\(d) \(post)")
                }
            }
        }
    }

    func testRectangularWindowIsBiasedOnBandLimitedNoise() throws {
        // documents why the Hann taper exists: same signal, rectangular mean is off by > 0.1
        let s = TestSignals.stereo(.speechLike, count: 16000, delay: 4.75, snrDb: 40, seed: 7)
        let rect = aggregate(try votes(s.left, s.right, GCCPHATConfig(step: 64, refinement: .upsampled(factor: 8))), .mean)
        let hann = aggregate(try votes(s.left, s.right, GCCPHATConfig(step: 64, refinement: .upsampled(factor: 8), taper: .hann)), .mean)
        XCTAssertGreaterThan(abs(rect.delay - 4.75), 0.2)
        XCTAssertLessThan(abs(hann.delay - 4.75), 0.1)
    }

    func testParabolicRefinementIsCloserThanInteger() throws {
        let s = TestSignals.stereo(.white, count: 2048, delay: 5.3, snrDb: 40)
        let integer = aggregate(try votes(s.left, s.right, GCCPHATConfig(step: 64)), .mean)
        let parab = aggregate(try votes(s.left, s.right, GCCPHATConfig(step: 64, refinement: .parabolic)), .mean)
        XCTAssertEqual(integer.delay, 5, accuracy: 1e-9)
        XCTAssertLessThan(abs(parab.delay - 5.3), 0.25)
        XCTAssertGreaterThan(parab.delay, 5.05)
    }

    func testSignConventionBothWays() throws {
        // right channel later by 6 samples -> +6; left later by 6 -> -6
        let base = TestSignals.source(.white, count: 3000).map { Float($0) }
        let n = 2000
        let left = Array(base[100..<(100 + n)])
        let rightLater = Array(base[94..<(94 + n)])    // right[i] = src[i-6]
        let rightEarlier = Array(base[106..<(106 + n)])
        let cfg = GCCPHATConfig(step: 50)
        let a = aggregate(try votes(left, rightLater, cfg), .mode)
        let b = aggregate(try votes(left, rightEarlier, cfg), .mode)
        XCTAssertEqual(a.delay, 6, accuracy: 1e-9)
        XCTAssertEqual(b.delay, -6, accuracy: 1e-9)
        // swapping the channels flips the sign
        let c = aggregate(try votes(rightLater, left, cfg), .mode)
        XCTAssertEqual(c.delay, -6, accuracy: 1e-9)
    }

    func testSlidingMatchesDirectAtStepOne() throws {
        let s = TestSignals.stereo(.speechLike, count: 1024 + 700, delay: 4.4, snrDb: 10, seed: 5)
        let slide = try votes(s.left, s.right, GCCPHATConfig(refinement: .upsampled(factor: 4), algorithm: .sliding, resyncInterval: 512))
        let direct = try votes(s.left, s.right, GCCPHATConfig(refinement: .upsampled(factor: 4), algorithm: .direct))
        XCTAssertEqual(slide.count, 701); XCTAssertEqual(direct.count, 701)
        var maxDiff: Float = 0
        for (a, b) in zip(slide, direct) {
            XCTAssertEqual(a.start, b.start)
            maxDiff = max(maxDiff, abs(a.delay - b.delay))
        }
        XCTAssertLessThan(maxDiff, 0.02)
    }

    func testIrregularBlockSizesGiveIdenticalVotes() throws {
        let s = TestSignals.stereo(.chirp, count: 1024 + 600, delay: -8.2, snrDb: 30)
        let cfg = GCCPHATConfig(step: 3, refinement: .parabolic, resyncInterval: 100)
        let whole = try votes(s.left, s.right, cfg, block: 100_000)
        let est = try GCCPHAT(config: cfg)
        var got: [Vote] = []
        var buf = [Vote](repeating: Vote(start: 0, delay: 0), count: 2000)
        feedInBlocks(s.left, s.right, sizes: [1, 2, 1023, 5, 64, 333, 17]) { l, r in
            let c = buf.withUnsafeMutableBufferPointer { est.process(left: l, right: r, votes: $0) }
            got += buf[0..<c]
        }
        XCTAssertEqual(whole.count, 201)
        XCTAssertEqual(got, whole)
        est.reset()
        XCTAssertEqual(est.processAll(left: s.left, right: s.right, blockSize: 7), whole)
    }

    func testInvalidConfigurationsThrowClearErrors() {
        XCTAssertThrowsError(try GCCPHAT(config: GCCPHATConfig(window: 1024, maxLag: 2000))) {
            XCTAssertTrue("\($0)".contains("max lag"))
        }
        XCTAssertThrowsError(try GCCPHAT(config: GCCPHATConfig(step: 0)))
        XCTAssertThrowsError(try GCCPHAT(config: GCCPHATConfig(refinement: .upsampled(factor: 1))))
        XCTAssertEqual(GCCPHATConfig.lags(maxDelayMs: 1.5, sampleRate: 16000), 24)
    }
}

/// GCC-PHAT against a literal double-precision transcription of the paper's recipe (zero-pad
/// to 2n, R = conj(L) R, R / (|R| + 1e-20), inverse DFT, argmax over -24 ... 24).
final class GCCPHATReferenceTests: XCTestCase {
    private func referenceCC(_ l: ArraySlice<Float>, _ r: ArraySlice<Float>, maxLag: Int) -> [Double] {
        let w = l.count, n = 2 * w, bins = w + 1
        func dft(_ x: ArraySlice<Float>) -> ([Double], [Double]) {
            var re = [Double](repeating: 0, count: bins), im = re
            let xs = Array(x)
            for k in 0..<bins {
                var a = 0.0, b = 0.0
                for j in 0..<w {
                    let ph = -2 * Double.pi * Double(k * j % n) / Double(n)
                    a += Double(xs[j]) * cos(ph); b += Double(xs[j]) * sin(ph)
                }
                re[k] = a; im[k] = b
            }
            return (re, im)
        }
        let (lr, li) = dft(l), (rr, ri) = dft(r)
        var pr = [Double](repeating: 0, count: bins), pi = pr
        for k in 0..<bins {
            let re = lr[k] * rr[k] + li[k] * ri[k], im = lr[k] * ri[k] - li[k] * rr[k]
            let g = 1 / ((re * re + im * im).squareRoot() + 1e-20)
            pr[k] = re * g; pi[k] = im * g
        }
        return (-maxLag...maxLag).map { tau in
            var s = 0.0
            for k in 0..<bins {
                let wgt = (k == 0 || k == bins - 1) ? 1.0 : 2.0
                let ph = 2 * Double.pi * Double(((k * tau) % n + n) % n) / Double(n)
                s += wgt * (pr[k] * cos(ph) - pi[k] * sin(ph))
            }
            return s / Double(n)
        }
    }

    func testVotesMatchLiteralRecipe() throws {
        let w = 256, lag = 24
        let s = TestSignals.stereo(.speechLike, count: w + 600, delay: 6.4, snrDb: 5, seed: 11)
        let est = try GCCPHAT(config: GCCPHATConfig(window: w, maxLag: lag, refinement: .parabolic))
        let v = est.processAll(left: s.left, right: s.right)
        XCTAssertEqual(v.count, 601)
        // The check must exercise the parabolic step, not just integer peaks: count windows whose
        // reference value has a sub-sample part from an interior peak.
        var refined = 0
        for start in [0, 137, 300, 451, 600] {
            let cc = referenceCC(s.left[start..<(start + w)], s.right[start..<(start + w)], maxLag: lag)
            var best = 0
            for j in 1..<cc.count where cc[j] > cc[best] { best = j }
            var expect = Double(best - lag)
            if best > 0 && best < cc.count - 1 {
                let a = cc[best - 1], b = cc[best], c = cc[best + 1], den = a - 2 * b + c
                if den < 0 { expect += min(0.5, max(-0.5, 0.5 * (a - c) / den)) }
            }
            if best > 0 && best < cc.count - 1 && abs(expect - expect.rounded()) > 0.05 { refined += 1 }
            XCTAssertEqual(Double(v[start].delay), expect, accuracy: 1e-3, "window \(start)")
            XCTAssertEqual(v[start].start, Int64(start))
        }
        XCTAssertGreaterThanOrEqual(refined, 4, "the windows checked must have sub-sample (parabolic) values")
    }
}

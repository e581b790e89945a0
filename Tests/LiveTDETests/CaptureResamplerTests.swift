import XCTest
@testable import LiveTDE

/// The capture side's resampler: same delay between channels after conversion, bounded latency,
/// and the same samples as the offline streaming resampler.
final class CaptureResamplerTests: XCTestCase {
    /// 48 kHz noise with the right channel 9 samples (3 at 16 kHz) later, fed in 256-frame
    /// periods: the 16 kHz output has the right channel 3 samples later (cross-correlation peak),
    /// and the output equals `StreamResampler`'s.
    func testPeriodsKeepTheDelayAndMatchTheOfflineResampler() throws {
        let n = 48000, d = 9
        var state: UInt64 = 5
        let src = (0..<(n + d)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max) * 0.3
        }
        let left = Array(src[d..<(n + d)]), right = Array(src[0..<n])
        let rs = try CaptureResampler(from: 48000, to: 16000, maxFrames: 256)
        var ol: [Float] = [], or: [Float] = []
        ol.reserveCapacity(n); or.reserveCapacity(n)
        var i = 0
        while i < n {
            let k = min(256, n - i)
            for j in 0..<k { rs.inLeft[j] = left[i + j]; rs.inRight[j] = right[i + j] }
            XCTAssertTrue(rs.process(count: k) { l, r, m in
                ol.append(contentsOf: UnsafeBufferPointer(start: l, count: m))
                or.append(contentsOf: UnsafeBufferPointer(start: r, count: m))
            })
            i += k
        }
        XCTAssertGreaterThan(ol.count, 15000)
        var best = 0, bestV: Float = -1
        for lag in -8...8 {
            var s: Float = 0
            for t in 100..<(ol.count - 100) { s += ol[t] * or[t + lag] }
            if s > bestV { bestV = s; best = lag }
        }
        XCTAssertEqual(best, 3)
        let off = try StreamResampler(from: 48000, to: 16000)
        var fl: [Float] = []
        try left.withUnsafeBufferPointer { l in
            try right.withUnsafeBufferPointer { r in
                try off.process(left: l.baseAddress!, right: r.baseAddress!, count: n) { a, _ in fl.append(contentsOf: a) }
            }
        }
        let m = min(fl.count, ol.count)
        XCTAssertGreaterThan(m, 15000)
        var maxDiff: Float = 0
        for t in 0..<m { maxDiff = max(maxDiff, abs(fl[t] - ol[t])) }
        XCTAssertLessThan(maxDiff, 1e-4)
    }

    /// The added latency is measured, positive and under 50 ms (soxr HQ, linear phase: about 37 ms
    /// for 48 -> 16 kHz and 39 ms for 44.1 -> 16 kHz in 256-frame periods; docs/daemon.md states it).
    func testLatencyIsBounded() throws {
        for (a, b) in [(48000.0, 16000.0), (44100.0, 16000.0), (44100.0, 48000.0)] {
            let lat = try CaptureResampler(from: a, to: b, maxFrames: 256).measuredLatencySeconds()
            print("capture resampler \(a) -> \(b) Hz: latency \(lat * 1000) ms")
            XCTAssertGreaterThan(lat, 0)
            XCTAssertLessThan(lat, 0.05)
        }
    }
}

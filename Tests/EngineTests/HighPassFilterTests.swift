import XCTest
import EngineTestSupport
@testable import Engine

final class HighPassFilterTests: XCTestCase {
    private func run(_ f: inout HighPassFilter, _ l: [Float], _ r: [Float]) -> ([Float], [Float]) {
        var ol = [Float](repeating: 0, count: l.count), or = ol
        l.withUnsafeBufferPointer { lp in r.withUnsafeBufferPointer { rp in
            ol.withUnsafeMutableBufferPointer { o1 in or.withUnsafeMutableBufferPointer { o2 in
                f.process(lp.baseAddress!, rp.baseAddress!, o1.baseAddress!, o2.baseAddress!, count: l.count)
            } }
        } }
        return (ol, or)
    }

    /// The response of the filter as run (a sine through `process`) matches a second-order
    /// Butterworth: -3 dB at the cut-off, -28 dB a decade... two octaves below, flat above.
    func testResponseIsSecondOrderButterworth() throws {
        let fs = 16000.0
        for (hz, want) in [(100.0, 0.5.squareRoot()), (25.0, 1 / (1 + pow(100.0 / 25, 4)).squareRoot()),
                           (1000.0, 1 / (1 + pow(0.1, 4)).squareRoot()), (4000.0, 1.0)] {
            var f = try HighPassFilter(cutoffHz: 100, sampleRate: fs)
            XCTAssertEqual(f.gain(atHz: hz), want, accuracy: 0.01 * want + 1e-4, "formula at \(hz) Hz")
            let n = 48000
            let x = (0..<n).map { Float(sin(2 * Double.pi * hz * Double($0) / fs)) }
            let (y, _) = run(&f, x, x)
            let tail = y[(n / 2)...]   // after the transient
            let rms = (tail.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(tail.count)).squareRoot()
            XCTAssertEqual(rms / 0.5.squareRoot(), want, accuracy: 0.01 * want + 1e-4, "measured at \(hz) Hz")
        }
    }

    /// A DC offset gives no output at all: the state starts where a constant input leaves it.
    func testStartsInSteadyStateSoAnOffsetGivesNoStep() throws {
        var f = try HighPassFilter(cutoffHz: 100, sampleRate: 16000)
        let (y, z) = run(&f, [Float](repeating: 0.4, count: 2000), [Float](repeating: -0.7, count: 2000))
        XCTAssertLessThan(y.map { abs($0) }.max()!, 1e-6)
        XCTAssertLessThan(z.map { abs($0) }.max()!, 1e-6)
        // After reset the next sample is a new start.
        f.reset()
        let (y2, _) = run(&f, [Float](repeating: -0.2, count: 100), [Float](repeating: 0, count: 100))
        XCTAssertLessThan(y2.map { abs($0) }.max()!, 1e-6)
    }

    /// Both channels get the same filter: a delayed copy stays the same delayed copy, exactly,
    /// and block boundaries change nothing.
    func testSameFilterOnBothChannelsAndBlockInvariant() throws {
        let d = 7
        let src = TestSignals.source(.speechLike, count: 6000, seed: 3).map(Float.init)
        let l = [Float](repeating: 0, count: d) + src
        let r = [Float](repeating: 0, count: 2 * d) + src.dropLast(d)
        var f = try HighPassFilter(cutoffHz: 100, sampleRate: 16000)
        let (a, b) = run(&f, l, r)
        for i in (2 * d)..<a.count { XCTAssertEqual(b[i], a[i - d], "sample \(i)") }
        var g = try HighPassFilter(cutoffHz: 100, sampleRate: 16000)
        var pa: [Float] = [], pb: [Float] = []
        var i = 0
        for size in [1, 333, 64, 1000, 4000, 10_000] where i < l.count {
            let n = min(size, l.count - i)
            let (x, y) = run(&g, Array(l[i..<i + n]), Array(r[i..<i + n]))
            pa += x; pb += y; i += n
        }
        XCTAssertEqual(pa, a); XCTAssertEqual(pb, b)
    }

    func testRefusesBadCutoffs() {
        for hz in [0.0, -5, .nan, .infinity, 7200, 9000] {
            XCTAssertThrowsError(try HighPassFilter(cutoffHz: hz, sampleRate: 16000), "\(hz)")
        }
        XCTAssertNoThrow(try HighPassFilter(cutoffHz: 7100, sampleRate: 16000))
        var pc = PipelineConfig(); pc.highpassHz = -1
        XCTAssertThrowsError(try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 16)), config: pc))
        pc.highpassHz = 8000
        XCTAssertThrowsError(try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 16)), config: pc))
    }

    /// Rumble far louder than the source, shared by both mics (long wavelengths), plus different
    /// DC offsets: without the high-pass the whole-clip estimate is pulled to lag 0; with it
    /// the pipeline finds the source's delay. Also: reset gives the same answer again.
    func testPipelineHighPassRemovesRumbleThatPullsTheDelayToZero() throws {
        let n = 1151, delay = 9.0
        let s = TestSignals.stereo(.speechLike, count: n, delay: delay, snrDb: 40, seed: 5)
        // The source at about -30 dBFS; a 15-Hz and a 30-Hz tone (a 1024-sample window holds at
        // most half a period of each) 20 dB above it.
        var l = s.left.map { $0 * 0.05 }, r = s.right.map { $0 * 0.05 }
        var p = 0.0
        for v in l { p += Double(v * v) }
        let amp = (p / Double(n)).squareRoot() * pow(10, 20.0 / 20)
        for i in 0..<n {
            let t = Double(i) / 16000
            let rum = amp * (0.8 * sin(2 * Double.pi * 15 * t + 0.3) + 0.6 * sin(2 * Double.pi * 30 * t + 1.1))
            l[i] += Float(rum + 0.2 * amp); r[i] += Float(rum - 0.1 * amp)
        }
        func whole(_ hz: Double) throws -> (TDEPipeline, Update) {
            var pc = PipelineConfig()
            pc.post = .pooled; pc.keepAllVotes = true; pc.micDistance = 0.3; pc.highpassHz = hz
            let g = try GCCPHAT(config: GCCPHATConfig(step: 16, taper: .rectangular, pooling: .phat(beta: 1)))
            let pipe = try TDEPipeline(estimator: g, config: pc)
            _ = pipe.process(left: l, right: r); pipe.finish()
            return (pipe, pipe.wholeResult())
        }
        let (_, off) = try whole(0)
        XCTAssertLessThan(abs(off.delaySamples), 2, "without the high-pass the rumble wins (lag \(off.delaySamples))")
        let (pipe, on) = try whole(PipelineConfig.defaultHighpassHz)
        XCTAssertEqual(on.delaySamples, delay, accuracy: 0.5)
        pipe.reset()
        _ = pipe.process(left: l, right: r); pipe.finish()
        XCTAssertEqual(pipe.wholeResult().delaySamples, on.delaySamples)
        // The level is that of the filtered audio (the rumble is gone from it).
        XCTAssertLessThan(on.levelDb, off.levelDb - 10)
    }
}

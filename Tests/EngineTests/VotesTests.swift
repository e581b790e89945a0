import XCTest
import EngineTestSupport
@testable import Engine

final class VotesTests: XCTestCase {
    func testModeIgnores40PercentOutliersWhereMeanDoesNot() {
        var rng = SeededRNG(seed: 9)
        var votes: [Float] = []
        for _ in 0..<60 { votes.append(Float(7.3 + 0.01 * (rng.uniform() - 0.5))) }
        for _ in 0..<40 { votes.append(Float(-24 + 48 * rng.uniform())) }
        let agg = VoteAggregator()
        let mode = votes.withUnsafeBufferPointer { agg.mode($0) }
        let mean = votes.withUnsafeBufferPointer { agg.mean($0) }
        XCTAssertEqual(mode.delay, 7.3, accuracy: 0.01)
        XCTAssertEqual(mode.count, 100)
        XCTAssertGreaterThanOrEqual(mode.inliers, 60)
        XCTAssertLessThan(mode.inliers, 64)
        XCTAssertGreaterThan(abs(mean.delay - 7.3), 1.0, "mean should be pulled by outliers")
        XCTAssertLessThan(mean.inlierFraction, 0.7)
    }

    func testModeTakesMiddleOfTiedCandidates() {
        // all votes identical except two far ones: a single cluster -> answer is that value
        let votes: [Float] = [2, 2, 2, 2, -10, 10]
        let r = votes.withUnsafeBufferPointer { VoteAggregator().mode($0) }
        XCTAssertEqual(r.delay, 2, accuracy: 1e-9)
        XCTAssertEqual(r.inliers, 4)
        // two equal clusters: tied candidates around both; the middle tied candidate is in the
        // upper cluster (ties at -3 and 3 -> indices sorted, middle = second cluster)
        let two: [Float] = [-3, -3, 3, 3]
        let r2 = two.withUnsafeBufferPointer { VoteAggregator().mode($0) }
        XCTAssertEqual(r2.delay, 3, accuracy: 1e-9)
        XCTAssertEqual(r2.inlierFraction, 0.5, accuracy: 1e-12)
    }

    func testEmptyAndSingle() {
        let agg = VoteAggregator()
        let e = [Float]().withUnsafeBufferPointer { agg.mode($0) }
        XCTAssertEqual(e.count, 0); XCTAssertEqual(e.inlierFraction, 0)
        let one: [Float] = [4.25]
        XCTAssertEqual(one.withUnsafeBufferPointer { agg.mode($0) }.delay, 4.25, accuracy: 1e-9)
        XCTAssertEqual(one.withUnsafeBufferPointer { agg.mean($0) }.delay, 4.25, accuracy: 1e-9)
    }
}

final class AzimuthTests: XCTestCase {
    let conv = AzimuthConverter(micDistance: 0.2, soundSpeed: 343, sampleRate: 16000)

    func testZeroAndExtremes() {
        XCTAssertEqual(conv.azimuth(delaySamples: 0).degrees, 0, accuracy: 1e-12)
        XCTAssertFalse(conv.azimuth(delaySamples: 0).beyondPhysicalRange)
        let m = conv.maxPhysicalDelaySamples
        XCTAssertEqual(m, 0.2 / 343 * 16000, accuracy: 1e-12)
        XCTAssertEqual(conv.azimuth(delaySamples: m).degrees, 90, accuracy: 1e-6)
        XCTAssertEqual(conv.azimuth(delaySamples: -m).degrees, -90, accuracy: 1e-6)
        XCTAssertFalse(conv.azimuth(delaySamples: m * 0.999).beyondPhysicalRange)
    }

    func testBeyondRangeClampsAndFlags() {
        let m = conv.maxPhysicalDelaySamples
        let r = conv.azimuth(delaySamples: m * 1.5)
        XCTAssertEqual(r.degrees, 90); XCTAssertTrue(r.beyondPhysicalRange)
        let l = conv.azimuth(delaySamples: -m - 3)
        XCTAssertEqual(l.degrees, -90); XCTAssertTrue(l.beyondPhysicalRange)
    }

    func testSignAndRoundTrip() {
        // positive delay (right later, source nearer the left mic) -> positive azimuth (left)
        XCTAssertGreaterThan(conv.azimuth(delaySamples: 2).degrees, 0)
        XCTAssertLessThan(conv.azimuth(delaySamples: -2).degrees, 0)
        for deg in [-80.0, -30, 0, 12.5, 60] {
            let d = conv.delaySamples(azimuthDegrees: deg)
            XCTAssertEqual(conv.azimuth(delaySamples: d).degrees, deg, accuracy: 1e-9)
        }
        XCTAssertEqual(conv.azimuth(delaySamples: conv.maxPhysicalDelaySamples / 2).degrees, 30, accuracy: 1e-9)
    }
}

final class SmootherTests: XCTestCase {
    func testConvergesGatesAndReacquires() {
        var s = DelaySmoother(config: SmootherConfig(alpha: 0.5, beta: 0.0, gateSamples: 2, reacquireAfter: 3))
        var st = s.update(measurement: 5, confidence: 1, t: 0.05)
        XCTAssertEqual(st.delay, 5)
        for i in 2...10 { st = s.update(measurement: 6, confidence: 1, t: 0.05 * Double(i)) }
        XCTAssertEqual(st.delay, 6, accuracy: 0.01)
        st = s.update(measurement: 20, confidence: 1, t: 0.55)      // outlier: gated, value held
        XCTAssertTrue(st.gated); XCTAssertEqual(st.delay, 6, accuracy: 0.01)
        st = s.update(measurement: 20, confidence: 1, t: 0.60)
        XCTAssertTrue(st.gated)
        st = s.update(measurement: 20, confidence: 1, t: 0.65)      // third in a row: jump
        XCTAssertFalse(st.gated); XCTAssertEqual(st.delay, 20)
    }

    func testHoldThenDecay() {
        var s = DelaySmoother(config: SmootherConfig(holdSeconds: 1, decaySeconds: 1))
        _ = s.update(measurement: 3, confidence: 0.8, t: 0)
        var st = s.hold(t: 0.5)
        XCTAssertTrue(st.holding); XCTAssertFalse(st.stale)
        XCTAssertEqual(st.delay, 3); XCTAssertEqual(st.confidence, 0.8, accuracy: 1e-12)
        st = s.hold(t: 2.0)
        XCTAssertTrue(st.stale); XCTAssertEqual(st.delay, 3)
        XCTAssertEqual(st.confidence, 0.8 * exp(-1.0), accuracy: 1e-9)
    }
}

final class VotesSortedPathTests: XCTestCase {
    /// `mode` (sort + binary search, scratch or temporary copy) against the literal scan.
    func testModeMatchesLiteralScan() {
        var rng = SeededRNG(seed: 21)
        for trial in 0..<8 {
            var votes: [Float] = []
            let n = trial < 4 ? 50 + 400 * trial : 3000 + 500 * trial
            for _ in 0..<n {
                let u = rng.uniform()
                // integer votes (GCC-PHAT), clustered continuous votes, and uniform outliers
                if u < 0.4 { votes.append(Float(Int(rng.uniform() * 5) - 2)) }
                else if u < 0.8 { votes.append(Float(3.2 + 0.08 * rng.gaussian())) }
                else { votes.append(Float(-24 + 48 * rng.uniform())) }
            }
            let agg = VoteAggregator(scratchCapacity: 2000)   // trials >= 4 take the copy path
            let a = votes.withUnsafeBufferPointer { agg.modeScan($0) }
            let b = votes.withUnsafeBufferPointer { agg.mode($0) }
            XCTAssertEqual(a.count, b.count)
            XCTAssertEqual(a.inliers, b.inliers, "trial \(trial)")
            XCTAssertEqual(a.delay, b.delay, accuracy: 1e-9, "trial \(trial)")
        }
    }

    func testHeapSort() {
        var rng = SeededRNG(seed: 5)
        var x = (0..<1000).map { _ in rng.gaussian() }
        let expect = x.sorted()
        x.withUnsafeMutableBufferPointer { VoteAggregator.heapSort($0.baseAddress!, $0.count) }
        XCTAssertEqual(x, expect)
    }
}

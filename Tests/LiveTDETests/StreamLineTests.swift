import Foundation
import XCTest
@testable import Engine
@testable import LiveTDE

final class StreamLineTests: XCTestCase {
    /// What the daemon writes (`liveLine`) decodes back to the same values.
    func testRoundTripsLiveLine() throws {
        let u = Update(t: 1.25, sampleIndex: 20000, delaySamples: 3, delayMs: 0.1875, azimuthDeg: 40.025,
                       confidence: 0.9, votes: 145, levelDb: -23.44, method: "gcc-phat", post: .mode,
                       flags: [.holding, .gated], smoothedDelaySamples: 2.9, smoothedAzimuthDeg: 38.6,
                       smoothedConfidence: 0.85)
        let l = try StreamLine.parse(liveLine(u, seq: 7, sampleRate: 16000)).get()
        XCTAssertEqual(l.v, 1); XCTAssertEqual(l.seq, 7); XCTAssertEqual(l.t, 1.25)
        XCTAssertEqual(l.azimuthDeg, 38.6); XCTAssertEqual(l.rawAzimuthDeg, 40.025)
        XCTAssertEqual(l.confidence, 0.85); XCTAssertEqual(l.levelDb, -23.4); XCTAssertEqual(l.votes, 145)
        XCTAssertEqual(l.delayMs, 0.1812); XCTAssertEqual(l.rawDelayMs, 0.1875)   // 0.18125 rounds to even, as printf
        XCTAssertEqual(l.method, "gcc-phat"); XCTAssertEqual(l.flags, ["holding", "gated"])
    }

    func testVersionNullsAndStatus() {
        let base = "\"t\":1,\"delay_ms\":null,\"azimuth_deg\":null,\"confidence\":0,\"level_db\":-200,\"method\":\"m\",\"seq\":1,\"raw_delay_ms\":0,\"raw_azimuth_deg\":0,\"votes\":0,\"flags\":[\"no_votes\"]"
        let ok = try? StreamLine.parse("{\"v\":1,\(base),\"new_field\":3}").get()
        XCTAssertNotNil(ok, "added fields must be accepted within v1")
        XCTAssertTrue(ok!.azimuthDeg.isNaN)
        XCTAssertEqual(StreamLine.parse("{\"v\":2,\(base)}").failureValue, .unknownVersion(2))
        XCTAssertEqual(StreamLine.parse("{\"type\":\"status\",\"v\":1}").failureValue, .status)
        XCTAssertEqual(StreamLine.parse("nonsense").failureValue, .malformed)
        XCTAssertEqual(StreamLine.parse("{\"v\":1}").failureValue, .malformed)
    }

    func testSeqGapCounter() {
        var c = SeqGapCounter()
        XCTAssertEqual(c.record(5), 0)
        XCTAssertEqual(c.record(6), 0)
        XCTAssertEqual(c.record(9), 2)
        XCTAssertEqual(c.record(10), 0)
        XCTAssertEqual(c.record(1), 0)  // daemon restarted
        XCTAssertEqual(c.gaps, 1); XCTAssertEqual(c.missed, 2); XCTAssertEqual(c.restarts, 1)
        c.reset()
        XCTAssertEqual(c.record(100), 0)
        XCTAssertEqual(c.gaps, 1)
    }
}

extension Result {
    var failureValue: Failure? { if case .failure(let e) = self { return e }; return nil }
}

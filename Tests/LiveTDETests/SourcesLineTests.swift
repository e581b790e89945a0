import Foundation
import XCTest
@testable import Engine
@testable import LiveTDE

final class SourcesLineTests: XCTestCase {
    private func update() -> Update {
        Update(t: 1.25, sampleIndex: 20000, delaySamples: 3, delayMs: 0.1875, azimuthDeg: 40.025,
               confidence: 0.9, votes: 145, levelDb: -23.44, method: "gcc-phat", post: .pooled,
               flags: [], smoothedDelaySamples: 2.9, smoothedAzimuthDeg: 38.6, smoothedConfidence: 0.85)
    }

    /// The `sources` array: after `flags`, only when the search is on, numbers never null, and
    /// decoded back by `StreamLine`.
    func testSourcesInTheLiveLineAndAnalyzeLine() throws {
        var u = update()
        XCTAssertFalse(liveLine(u, seq: 1, sampleRate: 16000).contains("sources"))
        XCTAssertFalse(Analyzer.jsonLine(file: "a.wav", u).contains("sources"))
        u.sources = SourceList(enabled: true)
        XCTAssertTrue(liveLine(u, seq: 1, sampleRate: 16000).hasSuffix("\"flags\":[],\"sources\":[]}"))
        u.sources.append(TrackedSource(id: 3, delaySamples: 6, delayMs: 0.375, azimuthDeg: 40.02, confidence: 0.5614, share: 0.571))
        u.sources.append(TrackedSource(id: 1, delaySamples: -5, delayMs: -0.3125, azimuthDeg: -32.41, confidence: 0.4, share: 0))
        u.sources.append(TrackedSource(id: 4, delaySamples: .nan, delayMs: .nan, azimuthDeg: 0, confidence: 0.1, share: 0.1))
        let line = liveLine(u, seq: 1, sampleRate: 16000)
        XCTAssertTrue(line.hasSuffix(",\"sources\":[{\"id\":3,\"delay_ms\":0.3750,\"azimuth_deg\":40.02,\"confidence\":0.561,\"share\":0.571},{\"id\":1,\"delay_ms\":-0.3125,\"azimuth_deg\":-32.41,\"confidence\":0.400,\"share\":0.000}]}"), line)
        let l = try StreamLine.parse(line).get()
        XCTAssertEqual(l.sources.map(\.id), [3, 1])
        XCTAssertEqual(l.sources[1].delayMs, -0.3125); XCTAssertEqual(l.sources[0].share, 0.571)
        XCTAssertTrue(Analyzer.jsonLine(file: "a.wav", u).hasSuffix("\"share\":0.000}]}"))
        // a line without sources decodes to an empty list
        XCTAssertEqual(try StreamLine.parse(liveLine(update(), seq: 2, sampleRate: 16000)).get().sources, [])
    }

    func testSourceListHoldsAtMostFour() {
        var list = SourceList(enabled: true)
        for i in 1...6 { list.append(TrackedSource(id: i, delaySamples: 0, delayMs: 0, azimuthDeg: 0, confidence: 0, share: 0)) }
        XCTAssertEqual(list.map(\.id), [1, 2, 3, 4])
        list.removeAll()
        XCTAssertTrue(list.isEmpty)
    }

    func testMaxSourcesConfigKey() throws {
        XCTAssertEqual(DaemonConfig().engine.maxSources, 2)
        XCTAssertEqual(try DaemonConfig.parse("[engine]\nmax_sources = 4\n").engine.maxSources, 4)
        for bad in ["0", "5", "9", "\"two\"", "2.5"] {
            XCTAssertThrowsError(try DaemonConfig.parse("[engine]\nmax_sources = \(bad)\n")) {
                XCTAssertEqual(($0 as? ConfigError)?.key, "engine.max_sources", "\($0)")
            }
        }
        // and reaches the pipeline
        var e = DaemonConfig.Engine(); e.maxSources = 3
        let p = try Daemon.makePipeline(e, rateHz: 20)
        XCTAssertEqual(p.config.sources.maxSources, 3)
    }
}

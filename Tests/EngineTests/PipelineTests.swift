import XCTest
import EngineTestSupport
@testable import Engine

final class PipelineTests: XCTestCase {
    private func pipeline(step: Int = 4, post: VotePost = .mode, keepAll: Bool = false) throws -> TDEPipeline {
        var cfg = PipelineConfig()
        cfg.post = post; cfg.keepAllVotes = keepAll; cfg.micDistance = 0.3
        return try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: step)), config: cfg)
    }

    func testUpdatesOnFixedScheduleIndependentOfBlocks() throws {
        let s = TestSignals.stereo(.speechLike, count: 8000, delay: 9, snrDb: 30)
        let a = try pipeline().process(left: s.left, right: s.right)
        XCTAssertEqual(a.count, 10)                       // every 800 samples
        XCTAssertEqual(a.map(\.sampleIndex), (1...10).map { Int64($0 * 800) })
        XCTAssertTrue(a[0].flags.contains(.noVotes))      // first 800 samples: no full window yet
        XCTAssertEqual(a[1].votes, (1600 - 1024) / 4 + 1)
        for u in a.dropFirst() {
            XCTAssertEqual(u.delaySamples, 9, accuracy: 0.1)
            XCTAssertGreaterThan(u.azimuthDeg, 0)         // right later -> source on the left
            XCTAssertEqual(u.delayMs, 9.0 / 16, accuracy: 0.01)
            XCTAssertEqual(u.method, "gcc-phat")
        }
        let p = try pipeline()
        var b: [Update] = []
        feedInBlocks(s.left, s.right, sizes: [333, 1, 799, 801, 64, 4000]) { l, r in
            p.process(left: l, right: r) { b.append($0) }
        }
        XCTAssertEqual(a, b)
    }

    func testWholeAndSilence() throws {
        let s = TestSignals.stereo(.white, count: 4000, delay: -12, snrDb: 40)
        let p = try pipeline(post: .mean, keepAll: true)
        _ = p.process(left: s.left, right: s.right)
        let w = p.wholeResult()
        XCTAssertEqual(w.votes, (4000 - 1024) / 4 + 1)
        XCTAssertEqual(w.delaySamples, -12, accuracy: 1e-9)
        XCTAssertEqual(w.confidence, 1, accuracy: 1e-12)
        XCTAssertLessThan(w.azimuthDeg, 0)

        let z = [Float](repeating: 0, count: 3200)
        let q = try pipeline()
        let u = q.process(left: z, right: z)
        XCTAssertTrue(u.last!.flags.contains(.silent))
        XCTAssertTrue(u.last!.flags.contains(.holding))
        XCTAssertEqual(u.last!.levelDb, -200)
    }

    /// Without per-update estimates (`tded analyze --whole`) no update is made, and the whole
    /// result (pooled and vote posts, with several sources) is the one made with them.
    func testWholeResultWithoutPerUpdateEstimates() throws {
        let s = TestSignals.stereo(.speechLike, count: 12000, delay: 5.5, snrDb: 10, seed: 3)
        for post in [VotePost.pooled, .mean] {
            func whole(_ perUpdate: Bool) throws -> (Update, Int) {
                var cfg = PipelineConfig()
                cfg.post = post; cfg.keepAllVotes = true; cfg.micDistance = 0.3
                cfg.perUpdateEstimates = perUpdate; cfg.sources.maxSources = 2
                let p = try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 16, maxLag: 16)), config: cfg)
                let n = p.process(left: s.left, right: s.right).count
                p.finish()
                return (p.wholeResult(), n)
            }
            let (a, na) = try whole(true), (b, nb) = try whole(false)
            XCTAssertEqual(na, 15, "\(post)")
            XCTAssertEqual(nb, 0, "\(post)")
            XCTAssertEqual(a, b, "\(post)")
            XCTAssertEqual(b.delaySamples, 5.5, accuracy: 0.5, "\(post)")
        }
    }

    func testBeyondRangeFlag() throws {
        let s = TestSignals.stereo(.white, count: 2400, delay: 20, snrDb: 40)
        var cfg = PipelineConfig(); cfg.micDistance = 0.1     // max physical delay 4.66 samples
        let p = try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 8)), config: cfg)
        let u = p.process(left: s.left, right: s.right).last!
        XCTAssertTrue(u.flags.contains(.beyondRange))
        XCTAssertEqual(u.azimuthDeg, 90)
    }

    func testRejectsSpanShorterThanWindow() throws {
        var cfg = PipelineConfig(); cfg.analysisSpan = 512
        XCTAssertThrowsError(try TDEPipeline(estimator: try GCCPHAT(), config: cfg))
    }
}

final class PipelineSmootherTests: XCTestCase {
    func testSilenceHoldsThenGoesStale() throws {
        let s = TestSignals.stereo(.white, count: 16000, delay: 5, snrDb: 40)
        let silence = [Float](repeating: 0, count: 40000)
        var cfg = PipelineConfig(); cfg.micDistance = 0.3
        let p = try TDEPipeline(estimator: try GCCPHAT(config: GCCPHATConfig(step: 8)), config: cfg)
        let ups = p.process(left: s.left + silence, right: s.right + silence)
        XCTAssertEqual(ups.count, 70)
        let loud = ups[2..<20], quiet = ups[24...]
        for u in loud {
            XCTAssertTrue(u.flags.isDisjoint(with: [.silent, .holding, .stale]), "\(u.t) \(u.flags.names)")
            XCTAssertEqual(u.smoothedDelaySamples, 5, accuracy: 1e-6)
        }
        for u in quiet {
            XCTAssertTrue(u.flags.contains(.silent) && u.flags.contains(.holding))
            XCTAssertEqual(u.smoothedDelaySamples, 5, accuracy: 1e-6)     // held, not invented
        }
        // silence starts at 1.0 s and is fully in the span from 1.1 s; hold 1 s, then stale
        let stale = quiet.filter { $0.flags.contains(.stale) }
        XCTAssertFalse(stale.isEmpty)
        XCTAssertGreaterThan(stale.first!.t, 2.0)
        XCTAssertLessThan(stale.last!.smoothedConfidence, stale.first!.smoothedConfidence)
        XCTAssertGreaterThan(quiet.first!.smoothedConfidence, 0.9)
    }
}

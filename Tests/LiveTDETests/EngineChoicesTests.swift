import Engine
import Foundation
import XCTest
@testable import LiveTDE

/// Issue 15: one type per closed set, shared by the command line, the config and the factory.
final class EngineChoicesTests: XCTestCase {
    /// The accepted spellings are exactly the documented ones (config/tded.toml, --help).
    func testSpellings() {
        XCTAssertEqual(EstimatorMethod.allCases.map(\.rawValue), ["gcc-phat", "learned"])
        XCTAssertEqual(VotePost.allCases.map(\.rawValue), ["pooled", "mode", "mean"])
        XCTAssertEqual(SubsampleChoice.allCases.map(\.rawValue), ["none", "parabolic", "upsampled"])
        XCTAssertEqual(GCCPHATConfig.Taper.allCases.map(\.rawValue), ["rectangular", "hann"])
        XCTAssertEqual(VotePost.spellings(), "\"pooled\", \"mode\" or \"mean\"")
        XCTAssertEqual(EstimatorMethod.spellings(quoted: false), "gcc-phat or learned")
        XCTAssertEqual(SubsampleChoice.upsampled.refinement, .upsampled(factor: 8))
        XCTAssertEqual(SubsampleChoice.parabolic.refinement, .parabolic)
        XCTAssertEqual(SubsampleChoice.none.refinement, .none)
    }

    /// Every spelling parses from the config into the engine options the factory builds from.
    func testConfigSpellingsReachTheFactoryOptions() throws {
        for m in EstimatorMethod.allCases {
            for p in VotePost.allCases {
                for s in SubsampleChoice.allCases {
                    for t in GCCPHATConfig.Taper.allCases {
                        let c = try DaemonConfig.parse("""
                            [engine]
                            method = "\(m.rawValue)"
                            post = "\(p.rawValue)"
                            subsample = "\(s.rawValue)"
                            taper = "\(t.rawValue)"
                            pooling = "srp"
                            """)
                        let o = c.engine.estimatorOptions
                        XCTAssertEqual(o.method, m)
                        XCTAssertEqual(o.subsample, s.refinement)
                        XCTAssertEqual(o.taper, t)
                        XCTAssertEqual(o.pooling, .srp)
                        XCTAssertEqual(c.engine.pipelineConfig(rateHz: 20).post, p)
                    }
                }
            }
        }
    }

    /// A wrong spelling names the key and every accepted spelling, in one line.
    func testWrongSpellingListsTheChoices() {
        for (key, listed) in [("method", EstimatorMethod.spellings()), ("post", VotePost.spellings()),
                              ("subsample", SubsampleChoice.spellings()), ("taper", GCCPHATConfig.Taper.spellings())] {
            XCTAssertThrowsError(try DaemonConfig.parse("[engine]\n\(key) = \"Mode\"")) { e in
                XCTAssertEqual("\(e)", "config: engine.\(key): expected \(listed), got \"Mode\"")
            }
        }
    }
}

/// Issue 15: the status reply is a Codable value written by the one JSON line writer.
final class DaemonStatusTests: XCTestCase {
    func sample(alsa: Bool) -> DaemonStatus {
        var s = DaemonStatus(uptimeS: 12.5, source: "file:a \"b\".wav", state: .running, rate: 16000,
                             method: .learned, publishHz: 20, frames: 1, xruns: 2, deviceLost: 3, overruns: 4,
                             droppedFrames: 5, clients: 6, clientsTotal: 7, droppedClients: 8, skippedLines: 9,
                             published: 10, audioS: 11.25, engineFrames: 12, engineCPUS: 0.125, engineLoad: 0.0625,
                             processCPUS: 1.5, nonfiniteSamples: 13, clippedSamples: 14, rssKB: 15,
                             heapInUseKB: 16, heapFreeKB: 17, fds: 18)
        if alsa { s.device = "hw:1,0"; s.deviceRate = 48000; s.resampleLatencyMs = 37.5 }
        return s
    }

    func testLineDecodesBackToTheSameStatus() throws {
        for alsa in [false, true] {
            let s = sample(alsa: alsa)
            let line = s.line
            XCTAssertTrue(line.hasPrefix("{\"type\":\"status\",\"v\":1,\"uptime_s\":12.5,\"source\":\"file:a \\\"b\\\".wav\""), line)
            XCTAssertTrue(line.contains("\"method\":\"learned\",\"publish_hz\":20.00,"), line)
            XCTAssertTrue(line.contains("\"engine_load\":0.0625,"), line)
            XCTAssertEqual(line.contains("\"device_rate\":48000"), alsa, line)
            XCTAssertEqual(try JSONDecoder().decode(DaemonStatus.self, from: Data(line.utf8)), s)
        }
    }
}

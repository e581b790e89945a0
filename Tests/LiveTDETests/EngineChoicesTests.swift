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

    /// `pooling = "auto"`: the learned weighting trained for the use (Hann per update,
    /// rectangular for one estimate per clip) with its classical fallback; the classical one
    /// for the other taper, the learned encoder or votes; a named weighting is taken as is.
    func testPoolingChoiceAuto() {
        XCTAssertEqual(PoolingChoice(parsing: "auto"), .auto)
        XCTAssertEqual(PoolingChoice(parsing: "phat+coh"), .fixed(.masked(beta: 1, mask: .coh)))
        XCTAssertNil(PoolingChoice(parsing: "automatic"))
        XCTAssertEqual(PoolingChoice.auto.name, "auto")
        func applied(_ c: PoolingChoice, method: EstimatorMethod = .gccPhat, taper: GCCPHATConfig.Taper,
                     whole: Bool, pooled: Bool = true) -> (GCCPHATConfig.PoolWeighting, GCCPHATConfig.PoolWeighting?) {
            var o = EstimatorOptions()
            o.method = method; o.taper = taper
            c.apply(to: &o, whole: whole, pooled: pooled)
            return (o.pooling, o.poolingFallback)
        }
        let live = applied(.auto, taper: .hann, whole: false)
        XCTAssertEqual(live.0, .learned); XCTAssertEqual(live.1, EstimatorOptions.classicalLivePooling)
        let whole = applied(.auto, taper: .rectangular, whole: true)
        XCTAssertEqual(whole.0, .learned); XCTAssertEqual(whole.1, EstimatorOptions.classicalWholePooling)
        for (a, want) in [(applied(.auto, taper: .rectangular, whole: false), EstimatorOptions.classicalLivePooling),
                          (applied(.auto, taper: .hann, whole: true), EstimatorOptions.classicalWholePooling),
                          (applied(.auto, method: .learned, taper: .hann, whole: false), EstimatorOptions.classicalLivePooling),
                          (applied(.auto, taper: .hann, whole: false, pooled: false), EstimatorOptions.classicalLivePooling)] {
            XCTAssertEqual(a.0, want); XCTAssertNil(a.1)
        }
        let fixed = applied(.fixed(.learned), taper: .hann, whole: false)
        XCTAssertEqual(fixed.0, .learned); XCTAssertNil(fixed.1)
    }

    /// The factory falls back only where `poolingFallback` says, with one note naming why.
    func testFactoryFallsBackWithOneNote() throws {
        var o = EstimatorOptions()
        o.taper = .hann; o.pooling = .learned; o.poolingModelPath = "/nonexistent/live.safetensors"
        XCTAssertThrowsError(try EstimatorFactory.make(o))
        o.poolingFallback = EstimatorOptions.classicalLivePooling
        var notes: [String] = []
        let est = try EstimatorFactory.make(o, note: { notes.append($0) })
        XCTAssertEqual((est as? GCCPHAT)?.config.pooling, EstimatorOptions.classicalLivePooling)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes.first?.contains("/nonexistent/live.safetensors") == true, "\(notes)")
        // where the learned weighting builds, no note
        o.poolingModelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(ModelLoader.gccMaskLiveRelativePath).path
        notes = []
        let learned = try EstimatorFactory.make(o, note: { notes.append($0) })
        XCTAssertEqual((learned as? GCCPHAT)?.config.pooling, .learned)
        XCTAssertEqual(notes, [])
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

    /// `tded status`'s table: typed values in a fixed order, the device rows only with a device.
    func testSummaryOrderAndValues() {
        let file = sample(alsa: false).summary, alsa = sample(alsa: true).summary
        XCTAssertEqual(file.map(\.key), ["uptime_s", "source", "state", "rate", "method", "publish_hz", "frames", "xruns",
                                         "device_lost", "overruns", "dropped_frames", "clients", "clients_total",
                                         "dropped_clients", "skipped_lines", "published", "audio_s", "engine_cpu_s",
                                         "engine_load", "process_cpu_s"])
        XCTAssertEqual(alsa.count, file.count + 3)
        XCTAssertEqual(Array(alsa.map(\.key)[1...6]), ["source", "device", "state", "rate", "device_rate", "resample_latency_ms"])
        let v = Dictionary(uniqueKeysWithValues: alsa.map { ($0.key, $0.value) })
        XCTAssertEqual(v["device"], "hw:1,0"); XCTAssertEqual(v["device_rate"], "48000")
        XCTAssertEqual(v["method"], "learned"); XCTAssertEqual(v["engine_load"], "0.0625"); XCTAssertEqual(v["xruns"], "2")
    }
}

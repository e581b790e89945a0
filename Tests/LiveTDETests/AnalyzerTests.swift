import XCTest
import Engine
@testable import LiveTDE

/// `tded analyze` behaviour through `Analyzer` (the command only parses options around it).
final class AnalyzerTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        BLASRuntime.useOneThread()  // what tded's main does at process start
    }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tded-analyzer-\(getpid())-\(name.hashValue)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// 1 s of 16 kHz noise with the right channel `delay` samples later.
    private func writeNoise(_ name: String, delay: Int, seconds: Double = 1) throws -> String {
        var state: UInt64 = 7
        let n = Int(16000 * seconds), pad = 32
        let src = (0..<(n + 2 * pad)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max) * 0.4
        }
        let left = Array(src[pad..<(pad + n)]), right = Array(src[(pad - delay)..<(pad - delay + n)])
        let path = dir.appendingPathComponent(name).path
        try WAVWriter.write(path: path, channels: [left, right], sampleRate: 16000, format: .pcm16)
        return path
    }

    func testBadFilesReportedOthersStillProcessed() throws {
        let good = try writeNoise("good.wav", delay: 5)
        let good2 = try writeNoise("good2.wav", delay: -11)
        let mono = dir.appendingPathComponent("mono.wav").path
        try WAVWriter.write(path: mono, channels: [[Float](repeating: 0.1, count: 4000)], sampleRate: 16000)
        let short = dir.appendingPathComponent("short.wav").path
        try WAVWriter.write(path: short, channels: [[Float](repeating: 0.1, count: 500), [Float](repeating: 0.1, count: 500)], sampleRate: 16000)
        var st = AnalyzeSettings(); st.whole = true; st.estimator.step = 8; st.pipeline.micDistance = 0.3
        var lines: [String] = [], errors: [String] = []
        let failed = Analyzer.run(files: [good, "/no/such.wav", mono, short, good2], settings: st,
                                  line: { lines.append($0) }, error: { errors.append($0) })
        XCTAssertEqual(failed, 3)
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(errors.count, 3)
        XCTAssertEqual(errors[0], "/no/such.wav: no such file")
        XCTAssertTrue(errors[1].hasPrefix(mono + ": 1-channel (mono) file"), errors[1])
        XCTAssertTrue(errors[2].hasPrefix(short + ": too short"), errors[2])
        for e in errors { XCTAssertFalse(e.contains("\n")) }

        let objs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(objs[0]["file"] as? String, good)
        XCTAssertEqual(objs[0]["delay_samples"] as! Double, 5, accuracy: 1e-9)
        XCTAssertEqual(objs[1]["delay_samples"] as! Double, -11, accuracy: 1e-9)
        XCTAssertEqual(objs[0]["delay_ms"] as! Double, 5.0 / 16, accuracy: 1e-5)
        XCTAssertGreaterThan(objs[0]["azimuth_deg"] as! Double, 0)
        XCTAssertLessThan(objs[1]["azimuth_deg"] as! Double, 0)
        XCTAssertEqual(objs[0]["votes"] as? Int, (16000 - 1024) / 8 + 1)
        XCTAssertEqual(objs[0]["method"] as? String, "gcc-phat")
        XCTAssertEqual(objs[0]["t"] as! Double, 1.0, accuracy: 1e-9)
        XCTAssertEqual(objs[0]["confidence"] as! Double, 1.0, accuracy: 1e-9)
        // field order is part of the format
        XCTAssertTrue(lines[0].hasPrefix("{\"file\":"))
        let order = ["\"file\"", "\"t\"", "\"delay_ms\"", "\"delay_samples\"", "\"azimuth_deg\"",
                     "\"confidence\"", "\"votes\"", "\"method\"", "\"post\"", "\"level_db\"", "\"flags\""]
        let positions = order.map { lines[0].range(of: $0)!.lowerBound }
        XCTAssertEqual(positions, positions.sorted())
    }

    func testPerUpdateLinesFollowTheHop() throws {
        let f = try writeNoise("d3.wav", delay: 3, seconds: 0.5)
        var st = AnalyzeSettings(); st.estimator.step = 4
        let ups = try Analyzer.analyze(path: f, settings: st)
        // updates at 800, 1600, ..., 8000 samples; the first (800) has no complete window
        XCTAssertEqual(ups.map(\.sampleIndex), (2...10).map { Int64($0 * 800) })
        for u in ups { XCTAssertEqual(u.delaySamples, 3, accuracy: 1e-9) }
    }

    func testJSONEscapingAndNumbers() {
        XCTAssertEqual(Analyzer.jsonString("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"")
        XCTAssertEqual(Analyzer.jsonNumber(-0.00001, 3), "0.000")
        XCTAssertEqual(Analyzer.jsonNumber(-1.25, 2), "-1.25")
        XCTAssertEqual(Analyzer.jsonNumber(.nan, 2), "null")
        let u = Update(t: 1, sampleIndex: 16000, delaySamples: 2, delayMs: 0.125, azimuthDeg: 25.4,
                       confidence: 0.5, votes: 10, levelDb: -20, method: "gcc-phat", post: .mode,
                       flags: [.beyondRange, .holding], smoothedDelaySamples: 2, smoothedAzimuthDeg: 25.4,
                       smoothedConfidence: 0.5)
        let line = Analyzer.jsonLine(file: "we\"ird.wav", u)
        let obj = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        XCTAssertEqual(obj["file"] as? String, "we\"ird.wav")
        XCTAssertEqual(obj["flags"] as? [String], ["beyond_range", "holding"])
    }

    /// `--whole` with the learned encoder counts every left window whose +-24 band lies inside
    /// the file, including the last ones the encoder holds back until its column group
    /// completes (released by `TDEPipeline.finish()` at end of file).
    func testWholeLearnedCountsEveryWindowWithACompleteBand() throws {
        // The committed model: missing is a failure, never a skip.
        let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/tded-stream-v1.safetensors").standardizedFileURL.path
        XCTAssertTrue(FileManager.default.fileExists(atPath: modelPath), "committed model \(modelPath) is missing")
        // short clips, around the paper's TDE test length (1151 samples = 128 windows); the
        // lengths put the end of the file at different points of the encoder's column groups
        for (n, step) in [(1151, 1), (1151, 8), (1160, 1), (1175, 8), (1191, 1)] {
            let path = try writeNoise("short-learned-\(n).wav", delay: 3, seconds: Double(n) / 16000)
            var st = AnalyzeSettings(); st.whole = true
            st.estimator.method = .learned; st.estimator.modelPath = modelPath; st.estimator.step = step
            let u = try Analyzer.analyze(path: path, settings: st)
            XCTAssertEqual(u.count, 1)
            let D = 24, expected = stride(from: 0, through: n - 1024, by: step).filter { $0 >= D && $0 + D <= n - 1024 }.count
            XCTAssertEqual(u[0].votes, expected, "\(n) samples, step \(step)")
            XCTAssertEqual(u[0].delaySamples, 3, accuracy: 0.5, "\(n) samples, step \(step)")
        }
    }
}

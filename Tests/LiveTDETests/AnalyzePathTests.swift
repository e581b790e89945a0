import XCTest
import Engine
@testable import LiveTDE

/// The `tded analyze` path as library calls: WAV file at another rate -> AudioLoader (soxr) ->
/// estimator from the factory -> TDEPipeline.
final class AnalyzePathTests: XCTestCase {
    func testResampledFileGivesKnownDelayAndSign() throws {
        // 48 kHz white noise, right channel later by 9 samples at 48 kHz = 3 samples at 16 kHz
        var state: UInt64 = 42
        func rnd() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max) * 0.5
        }
        let n = 48000
        let src = (0..<(n + 9)).map { _ in rnd() }
        let left = Array(src[9..<(n + 9)]), right = Array(src[0..<n])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tded-an-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("d3.wav").path
        try WAVWriter.write(path: path, channels: [left, right], sampleRate: 48000, format: .pcm16)
        let swapped = dir.appendingPathComponent("d3swap.wav").path
        try WAVWriter.write(path: swapped, channels: [right, left], sampleRate: 48000, format: .float32, extensible: true)

        for (file, expect) in [(path, 3.0), (swapped, -3.0)] {
            let a = try AudioLoader.load(path: file, channels: nil, rate: 16000)
            XCTAssertEqual(a.left.count, 16000)
            var eo = EstimatorOptions(); eo.step = 4
            var pc = PipelineConfig(); pc.keepAllVotes = true; pc.micDistance = 0.2
            let p = try TDEPipeline(estimator: try EstimatorFactory.make(eo), config: pc)
            let ups = p.process(left: a.left, right: a.right)
            XCTAssertEqual(ups.count, 20)
            for u in ups where u.votes > 0 { XCTAssertEqual(u.delaySamples, expect, accuracy: 0.1) }
            let w = p.wholeResult()
            XCTAssertEqual(w.delaySamples, expect, accuracy: 0.1)
            XCTAssertEqual(w.delayMs, expect / 16, accuracy: 0.01)
            XCTAssertEqual(w.azimuthDeg.sign, expect > 0 ? .plus : .minus)
        }
    }
}

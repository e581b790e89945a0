import XCTest
@testable import LiveTDE

final class WAVReaderTests: XCTestCase {
    private func tone(_ n: Int, _ f: Double, _ a: Double = 0.7) -> [Float] {
        (0..<n).map { Float(a * sin(2 * Double.pi * f * Double($0) / 16000)) }
    }

    private func assertDecodeError(_ bytes: [UInt8], _ needle: String, channels: (Int, Int)? = nil,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try WAVReader.decode(bytes, channels: channels), file: file, line: line) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains(needle), "message '\(msg)' lacks '\(needle)'", file: file, line: line)
            XCTAssertFalse(msg.contains("\n"), "error must be one line", file: file, line: line)
        }
    }

    func testEachFormatRoundTrips() throws {
        let l = tone(1000, 440), r = tone(1000, 1000, -0.5)
        let tol: [WAVSampleFormat: Float] = [.pcm8: 1.0 / 128, .pcm16: 1.0 / 32768, .pcm24: 1.0 / 8_388_608,
                                             .pcm32: 1e-7, .float32: 0]
        for fmt in WAVSampleFormat.allCases {
            for ext in [false, true] {
                let bytes = WAVWriter.encode(channels: [l, r], sampleRate: 16000, format: fmt, extensible: ext)
                let a = try WAVReader.decode(bytes)
                XCTAssertEqual(a.format, fmt); XCTAssertEqual(a.sampleRate, 16000)
                XCTAssertEqual(a.frames, 1000); XCTAssertEqual(a.fileChannels, 2)
                var err: Float = 0
                for i in 0..<1000 { err = max(err, abs(a.left[i] - l[i]), abs(a.right[i] - r[i])) }
                XCTAssertLessThanOrEqual(err, tol[fmt]!, "\(fmt) extensible=\(ext)")
            }
        }
    }

    func testFileRoundTripAndChannelPick() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tded-wav-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("four.wav").path
        let c = (0..<4).map { k in tone(300, 100 * Double(k + 1)) }
        try WAVWriter.write(path: path, channels: c, sampleRate: 48000, format: .pcm24)
        XCTAssertThrowsError(try WAVReader.read(path: path)) { XCTAssertTrue("\($0)".contains("4 channels; pick two with --channels")) }
        let a = try WAVReader.read(path: path, channels: (3, 1))
        XCTAssertEqual(a.sampleRate, 48000)
        XCTAssertEqual(a.left[17], c[3][17], accuracy: 1e-6)
        XCTAssertEqual(a.right[17], c[1][17], accuracy: 1e-6)
        XCTAssertThrowsError(try WAVReader.read(path: path, channels: (0, 4))) { XCTAssertTrue("\($0)".contains("cannot pick channels 0,4")) }
        XCTAssertThrowsError(try WAVReader.read(path: path, channels: (2, 2)))
        XCTAssertThrowsError(try WAVReader.read(path: dir.appendingPathComponent("missing.wav").path)) {
            XCTAssertEqual("\($0)", "no such file")
        }
    }

    func testBadFilesGiveClearErrors() {
        let good = WAVWriter.encode(channels: [tone(100, 300), tone(100, 300)], sampleRate: 16000, format: .pcm16)
        // truncated header
        assertDecodeError(Array(good[0..<10]), "truncated header")
        assertDecodeError(Array(good[0..<30]), "truncated header")
        assertDecodeError(Array("JUNKJUNKJUNKJUNK".utf8), "not a WAV file")
        // wrong chunk sizes: data chunk claims more than the file has
        var big = good
        big[40] = 0xFF; big[41] = 0xFF
        assertDecodeError(big, "wrong chunk size")
        // truncated data (file cut in the middle of the samples)
        assertDecodeError(Array(good[0..<(good.count - 7)]), "wrong chunk size")
        // fmt chunk too small
        var smallFmt = good
        smallFmt[16] = 8
        assertDecodeError(smallFmt, "wrong chunk size")
        // data size not a multiple of the frame size
        var odd = Array(good[0..<(44 + 6)])
        odd[40] = 6; odd[41] = 0; odd[42] = 0; odd[43] = 0
        assertDecodeError(odd, "not a multiple of the frame size")
        // zero-length data
        let empty = WAVWriter.encode(channels: [[], []], sampleRate: 16000, format: .pcm16)
        assertDecodeError(empty, "zero-length data")
        // 1-channel file
        let mono = WAVWriter.encode(channels: [tone(100, 300)], sampleRate: 16000, format: .pcm16)
        assertDecodeError(mono, "1-channel (mono) file")
        assertDecodeError(mono, "file has 1 channel;", channels: (0, 1))
        // unsupported encoding (64-bit float)
        var f64 = good
        f64[20] = 3; f64[34] = 64
        assertDecodeError(f64, "unsupported encoding")
    }
}

final class ResamplerAndFactoryTests: XCTestCase {
    func testResampleKeepsToneAndLength() throws {
        let n = 4800
        let x = (0..<n).map { Float(sin(2 * Double.pi * 1000 * Double($0) / 48000)) }
        let y = try Resampler.resample(x, from: 48000, to: 16000)
        XCTAssertEqual(y.count, 1600)
        var err: Float = 0
        for i in 200..<1400 { err = max(err, abs(y[i] - Float(sin(2 * Double.pi * 1000 * Double(i) / 16000)))) }
        XCTAssertLessThan(err, 1e-3)
        XCTAssertEqual(try Resampler.resample(x, from: 16000, to: 16000), x)
        XCTAssertThrowsError(try Resampler.resample(x, from: 0, to: 16000))
    }

    func testFactory() throws {
        var o = EstimatorOptions()
        let e = try EstimatorFactory.make(o)
        XCTAssertEqual(e.name, "gcc-phat"); XCTAssertEqual(e.windowLength, 1024)
        XCTAssertEqual(e.maxDelay, 24); XCTAssertEqual(e.voteStride, 16)
        o.method = .learned; o.modelPath = "/nonexistent/model.safetensors"   // a clear error, not a crash
        XCTAssertThrowsError(try EstimatorFactory.make(o)) { XCTAssertFalse("\($0)".isEmpty) }
        o.method = .gccPhat; o.maxDelayMs = 100
        XCTAssertThrowsError(try EstimatorFactory.make(o)) { XCTAssertTrue("\($0)".contains("max lag")) }
    }
}

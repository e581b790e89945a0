import XCTest
import Engine
@testable import LiveTDE

/// Reading recordings through libsndfile (`AudioFileStream`): the formats users have give the
/// same estimate as the WAV they were made from; bad files give one line.
final class AudioFileTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "tded-audiofile-\(getpid())-\(abs(name.hashValue))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// 2 s of 16 kHz noise, right channel `delay` samples later, 16-bit WAV.
    private func writeNoise(_ name: String, delay: Int, rate: Int = 16000) throws -> String {
        var state: UInt64 = 11
        let n = 2 * rate, pad = 64
        let src = (0..<(n + 2 * pad)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max) * 0.4
        }
        let path = dir + "/" + name
        try WAVWriter.write(path: path, channels: [Array(src[pad..<(pad + n)]), Array(src[(pad - delay)..<(pad - delay + n)])],
                           sampleRate: rate, format: .pcm16)
        return path
    }

    private func sox(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sox")
        p.arguments = args
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "sox \(args)")
    }

    private func whole(_ path: String) throws -> Update {
        var st = AnalyzeSettings(); st.whole = true; st.estimator.step = 16
        let u = try Analyzer.analyze(path: path, settings: st)
        XCTAssertEqual(u.count, 1)
        return u[0]
    }

    /// FLAC, AIFF, CAF, W64 (lossless: the identical estimate) and Ogg/Vorbis (lossy: the same
    /// whole-sample delay), each made from the WAV by sox; WAVE_FORMAT_EXTENSIBLE float too.
    func testOtherFormatsGiveTheSameEstimateAsTheWAV() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sox") else { throw XCTSkip("sox not installed") }
        let wav = try writeNoise("clip.wav", delay: 7)
        let ref = try whole(wav)
        XCTAssertEqual(ref.delaySamples, 7, accuracy: 1e-9)
        for ext in ["flac", "aiff", "caf", "w64"] {
            let p = dir + "/clip." + ext
            try sox([wav, p])
            let s = try AudioFileStream(path: p)
            XCTAssertEqual(s.rate, 16000); XCTAssertEqual(s.channels, 2); XCTAssertEqual(s.frames, 32000, ext)
            let u = try whole(p)
            XCTAssertEqual(u.delaySamples, ref.delaySamples, accuracy: 1e-9, ext)
            XCTAssertEqual(u.votes, ref.votes, ext)
            XCTAssertEqual(u.confidence, ref.confidence, accuracy: 1e-6, ext)
        }
        let ogg = dir + "/clip.ogg"
        try sox([wav, "-C", "8", ogg])
        let u = try whole(ogg)
        let oggName = try AudioFileStream(path: ogg).formatName
        XCTAssertTrue(oggName.contains("OGG"), oggName)
        XCTAssertEqual(u.delaySamples, 7, accuracy: 0.5)
        XCTAssertGreaterThan(u.confidence, 0.5)

        let a = try WAVReader.read(path: wav)
        let ext = dir + "/ext.wav"
        try WAVWriter.write(path: ext, channels: [a.left, a.right], sampleRate: 16000, format: .float32, extensible: true)
        XCTAssertEqual(try whole(ext).delaySamples, 7, accuracy: 1e-9)
    }

    /// The samples themselves match the hand-checked WAV decoder, block by block.
    func testSamplesMatchWAVReader() throws {
        let wav = try writeNoise("clip.wav", delay: -3)
        let a = try WAVReader.read(path: wav)
        let s = try AudioFileStream(path: wav)
        let l = UnsafeMutablePointer<Float>.allocate(capacity: 5000), r = UnsafeMutablePointer<Float>.allocate(capacity: 5000)
        defer { l.deallocate(); r.deallocate() }
        var at = 0
        while true {
            let n = try s.read(max: 5000, left: l, right: r)
            if n == 0 { break }
            for i in 0..<n { XCTAssertEqual(l[i], a.left[at + i]); XCTAssertEqual(r[i], a.right[at + i]) }
            at += n
        }
        XCTAssertEqual(at, a.frames)
    }

    /// Mono, multichannel, non-audio, empty and missing files: one line each, saying what to do.
    func testBadFilesAreOneLine() throws {
        let mono = dir + "/mono.wav"
        try WAVWriter.write(path: mono, channels: [[Float](repeating: 0.1, count: 4000)], sampleRate: 16000)
        let quad = dir + "/quad.wav"
        let z = [Float](repeating: 0.1, count: 4000)
        try WAVWriter.write(path: quad, channels: [z, z, z, z], sampleRate: 16000)
        let text = dir + "/notes.txt"
        try "not audio at all\n".write(toFile: text, atomically: true, encoding: .utf8)
        let empty = dir + "/empty.wav"
        try WAVWriter.write(path: empty, channels: [[], []], sampleRate: 16000)
        let cases: [(String, String)] = [
            (mono, "1-channel (mono) file: a delay needs 2 channels; record in stereo"),
            (quad, "4 channels; pick two with --channels"),
            (text, "not a recognised audio file"),
            (empty, "zero-length"),
            (dir + "/none.flac", "no such file"),
            (dir, "directory"),
        ]
        for (p, expect) in cases {
            XCTAssertThrowsError(try AudioFileStream(path: p)) { e in
                XCTAssertTrue("\(e)".contains(expect), "\(p): \(e)")
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        XCTAssertEqual(try AudioFileStream(path: quad, channels: (3, 1)).channels, 4)
        XCTAssertThrowsError(try AudioFileStream(path: quad, channels: (0, 4))) { XCTAssertTrue("\($0)".contains("cannot pick channels 0,4")) }
        XCTAssertTrue(AudioFileStream.monoMessage.contains("docs/phone-recordings.md"))
    }

    /// MP4/3GP (`ftyp`) and ADTS AAC are recognised by their first bytes (and sent to ffmpeg).
    func testMP4AndAACAreRecognised() throws {
        let m4a = dir + "/memo.m4a"
        try Data([0, 0, 0, 0x20] + Array("ftypM4A ".utf8) + [UInt8](repeating: 0, count: 20)).write(to: URL(fileURLWithPath: m4a))
        let adts = dir + "/memo.aac"
        try Data([0xFF, 0xF1, 0x50, 0x80] + [UInt8](repeating: 0, count: 20)).write(to: URL(fileURLWithPath: adts))
        XCTAssertTrue(AudioFileStream.looksLikeMP4OrAAC(m4a))
        XCTAssertTrue(AudioFileStream.looksLikeMP4OrAAC(adts))
        XCTAssertFalse(AudioFileStream.looksLikeMP4OrAAC(try writeNoise("clip.wav", delay: 1)))
    }
}

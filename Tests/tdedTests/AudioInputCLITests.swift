import Foundation
import LiveTDE
import XCTest

/// `tded analyze` / `tded run --input` on the audio users have: other containers, standard
/// input, phone recordings (AAC/M4A via ffmpeg) and mono files.
final class AudioInputCLITests: XCTestCase {
    /// Runs `bash -c script` with `env` added; returns (status, stdout, stderr).
    private func shell(_ script: String, env: [String: String] = [:]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let o = Pipe(), er = Pipe()
        p.standardOutput = o; p.standardError = er
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile(), ed = er.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    private func field(_ line: String, _ k: String) -> Double {
        let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        return (o?[k] as? NSNumber)?.doubleValue ?? .nan
    }

    /// `cat file.wav | tded analyze -` prints what `tded analyze file.wav` prints, per update.
    func testStdinGivesTheSameLinesAsTheFile() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 3, path: clip)
        let (c1, fromFile, e1) = try runTded(["analyze", clip])
        XCTAssertEqual(c1, 0, e1)
        let (c2, fromPipe, e2) = try shell("cat '\(clip)' | '\(E2E.binary)' analyze -")
        XCTAssertEqual(c2, 0, e2)
        XCTAssertGreaterThan(fromFile.split(separator: "\n").count, 30)
        XCTAssertEqual(fromPipe.replacingOccurrences(of: "\"file\":\"-\"", with: "\"file\":\"\(clip)\""), fromFile)
        // garbage on stdin: one line
        let (c3, out3, e3) = try shell("echo 'not audio' | '\(E2E.binary)' analyze -")
        XCTAssertEqual(c3, 1); XCTAssertTrue(out3.isEmpty)
        XCTAssertTrue(e3.contains("tded analyze: -: standard input: not a recognised audio file"), e3)
        XCTAssertEqual(e3.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, e3)
    }

    /// A mono recording: one line that says a stereo one is needed and how to get it.
    func testMonoFileSaysHowToGetStereo() throws {
        let dir = E2E.tempDir(self)
        let mono = dir + "/memo.wav"
        try WAVWriter.write(path: mono, channels: [[Float](repeating: 0.1, count: 16000)], sampleRate: 16000)
        let (code, out, err) = try runTded(["analyze", mono])
        XCTAssertEqual(code, 1); XCTAssertTrue(out.isEmpty)
        XCTAssertTrue(err.contains("mono") && err.contains("record in stereo") && err.contains("phone-recordings.md"), err)
        XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, err)
        let (rc, _, rerr) = try runTded(["run", "--input", mono, "--socket", dir + "/s.sock"])
        XCTAssertNotEqual(rc, 0)
        XCTAssertTrue(rerr.contains("record in stereo"), rerr)
    }

    /// An M4A with no ffmpeg on PATH: one line with the conversion command, at once.
    func testM4AWithoutFFmpegSaysHowToConvert() throws {
        let dir = E2E.tempDir(self)
        let m4a = dir + "/memo.m4a"
        try Data([0, 0, 0, 0x20] + Array("ftypM4A ".utf8) + [UInt8](repeating: 0, count: 40)).write(to: URL(fileURLWithPath: m4a))
        let empty = dir + "/bin"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let (code, out, err) = try runTded(["analyze", m4a], env: ["PATH": empty])
        XCTAssertEqual(code, 1); XCTAssertTrue(out.isEmpty)
        XCTAssertTrue(err.contains("ffmpeg is not installed") && err.contains("ffmpeg -i \(m4a) -f wav - | tded analyze -"), err)
        XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, err)
    }

    /// With ffmpeg installed: an AAC M4A (what phone recorders write) decodes to the WAV's
    /// delay, directly and as `ffmpeg -i memo.m4a -f wav - | tded analyze -`; a broken M4A is one line.
    func testM4ADecodesThroughFFmpeg() throws {
        guard let ff = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("ffmpeg not installed")
        }
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav", m4a = dir + "/memo.m4a"
        try E2E.makeClip(seconds: 3, path: clip)
        let (fc, _, fe) = try shell("'\(ff)' -v error -y -i '\(clip)' -c:a aac -b:a 256k '\(m4a)'")
        XCTAssertEqual(fc, 0, fe)
        let (c0, ref, e0) = try runTded(["analyze", "--whole", clip])
        XCTAssertEqual(c0, 0, e0)
        let (c1, direct, e1) = try runTded(["analyze", "--whole", m4a])
        XCTAssertEqual(c1, 0, e1)
        // (float WAV on the pipe: the same samples as the direct decode, so the same answer)
        let (c2, piped, e2) = try shell("'\(ff)' -v error -i '\(m4a)' -c:a pcm_f32le -f wav - | '\(E2E.binary)' analyze --whole -")
        XCTAssertEqual(c2, 0, e2)
        XCTAssertEqual(field(ref, "delay_samples"), Double(E2E.delaySamples), accuracy: 0.25)
        XCTAssertEqual(field(direct, "delay_samples"), field(ref, "delay_samples"), accuracy: 0.25, direct)
        XCTAssertEqual(field(piped, "delay_samples"), field(direct, "delay_samples"), accuracy: 1e-9, piped)
        let broken = dir + "/broken.m4a"
        try Data(try Data(contentsOf: URL(fileURLWithPath: m4a)).prefix(600)).write(to: URL(fileURLWithPath: broken))
        let (c3, out3, e3) = try runTded(["analyze", broken])
        XCTAssertEqual(c3, 1); XCTAssertTrue(out3.isEmpty)
        XCTAssertEqual(e3.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, e3)
        XCTAssertTrue(e3.contains("ffmpeg"), e3)
    }

    /// `tded run --input` replays a FLAC (made by sox) exactly as the WAV it came from.
    func testRunInputReadsFLAC() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sox") else { throw XCTSkip("sox not installed") }
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav", flac = dir + "/clip.flac"
        try E2E.makeClip(seconds: 3, path: clip)
        let (sc, _, se) = try shell("sox '\(clip)' '\(flac)'")
        XCTAssertEqual(sc, 0, se)
        let cfg = dir + "/light.toml"
        try E2E.writeConfig(cfg, "[engine]\nstep = 16\n[publish]\nsocket = \"\(dir)/s.sock\"\n")
        func lines(_ f: String) throws -> [String] {
            let (code, out, err) = try runTded(["run", "--config", cfg, "--input", f, "--echo"])
            XCTAssertEqual(code, 0, err)
            return out.split(separator: "\n").map(String.init)
        }
        let a = try lines(clip), b = try lines(flac)
        XCTAssertGreaterThan(a.count, 30)
        XCTAssertEqual(a, b)
        XCTAssertEqual(field(a.last ?? "", "delay_ms"), Double(E2E.delaySamples) / 16, accuracy: 0.02, a.last ?? "")
    }
}

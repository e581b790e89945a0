import Foundation
import LiveTDE
import XCTest

/// `scripts/loopback-replay.sh` through a real sound server: a private PulseAudio (started by
/// the script, no system service) with a 48 kHz null sink; tded captures its monitor through
/// ALSA's `pulse` PCM at 48 kHz (capture-side resampling to 16 kHz) while the recording plays.
final class LoopbackReplayTests: XCTestCase {
    func testReplayThroughAPulseAudioNullSinkConvergesToTheFilesDelay() throws {
        for t in ["/usr/bin/pulseaudio", "/usr/bin/paplay", "/usr/bin/pactl"] where !FileManager.default.isExecutableFile(atPath: t) {
            throw XCTSkip("\(t) not installed (apt install pulseaudio pulseaudio-utils libasound2-plugins)")
        }
        let plugin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/x86_64-linux-gnu/alsa-lib"))?.contains("libasound_module_pcm_pulse.so") ?? false
            || FileManager.default.fileExists(atPath: "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so")
        if !plugin { throw XCTSkip("ALSA pulse plugin not installed (libasound2-plugins)") }
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 4, path: clip)
        let a = try WAVReader.read(path: clip)
        let up = try Resampler.resample(left: a.left, right: a.right, from: 16000, to: 48000)
        let clip48 = dir + "/clip48.wav"
        try WAVWriter.write(path: clip48, channels: [up.left, up.right], sampleRate: 48000, format: .pcm16)

        let p = Process()
        p.executableURL = URL(fileURLWithPath: E2E.repoRoot.appendingPathComponent("scripts/loopback-replay.sh").path)
        p.arguments = [clip48]
        var env = ProcessInfo.processInfo.environment
        env["TDED_BIN"] = E2E.binary
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        let t0 = Date()
        try p.run()
        let od = out.fileHandleForReading.readDataToEndOfFile(), ed = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: ed, as: UTF8.self))
        // it exits when the file ends (4 s at real-time pace, plus start-up and drain)
        XCTAssertGreaterThan(elapsed, 3.9); XCTAssertLessThan(elapsed, 20)
        let lines = String(decoding: od, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        // Lines whose whole span held the recording: the capture starts before playback (a
        // sound-server dependent lead of silence), so the live timeline is shifted against the
        // file's and lines cannot be matched update for update; what the live path promises is
        // the file's delay once the span is full of it.
        let audible = lines.filter { $0.d("level_db") > -60 }
        XCTAssertGreaterThan(audible.count, 40, "too few lines with audio: \(lines.count) lines")
        let settled = Array(audible.dropFirst(10).dropLast(3))
        let offline = try analyze(clip48, ["--whole"])
        XCTAssertEqual(offline.count, 1)
        let want = offline.first?.d("delay_ms") ?? .nan
        XCTAssertEqual(want, Double(E2E.delaySamples) / 16, accuracy: 0.01)
        let bad = settled.filter { abs($0.d("raw_delay_ms") - want) > 0.01 }
        XCTAssertLessThanOrEqual(bad.count, settled.count / 10, "live differs from analyze (\(want) ms): \(bad.prefix(3))")
        let az = settled.map { $0.d("azimuth_deg") }.sorted()
        // (the daemon's default rectangular taper biases this narrow-band clip by ~1 degree
        // against the geometric 40.0, README "Pooled evidence"; analyze has the same bias)
        XCTAssertEqual(az[az.count / 2], offline.first?.d("azimuth_deg") ?? .nan, accuracy: 0.3)
        XCTAssertEqual(az[az.count / 2], E2E.expectedAzimuth, accuracy: 2.0)
        // and it cleaned up: no sound server or temporary directory left behind
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp"))?.filter { $0.hasPrefix("tded-loopback.") } ?? []
        XCTAssertTrue(left.isEmpty, "left behind: \(left)")
    }
}

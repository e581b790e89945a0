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
        let lines = jsonLines(String(decoding: od, as: UTF8.self))
        // Lines whose whole span held the recording: the capture starts before playback (a
        // sound-server dependent lead of silence), so the live timeline is shifted against the
        // file's and lines cannot be matched update for update; what the live path promises is
        // the file's delay once the span is full of it.
        let audible = lines.filter { $0.d("level_db") > -60 }
        XCTAssertGreaterThan(audible.count, 40, "too few lines with audio: \(lines.count) lines")
        let settled = Array(audible.dropFirst(10).dropLast(3))
        // the daemon's taper and pooling (the learned weighting with the live model; --whole
        // alone would take the rectangular window and the whole-clip model)
        let offline = try analyze(clip48, ["--whole", "--taper", "hann", "--pooling", "learned"])
        XCTAssertEqual(offline.count, 1)
        let want = offline.first?.d("delay_ms") ?? .nan
        XCTAssertEqual(want, Double(E2E.delaySamples) / 16, accuracy: 0.01)
        let bad = settled.filter { abs($0.d("raw_delay_ms") - want) > 0.01 }
        XCTAssertLessThanOrEqual(bad.count, settled.count / 10, "live differs from analyze (\(want) ms): \(bad.prefix(3))")
        let az = settled.map { $0.d("azimuth_deg") }.sorted()
        // (analyze --whole defaults to the rectangular taper, which biases this narrow-band clip
        // by ~1 degree, docs/method.md "Pooled evidence": hence --taper hann, what the daemon uses)
        XCTAssertEqual(az[az.count / 2], offline.first?.d("azimuth_deg") ?? .nan, accuracy: 0.3)
        XCTAssertEqual(az[az.count / 2], E2E.expectedAzimuth, accuracy: 2.0)
        // and it cleaned up: no sound server or temporary directory left behind
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp"))?.filter { $0.hasPrefix("tded-loopback.") } ?? []
        XCTAssertTrue(left.isEmpty, "left behind: \(left)")
    }

    /// A sound server that goes away mid-stream gets the recovery of an unplugged device: one
    /// "lost" line, retries with backoff, "is back" when a server returns; the daemon runs on.
    func testSoundServerGoingAwayMidStreamIsRecovered() throws {
        for t in ["/usr/bin/pulseaudio", "/usr/bin/pactl"] where !FileManager.default.isExecutableFile(atPath: t) {
            throw XCTSkip("\(t) not installed")
        }
        guard FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so")
                || FileManager.default.fileExists(atPath: "/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so") else {
            throw XCTSkip("ALSA pulse plugin not installed (libasound2-plugins)")
        }
        let dir = E2E.tempDir(self)
        let run = dir + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let env = ["XDG_RUNTIME_DIR": run, "PULSE_RUNTIME_PATH": run + "/pulse", "HOME": dir]
        func startServer() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/pulseaudio")
            p.arguments = ["-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
                           "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=tdesink rate=48000 channels=2"]
            var e = ProcessInfo.processInfo.environment
            for (k, v) in env { e[k] = v }
            e.removeValue(forKey: "PULSE_SERVER")
            p.environment = e
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run()
            XCTAssertTrue(waitUntil(10) { FileManager.default.fileExists(atPath: run + "/pulse/native") }, "PulseAudio did not start")
            return p
        }
        var server = try startServer()
        defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
        let asound = dir + "/asound.conf"
        try "</usr/share/alsa/alsa.conf>\npcm.tdemonitor {\n    type pulse\n    device \"tdesink.monitor\"\n}\n"
            .write(toFile: asound, atomically: true, encoding: .utf8)
        let cfg = dir + "/tded.toml"
        try E2E.writeConfig(cfg, "[capture]\ndevice = \"tdemonitor\"\nrate = 48000\nretry_max_seconds = 0.5\n[engine]\nstep = 16\n[publish]\nsocket = \"\(dir)/s.sock\"\n")
        var denv = env
        denv["ALSA_CONFIG_PATH"] = asound
        let d = try TdedProcess(["run", "--config", cfg], dir: dir, env: denv)
        defer { d.stop() }
        XCTAssertTrue(d.waitForLog("capturing from tdemonitor", timeout: 10), d.log)
        XCTAssertTrue(waitUntil(5) { (status(dir + "/s.sock")?.i("frames") ?? 0) > 8000 }, "no audio from the monitor")
        server.terminate(); server.waitUntilExit()
        XCTAssertTrue(d.waitForLog("capture device tdemonitor lost", timeout: 10), d.log)
        XCTAssertTrue(d.process.isRunning)
        server = try startServer()
        XCTAssertTrue(d.waitForLog("capture device tdemonitor is back", timeout: 10), d.log)
        let before = status(dir + "/s.sock")?.i("frames") ?? 0
        XCTAssertTrue(waitUntil(5) { (status(dir + "/s.sock")?.i("frames") ?? 0) > before + 8000 }, "capture did not resume")
        let st = status(dir + "/s.sock")
        XCTAssertEqual(st?["state"] as? String, "running")
        XCTAssertGreaterThanOrEqual(st?.i("device_lost") ?? 0, 1)
        XCTAssertEqual(d.log.components(separatedBy: "lost:").count - 1, 1, "lost logged more than once: \(d.log)")
    }
}

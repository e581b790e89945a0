import Engine
import Foundation
import LiveTDE
import XCTest

/// Test recordings for the multi-source and calibration end-to-end tests (integer delays;
/// the engine tests cover fractional ones).
enum Scenes {
    struct RNG {
        var s: UInt64
        mutating func u() -> Double {
            s &+= 0x9E3779B97F4A7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        mutating func g() -> Double { (-2 * log(max(u(), 1e-300))).squareRoot() * cos(2 * .pi * u()) }
    }

    /// Two talkers taking turns (2.5 Hz, a little overlap): A's right channel `da` samples
    /// later than its left, B's `db`.
    static func twoTalkers(seconds: Double, da: Int, db: Int, path: String) throws {
        let n = Int(seconds * 16000), pad = 32
        var r = RNG(s: 11)
        let a = (0..<(n + 2 * pad)).map { _ in 0.1 * r.g() }, b = (0..<(n + 2 * pad)).map { _ in 0.1 * r.g() }
        var left = [Float](repeating: 0, count: n), right = left
        for i in 0..<n {
            let ph = sin(2 * Double.pi * 2.5 * Double(i) / 16000)
            let ga = ph > -0.2 ? 1.0 : 0.05, gb = ph < 0.2 ? 1.0 : 0.05
            left[i] = Float(ga * a[i + pad] + gb * b[i + pad] + 0.001 * r.g())
            right[i] = Float(ga * a[i + pad - da] + gb * b[i + pad - db] + 0.001 * r.g())
        }
        try WAVWriter.write(path: path, channels: [left, right], sampleRate: 16000, format: .pcm16)
    }

    /// The two-talker scene the live multi-source tests replay: `twoTalkers` (5 s, +6 and -5
    /// samples) written to `dir/two.wav`, and a daemon config at `dir/tded.toml` tracking two
    /// sources on a 0.2 m array (step 16, Hann windows) and publishing on `socket`; `capture`:
    /// an optional `[capture]` section's body. Returns (clip, config).
    static func twoTalkerDaemon(dir: String, socket: String, capture: String? = nil) throws -> (clip: String, config: String) {
        let clip = dir + "/two.wav", config = dir + "/tded.toml"
        try twoTalkers(seconds: 5, da: 6, db: -5, path: clip)
        try E2E.writeConfig(config, (capture.map { "[capture]\n\($0)\n" } ?? "") + """
        [engine]
        step = 16
        taper = "hann"
        mic_distance = 0.2
        max_sources = 2
        [publish]
        socket = "\(socket)"
        """)
        return (clip, config)
    }

    /// Claps: decaying noise bursts at `times`, the right channel `delays[i]` samples later.
    static func claps(times: [Double], delays: [Int], seconds: Double, path: String) throws {
        let n = Int(seconds * 16000)
        var r = RNG(s: 5)
        var left = (0..<n).map { _ in Float(0.0005 * r.g()) }, right = (0..<n).map { _ in Float(0.0005 * r.g()) }
        for (t, d) in zip(times, delays) {
            let burst = (0..<128).map { j in 0.5 * r.g() * exp(-Double(j) / 48) }
            let s = Int(t * 16000)
            for j in 0..<128 {
                left[s + j] += Float(burst[j])
                right[s + j + d] += Float(burst[j])
            }
        }
        try WAVWriter.write(path: path, channels: [left, right], sampleRate: 16000, format: .pcm16)
    }

    /// A diffuse field for a `spacing`-metre pair (64 plane waves, stratified uniform on the
    /// sphere, fractional delays in the frequency domain), 2^17 samples.
    static func diffuse(spacing: Double, path: String) throws {
        let n = 1 << 17, bins = n / 2 + 1
        var r = RNG(s: 21)
        var lre = [Double](repeating: 0, count: bins), lim = lre, rre = lre, rim = lre
        for j in 0..<64 {
            let c = -1 + (2 * Double(j) + r.u()) / 64
            let dphi = 2 * Double.pi * (spacing * c / 343 * 16000 / 2) / Double(n)
            for k in 0..<bins {
                let sr = r.g(), si = r.g(), p = dphi * Double(k), zr = cos(p), zi = sin(p)
                lre[k] += sr * zr - si * zi; lim[k] += sr * zi + si * zr
                rre[k] += sr * zr + si * zi; rim[k] += si * zr - sr * zi
            }
        }
        func synth(_ re: [Double], _ im: [Double]) -> [Float] {
            let f = InverseRealFFT(size: n)
            for k in 0..<bins { f.input[2 * k] = Float(re[k]); f.input[2 * k + 1] = k == 0 || k == bins - 1 ? 0 : Float(im[k]) }
            f.execute()
            return Array(UnsafeBufferPointer(start: f.output, count: n))
        }
        var l = synth(lre, lim), rr = synth(rre, rim)
        let peak = max(l.map { abs($0) }.max()!, rr.map { abs($0) }.max()!)
        for i in 0..<n { l[i] = l[i] / peak * 0.5 + Float(0.005 * r.g()); rr[i] = rr[i] / peak * 0.5 + Float(0.005 * r.g()) }
        try WAVWriter.write(path: path, channels: [l, rr], sampleRate: 16000, format: .pcm16)
    }
}

final class MultiSourceCalibrateTests: XCTestCase {
    func json(_ s: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any]) ?? [:]
    }

    /// The daemon replays two talkers (+6 and -5 samples) in real time; a real `nc -U` client
    /// reads lines whose `sources` hold both with two stable ids.
    func testLiveTwoSourcesOverTheSocket() throws {
        let dir = E2E.tempDir(self)
        let socket = dir + "/tded.sock"
        let (clip, config) = try Scenes.twoTalkerDaemon(dir: dir, socket: socket)
        let d = try TdedProcess(["run", "--config", config, "--input", clip, "--realtime"], dir: dir)
        addTeardownBlock { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 10), d.log)
        let nc = try NCClient(socket: socket, dir: dir)
        XCTAssertNotNil(d.waitExit(timeout: 60), "daemon did not finish the clip")
        nc.kill()
        let lines = nc.lines.filter { $0["v"] != nil }
        let tail = lines.filter { $0.d("t") >= 2 }
        XCTAssertGreaterThan(tail.count, 30, "\(lines.count) lines")
        var ids = Set<Int>(), two = 0
        for l in tail {
            // the top-level fields are still there, numbers
            XCTAssertFalse(l.d("delay_ms").isNaN); XCTAssertFalse(l.d("azimuth_deg").isNaN)
            guard let src = l["sources"] as? [[String: Any]] else { XCTFail("no sources: \(l)"); continue }
            XCTAssertLessThanOrEqual(src.count, 2)
            for s in src {
                for k in ["id", "delay_ms", "azimuth_deg", "confidence", "share"] { XCTAssertNotNil(s[k] as? NSNumber, "\(k) in \(s)") }
            }
            guard src.count == 2 else { continue }
            two += 1
            let ms = src.map { $0.d("delay_ms") * 16 }.sorted()
            XCTAssertEqual(ms[0], -5, accuracy: 1, "\(src)"); XCTAssertEqual(ms[1], 6, accuracy: 1, "\(src)")
            for s in src { ids.insert(s.i("id")) }
        }
        XCTAssertGreaterThan(two, tail.count * 8 / 10, "two sources in only \(two) of \(tail.count) lines")
        XCTAssertEqual(ids.count, 2, "ids changed: \(ids)")
        // `tded analyze --whole --max-sources 2` prints the same array from the whole file
        let w = try analyze(clip, ["--whole", "--max-sources", "2", "--mic-distance", "0.2"])
        let ws = (w.first?["sources"] as? [[String: Any]]) ?? []
        XCTAssertEqual(ws.map { ($0.d("delay_ms") * 16).rounded() }.sorted(), [-5, 6], "\(ws)")
        XCTAssertEqual(ws.map { $0.i("id") }, [1, 2])
    }

    /// The multi-source tracker and the learned live weighting allocate nothing per update:
    /// under the malloc-counting shim (scripts/alloc-count.c), step-16 pipelines with and
    /// without them count the same heap allocations in steady state (0 on a release build; a
    /// debug build has a baseline).
    func testTrackerAllocatesNothingPerUpdate() throws {
        let dir = E2E.tempDir(self)
        let shim = dir + "/alloc-count.so"
        let src = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/alloc-count.c").path
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-O2", "-shared", "-fPIC", "-o", shim, src, "-ldl"]
        try cc.run(); cc.waitUntilExit()
        try XCTSkipIf(cc.terminationStatus != 0, "no C compiler for the malloc-counting shim")
        let (code, out, err) = try runTded(["bench", "--seconds", "3", "--alloc-only"], env: ["LD_PRELOAD": shim])
        XCTAssertEqual(code, 0, err)
        func count(_ label: String) -> Int? {
            guard let line = out.split(separator: "\n").first(where: { $0.contains("alloc pair (step 16, \(label))") }),
                  let n = line.split(separator: ":").last?.split(separator: " ").first else { return nil }
            return Int(n)
        }
        XCTAssertTrue(out.contains("counter sanity 1 allocation"), out)
        let base = count("pooled memory, 0 sources"), two = count("pooled memory, 2 sources")
        let mode = count("mode, 0 sources"), four = count("mode, 4 sources")
        XCTAssertNotNil(base, out); XCTAssertNotNil(mode, out)
        XCTAssertEqual(two, base, out)
        XCTAssertEqual(four, mode, out)
        // the learned live weighting (the daemon's default) allocates nothing per update either
        let learned = count("learned memory, 0 sources"), learnedTwo = count("learned memory, 2 sources")
        XCTAssertNotNil(learned, out)
        XCTAssertEqual(learned, base, out)
        XCTAssertEqual(learnedTwo, base, out)
    }

    func testMaxSourcesBadValuesAreOneLineErrors() throws {
        let dir = E2E.tempDir(self)
        for n in [0, 9] {
            let (code, _, err) = try runTded(["analyze", "--max-sources", "\(n)", dir + "/x.wav"])
            XCTAssertNotEqual(code, 0)
            XCTAssertTrue(err.contains("--max-sources must be an integer in 1...4 (got \(n))"), err)
            let cfg = dir + "/bad\(n).toml"
            try E2E.writeConfig(cfg, "[engine]\nmax_sources = \(n)\n")
            let (c2, _, e2) = try runTded(["--check-config", cfg])
            XCTAssertNotEqual(c2, 0)
            XCTAssertTrue(e2.contains("engine.max_sources: expected an integer in 1...4, got \(n)"), e2)
        }
    }

    /// Claps at the left end then the right end with the channels SWAPPED (left claps reach
    /// the right channel first), replayed by the daemon; `tded calibrate guided` reads its
    /// stream and must say so, with the spacing 343 * 9 / 16000 = 0.193 m.
    func testGuidedCalibrationFromTheDaemonStream() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/claps.wav"
        let times = [1.5, 2.3, 3.1, 4.3, 5.1, 5.9]
        try Scenes.claps(times: times, delays: [-9, -9, -9, 9, 9, 9], seconds: 6.8, path: clip)
        let socket = dir + "/tded.sock", config = dir + "/tded.toml"
        // mic_distance is configured wrong (0.1 m); the search range is widened as the guide says
        try E2E.writeConfig(config, """
        [engine]
        step = 16
        max_delay_ms = 2.0
        [publish]
        socket = "\(socket)"
        """)
        let d = try TdedProcess(["run", "--config", config, "--input", clip, "--realtime"], dir: dir)
        addTeardownBlock { d.stop() }
        XCTAssertTrue(d.waitForLog("publishing on", timeout: 10), d.log)
        let (code, out, err) = try runTded(["calibrate", "guided", "--config", config, "--json", "--timeout", "30"])
        XCTAssertEqual(code, 0, err)
        let r = json(out)
        XCTAssertEqual(r["channels_swapped"] as? Bool, true, out + err)
        XCTAssertEqual((r["channels"] as? [Int]) ?? [], [1, 0])
        XCTAssertEqual(r.d("mic_distance"), 343.0 * 9 / 16000, accuracy: 0.01, out)
        XCTAssertTrue(err.contains("clap 1/3 at the LEFT end") && err.contains("clap 1/3 at the RIGHT end"), err)
        XCTAssertEqual((r["warnings"] as? [String]) ?? ["?"], [], out)
    }

    func testGuidedAndPassiveCalibrationOfFiles() throws {
        let dir = E2E.tempDir(self)
        let claps = dir + "/claps.wav"
        try Scenes.claps(times: [0.5, 1.3, 2.1, 3.0, 3.8, 4.6], delays: [7, 7, 7, -7, -7, -7], seconds: 5.2, path: claps)
        // the configured spacing (0.05 m, "auto" search range) is too small: a recording is
        // still searched up to 2 ms
        let small = dir + "/small.toml"
        try E2E.writeConfig(small, "[engine]\nmic_distance = 0.05\n")
        var (code, out, err) = try runTded(["calibrate", "guided", "--config", small, "--input", claps, "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(json(out)["channels_swapped"] as? Bool, false, out)
        XCTAssertEqual(json(out).d("mic_distance"), 343.0 * 7 / 16000, accuracy: 0.01, out)
        // human-readable form offers the config lines
        (code, out, err) = try runTded(["calibrate", "guided", "--input", claps])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("channels = [0, 1]") && out.contains("mic_distance = 0.15"), out)
        // too few claps: one line, exit 1
        let few = dir + "/few.wav"
        try Scenes.claps(times: [0.5, 1.3], delays: [7, 7], seconds: 2, path: few)
        (code, _, err) = try runTded(["calibrate", "guided", "--input", few])
        XCTAssertEqual(code, 1)
        // (the prompts go to stderr too; the error is its last line)
        XCTAssertTrue(err.split(separator: "\n").last?.hasPrefix("tded calibrate guided: 0 clap(s) detected at the RIGHT end") ?? false, err)

        let diffuse = dir + "/room.wav"
        try Scenes.diffuse(spacing: 0.12, path: diffuse)
        (code, out, err) = try runTded(["calibrate", "passive", "--input", diffuse, "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(json(out)["trusted"] as? Bool, true, out)
        XCTAssertEqual(json(out).d("mic_distance"), 0.12, accuracy: 0.012, out)
        // a directional source is refused with the reason
        (code, _, err) = try runTded(["calibrate", "passive", "--input", claps])
        XCTAssertEqual(code, 1)
        XCTAssertTrue(err.hasPrefix("tded calibrate passive: "), err)
        XCTAssertEqual(err.split(separator: "\n").count, 1, err)
        // no daemon: one line, exit 1, after --timeout
        (code, _, err) = try runTded(["calibrate", "guided", "--socket", dir + "/none.sock", "--timeout", "0.5"])
        XCTAssertEqual(code, 1)
        XCTAssertTrue(err.split(separator: "\n").last?.hasPrefix("tded calibrate guided: no stream from a daemon on \(dir)/none.sock") ?? false, err)
        // too short
        (code, _, err) = try runTded(["calibrate", "passive", "--input", few])
        XCTAssertEqual(code, 1)
        XCTAssertTrue(err.contains("too short for a passive calibration: 2.0 s"), err)
    }
}

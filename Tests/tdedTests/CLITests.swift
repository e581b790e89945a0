import Foundation
import LiveTDE
import XCTest

/// Command-line behaviour of `tded` that needs no running daemon.
final class CLITests: XCTestCase {
    func testCheckConfigAcceptsShippedConfig() throws {
        let path = E2E.repoRoot.appendingPathComponent("config/tded.toml").path
        let (code, out, err) = try runTded(["--check-config", path])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("OK"), out)
    }

    /// Each bad value is one stderr line naming the key, exit status 2.
    func testCheckConfigRejectsBadValuesNamingTheKey() throws {
        let dir = E2E.tempDir(self)
        let cases: [(String, String)] = [
            ("[capture]\nrate = \"fast\"", "capture.rate"),
            ("[capture]\nformat = \"U8\"", "capture.format"),
            ("[capture]\nchannels = [0, 5]", "capture.channels"),
            ("[engine]\nwindow = 1000", "engine.window"),
            ("[engine]\nmethod = \"learned\"\nmodel = \"/nonexistent/m.safetensors\"", "engine.model"),
            ("[engine]\npooling = \"learned\"\npooling_model = \"/nonexistent/p.safetensors\"", "engine.pooling"),
            ("[engine]\npooling_model = 3", "engine.pooling_model"),
            ("[publish]\nsocket_mode = \"rwx\"", "publish.socket_mode"),
            ("[publish]\nrate_hz = -1", "publish.rate_hz"),
            ("[capture\n", "TOML syntax error"),
        ]
        for (i, (toml, key)) in cases.enumerated() {
            let p = dir + "/bad\(i).toml"
            try toml.write(toFile: p, atomically: true, encoding: .utf8)
            let (code, _, err) = try runTded(["--check-config", p])
            XCTAssertEqual(code, 2, "\(key): \(err)")
            XCTAssertTrue(err.contains(key), "error does not name \(key): \(err)")
            XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, "not one line: \(err)")
        }
        let (code, _, err) = try runTded(["--check-config", dir + "/missing.toml"])
        XCTAssertEqual(code, 2)
        XCTAssertTrue(err.contains("cannot read"), err)
    }

    func testRunWithBadConfigFailsFastWithOneLine() throws {
        let dir = E2E.tempDir(self)
        let p = dir + "/bad.toml"
        try "[engine]\npost = \"median\"\n".write(toFile: p, atomically: true, encoding: .utf8)
        let (code, _, err) = try runTded(["run", "--config", p])
        XCTAssertEqual(code, 2)
        XCTAssertTrue(err.contains("engine.post") && err.contains("\"mode\" or \"mean\""), err)
    }

    /// `--pooling auto` (the default) is the learned weighting, as the daemon's: per update with
    /// the live model (coherence-weighted PHAT when its model is missing, with a note) and for
    /// one estimate over a whole clip with the whole-clip model (PHAT-beta 0.7 with the
    /// noise-floor mask when missing, with a note); a bad value is one line naming it.
    func testAnalyzePoolingAutoFollowsWhole() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 1.5, path: clip)
        func delay(_ args: [String]) throws -> [Double] { try analyze(clip, args).map { $0.d("delay_ms") } }
        let whole = try delay(["--whole"])
        XCTAssertEqual(whole, try delay(["--whole", "--pooling", "learned"]))
        XCTAssertNotEqual(whole, try delay(["--whole", "--pooling", "phat-beta=0.7+snr"]))
        // a binary that finds no model file (outside the repository, no $TDED_POOLING_MODEL):
        // the classical whole-clip weighting, and one note saying so
        let classical = try delay(["--whole", "--pooling", "phat-beta=0.7+snr"])
        try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: E2E.binary, toPath: dir + "/bin/tded")
        var env = ProcessInfo.processInfo.environment
        env["TDED_POOLING_MODEL"] = ""
        let (fc, fout, ferr) = try runTded(["analyze", "--whole", clip], env: env, binary: dir + "/bin/tded", cwd: dir)
        XCTAssertEqual(fc, 0, ferr)
        XCTAssertTrue(ferr.contains("note:") && ferr.contains("no learned pooling model") && ferr.contains("phat-beta=0.7+snr"), ferr)
        XCTAssertEqual(ferr.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, ferr)
        let line = try XCTUnwrap(fout.split(separator: "\n").first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        XCTAssertEqual(line.d("delay_ms"), classical.first ?? .nan)
        // per update, the same binary: coherence-weighted PHAT, and one note saying so
        let (pc, pout, perr) = try runTded(["analyze", clip], env: env, binary: dir + "/bin/tded", cwd: dir)
        XCTAssertEqual(pc, 0, perr)
        XCTAssertTrue(perr.contains("note:") && perr.contains("per-update") && perr.contains("no learned pooling model"), perr)
        XCTAssertEqual(perr.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, perr)
        let perUpdate = jsonLines(pout)
        XCTAssertEqual(perUpdate.map { $0.d("delay_ms") }, try delay(["--pooling", "phat+coh"]))
        // a spacing wider than the model's +-24 lags: the classical weighting, with a note
        let (wc, wout, werr) = try runTded(["analyze", "--whole", "--mic-distance", "0.8", clip])
        XCTAssertEqual(wc, 0, werr)
        XCTAssertTrue(werr.contains("note:") && werr.contains("wider than the model"), werr)
        XCTAssertEqual(wout.split(separator: "\n").count, 1, wout)
        XCTAssertEqual(whole.first ?? .nan, Double(E2E.delaySamples) / 16, accuracy: 0.01)
        let lines = try delay([])
        XCTAssertGreaterThan(lines.count, 10)
        XCTAssertEqual(lines, try delay(["--pooling", "learned"]))
        XCTAssertNotEqual(lines, try delay(["--pooling", "phat+coh"]))
        XCTAssertEqual(lines.last ?? .nan, Double(E2E.delaySamples) / 16, accuracy: 0.02)
        let (code, out, err) = try runTded(["analyze", "--pooling", "phat+snr=0", clip])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(out.isEmpty)
        XCTAssertTrue(err.contains("--pooling") && err.contains("+snr"), err)
    }

    /// The daemon's `engine.pooling = "auto"` (the default) is the learned per-update
    /// weighting with the shipped live model; where that model does not fit (here 2048-sample
    /// windows) it is `phat+coh` with one warning in the log, and `pooling = "learned"` with the
    /// same misfit is a one-line startup error naming the key.
    func testDaemonPoolingAutoIsLearnedElseClassicalWithAWarning() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 2, path: clip)
        var n = 0
        func run(_ engine: String) throws -> (code: Int32, delays: [Double], err: String) {
            n += 1
            let cfg = dir + "/c\(n).toml"
            try E2E.writeConfig(cfg, "[engine]\n\(engine)\n[publish]\nsocket = \"\(dir)/s.sock\"\n")
            let (code, out, err) = try runTded(["run", "--config", cfg, "--input", clip, "--echo"])
            return (code, jsonLines(out).map { $0.d("delay_ms") }, err)
        }
        let auto = try run("")
        XCTAssertEqual(auto.code, 0, auto.err)
        XCTAssertFalse(auto.err.contains("warning"), auto.err)
        XCTAssertTrue(auto.err.contains("gcc-phat (pooling learned)"), auto.err)  // the startup line says which
        XCTAssertGreaterThan(auto.delays.count, 20)
        XCTAssertEqual(auto.delays, try run("pooling = \"learned\"").delays)
        XCTAssertNotEqual(auto.delays, try run("pooling = \"phat+coh\"").delays)
        XCTAssertEqual(auto.delays.last ?? .nan, Double(E2E.delaySamples) / 16, accuracy: 0.02)
        // 2048-sample windows: the live model was trained for 1024
        let wide = "window = 2048\nspan = 2048\n"
        let fallback = try run(wide)
        XCTAssertEqual(fallback.code, 0, fallback.err)
        let warnings = fallback.err.split(separator: "\n").filter { $0.contains("warning") }
        XCTAssertEqual(warnings.count, 1, fallback.err)
        XCTAssertTrue(warnings.first?.contains("engine.pooling auto") == true && warnings.first?.contains("1024-sample windows") == true, fallback.err)
        XCTAssertTrue(fallback.err.contains("gcc-phat (pooling coh)"), fallback.err)
        XCTAssertEqual(fallback.delays, try run(wide + "pooling = \"phat+coh\"").delays)
        let strict = try run(wide + "pooling = \"learned\"")
        XCTAssertEqual(strict.code, 2)
        XCTAssertTrue(strict.err.contains("engine.pooling") && strict.err.contains("1024-sample windows"), strict.err)
        XCTAssertEqual(strict.err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, strict.err)
    }

    /// `--whole --pooling learned` finds the shipped model and recovers the clip's delay;
    /// `--pooling-model` takes another file, and a wrong or missing one, or a per-update run
    /// with the --whole model (not trained on Hann windows), is one line naming the problem.
    func testAnalyzeLearnedPooling() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 1.5, path: clip)
        let learned = try analyze(clip, ["--whole", "--pooling", "learned"]).map { $0.d("delay_ms") }
        XCTAssertEqual(learned.count, 1)
        XCTAssertEqual(learned.first ?? .nan, Double(E2E.delaySamples) / 16, accuracy: 0.02)
        let shipped = E2E.repoRoot.appendingPathComponent(ModelLoader.gccMaskRelativePath).path
        XCTAssertEqual(learned, try analyze(clip, ["--whole", "--pooling", "learned", "--pooling-model", shipped]).map { $0.d("delay_ms") })
        let encoder = E2E.repoRoot.appendingPathComponent("models/tded-stream-v1.safetensors").path
        for (args, needle) in [(["--whole", "--pooling", "learned", "--pooling-model", encoder], "not a learned-pooling model"),
                               (["--whole", "--pooling", "learned", "--pooling-model", dir + "/none.safetensors"], "none.safetensors"),
                               (["--whole", "--taper", "rectangular", "--pooling", "learned", "--pooling-model",
                                 E2E.repoRoot.appendingPathComponent(ModelLoader.gccMaskLiveRelativePath).path], "hann"),
                               (["--pooling", "learned", "--pooling-model", shipped], "rectangular")] {
            let (code, out, err) = try runTded(["analyze"] + args + [clip])
            XCTAssertEqual(code, 2, err)
            XCTAssertTrue(out.isEmpty, out)
            XCTAssertTrue(err.contains(needle), "\(args): \(err)")
            XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, err)
        }
    }

    /// A model named by `$TDED_POOLING_MODEL` / `$TDED_MODEL` that does not exist is reported,
    /// naming it; it is not skipped in silence for the shipped file.
    func testMissingModelInTheEnvironmentIsReported() throws {
        let dir = E2E.tempDir(self)
        let clip = dir + "/clip.wav"
        try E2E.makeClip(seconds: 1.5, path: clip)
        let env = ["TDED_POOLING_MODEL": dir + "/typo.safetensors", "TDED_MODEL": dir + "/typo2.safetensors"]
        // pooling auto: the classical weighting, with one note naming the file
        let (ac, aout, aerr) = try runTded(["analyze", "--whole", clip], env: env)
        XCTAssertEqual(ac, 0, aerr)
        XCTAssertTrue(aerr.contains("note:") && aerr.contains("typo.safetensors") && aerr.contains("phat-beta=0.7+snr"), aerr)
        XCTAssertEqual(aerr.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, aerr)
        XCTAssertEqual(aout.split(separator: "\n").count, 1, aout)
        // asked for explicitly: an error, one line, naming the file
        for (args, needle) in [(["--whole", "--pooling", "learned"], "typo.safetensors"), (["--method", "learned"], "typo2.safetensors")] {
            let (code, out, err) = try runTded(["analyze"] + args + [clip], env: env)
            XCTAssertEqual(code, 2, err)
            XCTAssertTrue(out.isEmpty, out)
            XCTAssertTrue(err.contains(needle) && err.contains("no such file"), "\(args): \(err)")
            XCTAssertEqual(err.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, err)
        }
    }

    func testMissingInputFileIsOneLineError() throws {
        let dir = E2E.tempDir(self)
        let (code, _, err) = try runTded(["run", "--input", dir + "/nope.wav", "--socket", dir + "/s.sock"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("nope.wav"), err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s.sock"), "socket left behind")
    }

    func testListDevices() throws {
        let (code, out, err) = try runTded(["--list-devices"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("Sound cards:") && out.contains("Capture PCMs"), out)
        // The ALSA configuration's standard capture PCMs are listed (null, default, ...).
        XCTAssertTrue(out.contains("null") || out.contains("default"), out)
    }

    /// Issue 15: `run`, `analyze` and the config share one type per closed set; the command
    /// line accepts the same spellings and a wrong one is a usage error naming the choices.
    func testClosedSetsOnTheCommandLine() throws {
        for (args, choices) in [(["analyze", "--taper", "kaiser", "x.wav"], ["auto", "rectangular", "hann"]),
                                (["analyze", "--post", "median", "x.wav"], ["pooled", "mode", "mean"]),
                                (["analyze", "--subsample", "cubic", "x.wav"], ["none", "parabolic", "upsampled"]),
                                (["run", "--method", "music"], ["gcc-phat", "learned"])] {
            let (code, _, err) = try runTded(args)
            XCTAssertEqual(code, 64, "\(args): \(err)")
            XCTAssertTrue(err.contains("'\(args[2])' is invalid for '\(args[1])"), "\(args): \(err)")
            for c in choices { XCTAssertTrue(err.contains("'\(c)'"), "\(args): \(err)") }
        }
        let (code, _, err) = try runTded(["analyze", "--pooling", "scot", "x.wav"])
        XCTAssertEqual(code, 64, err)
        XCTAssertTrue(err.contains("--pooling") && err.contains("phat-beta=B"), err)
        for bad in ["3500-300", "300-", "low-high"] {
            let (code, _, err) = try runTded(["analyze", "--band", bad, "x.wav"])
            XCTAssertEqual(code, 64, err)
            XCTAssertTrue(err.contains("'\(bad)' is invalid for '--band") && err.contains("LO-HI"), err)
        }
        let dir = E2E.tempDir(self)
        let cfg = dir + "/m.toml"
        try "[engine]\nmethod = \"learned\"\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        let (ok, out, err2) = try runTded(["--check-config", cfg, "--method", "gcc-phat"])
        XCTAssertEqual(ok, 0, err2)
        XCTAssertTrue(out.contains("gcc-phat"), out)  // the flag wins over the file, printed by its spelling
    }
}

// Analyzer.swift: the `tded analyze` work as library calls (files -> updates -> JSON lines).
import Engine
import Foundation

/// Settings of one `tded analyze` call.
public struct AnalyzeSettings: Sendable {
    public var estimator = EstimatorOptions()
    public var pipeline = PipelineConfig()
    /// File channels used as (left, right), 0-based; nil = the file must be stereo.
    public var channels: (Int, Int)? = nil
    /// One estimate per file from all its votes instead of one per update hop.
    public var whole = false
    public init() {}
}

/// Offline analysis of WAV files through the same `TDEPipeline` the daemon uses.
public enum Analyzer {
    /// Analyses one file: per-update estimates (updates without votes are dropped), or with
    /// `whole` a single estimate. Throws a one-line error for unreadable or too-short files and
    /// for invalid settings.
    public static func analyze(path: String, settings: AnalyzeSettings) throws -> [Update] {
        let rate = Int(settings.pipeline.sampleRate)
        let audio = try AudioLoader.load(path: path, channels: settings.channels, rate: rate)
        var pc = settings.pipeline
        pc.keepAllVotes = settings.whole
        let pipeline = try TDEPipeline(estimator: try EstimatorFactory.make(settings.estimator), config: pc)
        var out: [Update] = []
        audio.left.withUnsafeBufferPointer { l in
            audio.right.withUnsafeBufferPointer { r in
                pipeline.process(left: l, right: r) { u in
                    if !settings.whole && u.votes > 0 { out.append(u) }
                }
            }
        }
        let window = pipeline.estimator.windowLength
        if settings.whole {
            pipeline.finish()
            let w = pipeline.wholeResult()
            guard w.votes > 0 else {
                throw WAVError("too short: \(audio.left.count) samples at \(rate) Hz, one window needs \(window)")
            }
            out.append(w)
        } else if out.isEmpty {
            throw WAVError("too short for one update: \(audio.left.count) samples at \(rate) Hz (window \(window), update hop \(pc.updateHop))")
        }
        return out
    }

    /// Analyses every file in order, calling `line` with each JSON line and `error` with one
    /// line per failed file (`"FILE: reason"`). Returns the number of failed files.
    @discardableResult
    public static func run(files: [String], settings: AnalyzeSettings,
                           line: (String) -> Void, error: (String) -> Void) -> Int {
        var failed = 0
        for f in files {
            do {
                for u in try analyze(path: f, settings: settings) { line(jsonLine(file: f, u)) }
            } catch let e {
                error("\(f): \(e)")
                failed += 1
            }
        }
        return failed
    }

    /// The JSON line for one update. Fields, in order: file, t, delay_ms, delay_samples,
    /// azimuth_deg, confidence, votes, method, post, level_db, flags (see README).
    public static func jsonLine(file: String, _ u: Update) -> String {
        let flags = u.flags.names.map { jsonString($0) }.joined(separator: ",")
        return "{\"file\":\(jsonString(file)),\"t\":\(jsonNumber(u.t, 4))"
            + ",\"delay_ms\":\(jsonNumber(u.delayMs, 5)),\"delay_samples\":\(jsonNumber(u.delaySamples, 4))"
            + ",\"azimuth_deg\":\(jsonNumber(u.azimuthDeg, 3)),\"confidence\":\(jsonNumber(u.confidence, 4))"
            + ",\"votes\":\(u.votes),\"method\":\(jsonString(u.method)),\"post\":\(jsonString(u.post.rawValue))"
            + ",\"level_db\":\(jsonNumber(u.levelDb, 2)),\"flags\":[\(flags)]}"
    }

    /// A JSON string literal (quotes, backslashes and control characters escaped).
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// A JSON number with `digits` decimals (`appendFixed`: printf's rounding; non-finite
    /// values become null, "-0.000" becomes "0.000"). The daemon's lines use the same formatter.
    public static func jsonNumber(_ x: Double, _ digits: Int) -> String { fixedString(x, digits) }
}

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
        var out: [Update] = []
        try analyze(path: path, settings: settings) { out.append($0) }
        return out
    }

    /// Frames read (and resampled) per block: memory is proportional to this and to the
    /// analysis window, not to the file (except `whole`, which keeps every vote).
    public static let blockFrames = 65536

    /// Streaming form of `analyze(path:settings:)`: reads the file block by block, resamples
    /// with `StreamResampler` when its rate differs, cleans non-finite / out-of-range samples
    /// (`InputSanitizer`, flagged) and calls `onUpdate` with each update as it is made.
    /// Non-finite sample counts go to `warning` (one line).
    public static func analyze(path: String, settings: AnalyzeSettings, warning: (String) -> Void = { _ in },
                               onUpdate: (Update) throws -> Void) throws {
        let rate = Int(settings.pipeline.sampleRate)
        let stream = try AudioFileStream(path: path, channels: settings.channels)
        try AudioRates.checkFileRate(stream.rate)
        var pc = settings.pipeline
        pc.keepAllVotes = settings.whole
        pc.perUpdateEstimates = !settings.whole  // --whole prints one line: the per-hop estimates would be thrown away
        let pipeline = try TDEPipeline(estimator: try EstimatorFactory.make(settings.estimator), config: pc)
        let resampler = stream.rate == rate ? nil : try StreamResampler(from: Double(stream.rate), to: Double(rate))
        let sanitizer = InputSanitizer()
        let n = blockFrames
        let inL = UnsafeMutablePointer<Float>.allocate(capacity: n), inR = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let cl = UnsafeMutablePointer<Float>.allocate(capacity: n), cr = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { inL.deallocate(); inR.deallocate(); cl.deallocate(); cr.deallocate() }
        var emitted = 0
        var thrown: Error? = nil
        // Cleans and analyses engine-rate samples (copied: the resampler's buffers are read-only).
        func feed(_ l: UnsafeBufferPointer<Float>, _ r: UnsafeBufferPointer<Float>) throws {
            var i = 0
            while i < l.count {
                let k = min(n, l.count - i)
                cl.update(from: l.baseAddress! + i, count: k); cr.update(from: r.baseAddress! + i, count: k)
                sanitizer.clean(cl, cr, count: k, position: pipeline.samplesProcessed)
                pipeline.process(left: UnsafeBufferPointer(start: cl, count: k), right: UnsafeBufferPointer(start: cr, count: k)) { u in
                    guard thrown == nil, !settings.whole, u.votes > 0 else { return }
                    do { try onUpdate(sanitizer.flag(u, span: pc.analysisSpan).sanitized); emitted += 1 } catch { thrown = error }
                }
                if let e = thrown { throw e }
                i += k
            }
        }
        while true {
            let got = try stream.read(max: n, left: inL, right: inR)
            if got == 0 { break }
            if let rs = resampler {
                try rs.process(left: inL, right: inR, count: got) { try feed($0, $1) }
            } else {
                try feed(UnsafeBufferPointer(start: inL, count: got), UnsafeBufferPointer(start: inR, count: got))
            }
        }
        try resampler?.flush { try feed($0, $1) }
        if sanitizer.nonfiniteSamples > 0 {
            warning("\(path): \(sanitizer.nonfiniteSamples) non-finite sample(s) (NaN/Inf) replaced by 0; affected lines are flagged nonfinite_input")
        }
        let window = pipeline.estimator.windowLength
        let samples = pipeline.samplesProcessed
        if settings.whole {
            pipeline.finish()
            let w = pipeline.wholeResult()
            guard w.votes > 0 else {
                throw WAVError("too short: \(samples) samples at \(rate) Hz, one window needs \(window)")
            }
            try onUpdate(sanitizer.flag(w, span: Int(samples) + 1).sanitized)
        } else if emitted == 0 {
            throw WAVError("too short for one update: \(samples) samples at \(rate) Hz (window \(window), update hop \(pc.updateHop))")
        }
    }

    /// Analyses every file in order, calling `line` with each JSON line and `error` with one
    /// line per failed file (`"FILE: reason"`). Returns the number of failed files.
    @discardableResult
    public static func run(files: [String], settings: AnalyzeSettings,
                           line: (String) -> Void, error: (String) -> Void) -> Int {
        var failed = 0
        for f in files {
            do {
                try analyze(path: f, settings: settings, warning: error) { line(jsonLine(file: f, $0)) }
            } catch let e {
                error("\(f): \(e)")
                failed += 1
            }
        }
        return failed
    }

    /// The JSON line for one update. Fields, in order: file, t, delay_ms, delay_samples,
    /// azimuth_deg, confidence, votes, method, post, level_db, flags, and `sources` when the
    /// multi-source search is on (docs/protocol.md, docs/array-setup.md).
    public static func jsonLine(file: String, _ u: Update) -> String {
        let u = u.sanitized
        var w = JSONLine(capacity: (u.sources.enabled ? 656 : 256) + file.utf8.count)
        w.string("file", file)
        w.number("t", u.t, digits: 4)
        w.number("delay_ms", u.delayMs, digits: 5)
        w.number("delay_samples", u.delaySamples, digits: 4)
        w.number("azimuth_deg", u.azimuthDeg, digits: 3)
        w.number("confidence", u.confidence, digits: 4)
        w.integer("votes", u.votes)
        w.string("method", u.method)
        w.string("post", u.post.rawValue)
        w.number("level_db", u.levelDb, digits: 2)
        w.flags("flags", u.flags)
        w.sources(u.sources)
        return w.finish()
    }

    /// A JSON string literal (`JSONLine.quoted`).
    public static func jsonString(_ s: String) -> String { JSONLine.quoted(s) }

    /// A JSON number with `digits` decimals (`appendFixed`: printf's rounding; non-finite
    /// values become null, "-0.000" becomes "0.000"). The daemon's lines use the same formatter.
    public static func jsonNumber(_ x: Double, _ digits: Int) -> String { fixedString(x, digits) }
}

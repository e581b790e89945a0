import Foundation

/// One published socket line of schema version 1, decoded (docs/protocol.md, "Socket lines").
///
/// This is the client side of `liveLine(_:seq:sampleRate:)`: `tded watch`, `tded view` and the
/// example clients read the stream with it. Numbers the daemon wrote as `null` (not finite)
/// decode as `.nan`; fields added later within version 1 are ignored.
public struct StreamLine: Decodable, Equatable, Sendable {
    /// The schema version this type understands.
    public static let schemaVersion = 1

    /// Schema version (`v`).
    public var v: Int
    /// Seconds of audio since the stream started.
    public var t: Double
    /// Smoothed delay, ms; positive = right channel later (source nearer the LEFT mic).
    public var delayMs: Double
    /// Smoothed azimuth, degrees in [-90, 90], positive toward the LEFT mic.
    public var azimuthDeg: Double
    /// Smoothed confidence in [0, 1].
    public var confidence: Double
    /// Level of the analysed span, dBFS.
    public var levelDb: Double
    /// Estimator name.
    public var method: String
    /// Update counter (+1 per update; a gap means lines were skipped for this client).
    public var seq: Int
    /// Unsmoothed delay of this update, ms.
    public var rawDelayMs: Double
    /// Unsmoothed azimuth of this update, degrees.
    public var rawAzimuthDeg: Double
    /// Window votes aggregated.
    public var votes: Int
    /// Flags (`silent`, `holding`, `stale`, ...).
    public var flags: [String]
    /// Tracked sources (`engine.max_sources`; docs/array-setup.md); empty when the line has none.
    public var sources: [StreamSource]

    enum CodingKeys: String, CodingKey {
        case v, t, method, seq, votes, flags, sources
        case delayMs = "delay_ms", azimuthDeg = "azimuth_deg", confidence, levelDb = "level_db"
        case rawDelayMs = "raw_delay_ms", rawAzimuthDeg = "raw_azimuth_deg"
    }

    /// Decodes the fields; a JSON `null` number becomes `.nan`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func num(_ k: CodingKeys) throws -> Double { try c.decodeIfPresent(Double.self, forKey: k) ?? .nan }
        v = try c.decode(Int.self, forKey: .v)
        t = try num(.t)
        delayMs = try num(.delayMs)
        azimuthDeg = try num(.azimuthDeg)
        confidence = try num(.confidence)
        levelDb = try num(.levelDb)
        method = try c.decodeIfPresent(String.self, forKey: .method) ?? ""
        seq = try c.decode(Int.self, forKey: .seq)
        rawDelayMs = try num(.rawDelayMs)
        rawAzimuthDeg = try num(.rawAzimuthDeg)
        votes = try c.decodeIfPresent(Int.self, forKey: .votes) ?? 0
        flags = try c.decodeIfPresent([String].self, forKey: .flags) ?? []
        sources = try c.decodeIfPresent([StreamSource].self, forKey: .sources) ?? []
    }

    /// Why a line was not decoded.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        /// Not a JSON object, or required fields (`v`, `seq`) missing or mistyped.
        case malformed
        /// A `v` this client does not know: the client should stop or skip, never guess.
        case unknownVersion(Int)
        /// A status reply (`"type":"status"`), not an update.
        case status

        /// One line for a log.
        public var description: String {
            switch self {
            case .malformed: return "not a schema-1 update line"
            case .unknownVersion(let v): return "unknown schema version v=\(v) (this client knows v=\(StreamLine.schemaVersion))"
            case .status: return "a status reply, not an update"
            }
        }
    }

    /// Parses one line (with or without its newline), checking the schema version first.
    public static func parse(_ line: String) -> Result<StreamLine, ParseError> {
        let data = Data(line.utf8)
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return .failure(.malformed) }
        if obj["type"] as? String == "status" { return .failure(.status) }
        guard let v = (obj["v"] as? NSNumber)?.intValue else { return .failure(.malformed) }
        guard v == schemaVersion else { return .failure(.unknownVersion(v)) }
        guard let l = try? JSONDecoder().decode(StreamLine.self, from: data) else { return .failure(.malformed) }
        return .success(l)
    }
}

/// Counts `seq` gaps in one client's stream (lines the daemon skipped for it).
///
/// A `seq` lower than or equal to the previous one means a new stream (the daemon restarted):
/// it is counted as a restart, not a gap.
public struct SeqGapCounter: Sendable {
    /// The last `seq` seen (nil before the first line).
    public private(set) var last: Int?
    /// Lines missed in total.
    public private(set) var missed = 0
    /// Gaps seen (each a run of one or more missed lines).
    public private(set) var gaps = 0
    /// Times `seq` went back (stream restarted).
    public private(set) var restarts = 0

    /// Creates an empty counter.
    public init() {}

    /// Records `seq`; returns the number of lines missed just before it (0 when contiguous).
    @discardableResult
    public mutating func record(_ seq: Int) -> Int {
        defer { last = seq }
        guard let prev = last else { return 0 }
        if seq <= prev { restarts += 1; return 0 }
        let m = seq - prev - 1
        if m > 0 { missed += m; gaps += 1 }
        return m
    }

    /// Forgets the last `seq` (after a reconnect, the next line starts a new run).
    public mutating func reset() { last = nil }
}

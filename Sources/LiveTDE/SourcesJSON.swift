// SourcesJSON.swift: the `sources` array of the socket line and of `tded analyze`.
import Engine

extension JSONLine {
    /// `"sources":[{"id":..,"delay_ms":..,"azimuth_deg":..,"confidence":..,"share":..}, ...]`
    /// when the multi-source search is on (`list.enabled`), nothing otherwise. Entries with a
    /// non-finite number are left out (a source is never published as `null`). Written into
    /// the line's own buffer (no allocation beyond its reserved capacity).
    public mutating func sources(_ list: SourceList) {
        guard list.enabled else { return }
        value("sources") { s in
            s += "["
            var first = true
            for src in list {
                guard src.delayMs.isFinite, src.azimuthDeg.isFinite, src.confidence.isFinite, src.share.isFinite else { continue }
                if !first { s += "," }
                first = false
                s += "{\"id\":"; s += String(src.id)
                s += ",\"delay_ms\":"; appendFixed(&s, src.delayMs, 4)
                s += ",\"azimuth_deg\":"; appendFixed(&s, src.azimuthDeg, 2)
                s += ",\"confidence\":"; appendFixed(&s, src.confidence, 3)
                s += ",\"share\":"; appendFixed(&s, src.share, 3)
                s += "}"
            }
            s += "]"
        }
    }
}

/// One entry of a line's `sources` array, decoded (client side of `appendSources`).
public struct StreamSource: Decodable, Equatable, Sendable {
    /// Stable track id.
    public var id: Int
    /// Smoothed delay, ms (positive = right channel later), and its azimuth, degrees.
    public var delayMs: Double
    public var azimuthDeg: Double
    /// Smoothed share (held, then decaying) and this update's share of the votes.
    public var confidence: Double
    public var share: Double

    enum CodingKeys: String, CodingKey {
        case id, confidence, share
        case delayMs = "delay_ms", azimuthDeg = "azimuth_deg"
    }
}

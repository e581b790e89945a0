// LiveLine.swift: the daemon's published line for one update (schema version 1,
// docs/protocol.md "Socket lines").
import Engine

/// The published line for one update. Built in one reserved buffer by `JSONLine` (one
/// allocation per line; `String(format:)` would cost dozens), with the number formatter
/// `tded analyze` uses too.
public func liveLine(_ u: Update, seq: Int, sampleRate: Double) -> String {
    var w = JSONLine(capacity: u.sources.enabled ? 720 : 320)
    w.integer("v", 1)
    w.number("t", u.t, digits: 3)
    w.number("delay_ms", u.smoothedDelaySamples / sampleRate * 1000, digits: 4)
    w.number("azimuth_deg", u.smoothedAzimuthDeg, digits: 2)
    w.number("confidence", u.smoothedConfidence, digits: 3)
    w.number("level_db", u.levelDb, digits: 1)
    w.string("method", u.method)
    w.integer("seq", seq)
    w.number("raw_delay_ms", u.delayMs, digits: 5)
    w.number("raw_azimuth_deg", u.azimuthDeg, digits: 3)
    w.integer("votes", u.votes)
    w.flags("flags", u.flags)
    w.sources(u.sources)
    return w.finish()
}

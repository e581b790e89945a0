import Foundation
import LiveTDE

/// The text of `tded watch`: one gauge line per update, for a terminal or for a pipe.
///
/// The bar runs from LEFT (+90 deg, toward the left mic) to RIGHT (-90 deg), as a person sees
/// the array from behind: `L [------|---#------] R`; `#` marks the smoothed azimuth (`o` when
/// confidence is below 0.3), `|` is broadside (0 deg). With several tracked sources
/// (`engine.max_sources`), each is marked by the last digit of its id (under `#` where they
/// coincide); their numbers are in the plain lines (`sources=1:+30.0:0.62,2:-41.5:0.31`), not on
/// the gauge line, which they would lengthen past a terminal's width (a wrapped line cannot be
/// redrawn in place).
public enum Gauge {
    /// Characters between the brackets (odd, so 0 deg has a centre cell).
    public static let barWidth = 31

    /// Bar cell of `azimuthDeg` (0 = far left = +90 deg); nil when not finite.
    public static func cell(azimuthDeg: Double) -> Int? {
        guard azimuthDeg.isFinite else { return nil }
        let a = max(-90, min(90, azimuthDeg))
        return Int(((90 - a) / 180 * Double(barWidth - 1)).rounded())
    }

    /// `L [...] R` for one azimuth and confidence.
    public static func bar(azimuthDeg: Double, confidence: Double, sources: [StreamSource] = []) -> String {
        var cells = [Character](repeating: "-", count: barWidth)
        cells[barWidth / 2] = "|"
        for s in sources { if let i = cell(azimuthDeg: s.azimuthDeg) { cells[i] = Character(String(abs(s.id) % 10)) } }
        if let i = cell(azimuthDeg: azimuthDeg) { cells[i] = confidence >= 0.3 ? "#" : "o" }
        return "L [" + String(cells) + "] R"
    }

    /// The gauge text for one line: bar, degrees, confidence, level, flags.
    public static func line(_ l: StreamLine) -> String {
        var s = bar(azimuthDeg: l.azimuthDeg, confidence: l.confidence, sources: l.sources)
        s += " " + fixed(l.azimuthDeg, 1, width: 6, sign: true) + " deg"
        s += "  conf " + fixed(l.confidence, 2, width: 4)
        s += "  " + fixed(l.levelDb, 1, width: 6) + " dBFS"
        if !l.flags.isEmpty { s += "  " + l.flags.joined(separator: ",") }
        return s
    }

    /// One plain line (no escape codes), for when stdout is not a terminal; `sources=ID:AZ:CONF,...`
    /// is appended when the line has tracked sources.
    public static func plainLine(_ l: StreamLine) -> String {
        "t=" + fixed(l.t, 2, width: 0) + " azimuth=" + fixed(l.azimuthDeg, 1, width: 0, sign: true)
            + " confidence=" + fixed(l.confidence, 2, width: 0) + " level_db=" + fixed(l.levelDb, 1, width: 0)
            + " seq=\(l.seq) flags=" + (l.flags.isEmpty ? "-" : l.flags.joined(separator: ","))
            + (l.sources.isEmpty ? "" : " sources=" + l.sources.map {
                "\($0.id):" + fixed($0.azimuthDeg, 1, width: 0, sign: true) + ":" + fixed($0.confidence, 2, width: 0)
            }.joined(separator: ","))
    }

    /// Redraws the terminal line in place: carriage return, the text, clear to end of line.
    public static func redraw(_ text: String) -> String { "\r" + text + "\u{1B}[K" }

    static func fixed(_ x: Double, _ digits: Int, width: Int, sign: Bool = false) -> String {
        guard x.isFinite else { return String(repeating: " ", count: max(0, width - 1)) + "-" }
        var s = String(format: "%.\(digits)f", x)
        if s.hasPrefix("-") && Double(s) == 0 { s.removeFirst() }
        if sign && !s.hasPrefix("-") { s = "+" + s }
        return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}

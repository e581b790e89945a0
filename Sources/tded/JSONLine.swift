// JSONLine.swift: tiny JSON-line formatting helpers for command output.
import Engine
import Foundation

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
func jsonString(_ s: String) -> String {
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

/// A finite JSON number with `digits` decimals (non-finite values become null).
func jsonNumber(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "null" }
    let s = String(format: "%.\(digits)f", x)
    return s == "-0" || s.hasPrefix("-0.") && Double(s) == 0 ? String(s.dropFirst()) : s
}

/// The `tded analyze` JSON line for one update (field order fixed; see README).
func analyzeLine(file: String, _ u: Update) -> String {
    let flags = u.flags.names.map { jsonString($0) }.joined(separator: ",")
    return "{\"file\":\(jsonString(file)),\"t\":\(jsonNumber(u.t, 4))"
        + ",\"delay_ms\":\(jsonNumber(u.delayMs, 5)),\"delay_samples\":\(jsonNumber(u.delaySamples, 4))"
        + ",\"azimuth_deg\":\(jsonNumber(u.azimuthDeg, 3)),\"confidence\":\(jsonNumber(u.confidence, 4))"
        + ",\"votes\":\(u.votes),\"method\":\(jsonString(u.method)),\"post\":\(jsonString(u.post.rawValue))"
        + ",\"level_db\":\(jsonNumber(u.levelDb, 2)),\"flags\":[\(flags)]}"
}

// JSONLine.swift: the one writer of tded's JSON lines (socket updates, status replies,
// `tded analyze` lines, the viewer's events): one string escaper, one number formatter
// (`appendFixed`, FixedFormat.swift), fields in the order they are written.
import Engine
import Foundation

/// One JSON object on one line, built by appending into a single reserved buffer: with enough
/// `capacity`, a line costs one allocation (its text), which keeps the engine thread's
/// per-update cost at the two allocations scripts/alloc-count.c measures.
public struct JSONLine {
    private var text: String
    private var empty = true

    /// Starts an object; `capacity` bytes are reserved at once.
    public init(capacity: Int = 256) {
        text = ""
        text.reserveCapacity(capacity)
        text += "{"
    }

    @inline(__always) private mutating func key(_ k: String) {
        text += empty ? "\"" : ",\""
        empty = false
        text += k
        text += "\":"
    }

    /// `"k":x` with `digits` decimals, exactly as printf's `%.*f` (non-finite: `null`).
    public mutating func number(_ k: String, _ x: Double, digits: Int) {
        key(k)
        appendFixed(&text, x, digits)
    }

    /// `"k":n`.
    public mutating func integer(_ k: String, _ n: Int) {
        key(k)
        text += String(n)
    }

    /// `"k":"v"`, escaped.
    public mutating func string(_ k: String, _ v: String) {
        key(k)
        JSONLine.appendString(&text, v)
    }

    /// `"k":[...]`: the names of the flags set in `flags`, in `UpdateFlags.outputNames` order.
    public mutating func flags(_ k: String, _ flags: UpdateFlags) {
        key(k)
        text += "["
        var first = true
        for (flag, name) in UpdateFlags.outputNames where flags.contains(flag) {
            text += first ? "\"" : ",\""
            first = false
            text += name
            text += "\""
        }
        text += "]"
    }

    /// `"k":` followed by what `body` appends to the line's buffer (a nested value written in
    /// place, e.g. the `sources` array).
    public mutating func value(_ k: String, _ body: (inout String) -> Void) {
        key(k)
        body(&text)
    }

    /// The finished line (no trailing newline).
    public mutating func finish() -> String {
        text += "}"
        return text
    }

    /// Appends `v` as a JSON string literal: quotes, backslashes and control characters escaped
    /// (`\n`, `\r`, `\t` by name, the others as `\u00XX`).
    public static func appendString(_ s: inout String, _ v: String) {
        s += "\""
        for u in v.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if u.value < 0x20 { s += String(format: "\\u%04x", u.value) } else { s.unicodeScalars.append(u) }
            }
        }
        s += "\""
    }

    /// `v` as a JSON string literal (see `appendString`).
    public static func quoted(_ v: String) -> String {
        var s = ""
        appendString(&s, v)
        return s
    }
}

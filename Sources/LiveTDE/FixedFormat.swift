// One fixed-point number formatter for every line tded prints (daemon socket lines, status,
// `tded analyze` JSON), so the same value prints the same text everywhere.
import Foundation

/// Exact powers of ten (all exactly representable as Double).
private let decimalScales: [Double] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]

/// Appends `x` with `digits` decimals (0...9), exactly as C's `printf("%.*f")` prints it (the
/// exact binary value correctly rounded, exact ties to even: 0.015625 at 5 digits is
/// `0.01562`), except that a value that rounds to zero prints without a sign (`0.000`, never
/// `-0.000`) and a non-finite value prints `null` (JSON).
///
/// Heap-free for |x| * 10^digits < 2^50 when `s` has room (digits are built on the stack);
/// larger values go through `String(format:)`.
public func appendFixed(_ s: inout String, _ x: Double, _ digits: Int) {
    precondition(digits >= 0 && digits < decimalScales.count, "appendFixed: digits must be in 0...9")
    guard x.isFinite else { s += "null"; return }
    let a = abs(x)
    let scale = decimalScales[digits]
    // p + err == a * scale exactly (err is the rounding error of the product, exact by FMA).
    let p = a * scale
    guard p < 0x1p50 else {
        var f = String(format: "%.\(digits)f", x)
        if f.hasPrefix("-"), Double(f) == 0 { f.removeFirst() }
        s += f
        return
    }
    var n: UInt64 = 0
    if a >= 1e-30 {  // below that the exact value is far under 1/2 (and err could underflow)
        let err = (-p).addingProduct(a, scale)
        let fl = p.rounded(.down)
        let d = p - fl  // exact; a multiple of ulp(p) <= 1/4, so |d - 1/2| > |err| unless d == 1/2
        n = UInt64(fl)
        if d > 0.5 || (d == 0.5 && (err > 0 || (err == 0 && n & 1 == 1))) { n += 1 }
    }
    let pow10 = UInt64(scale)
    var intPart = n / pow10, frac = n % pow10
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buf in
        var i = 32
        for _ in 0..<digits {  // fraction digits, right to left
            i -= 1; buf[i] = UInt8(ascii: "0") + UInt8(frac % 10); frac /= 10
        }
        if digits > 0 { i -= 1; buf[i] = UInt8(ascii: ".") }
        repeat {
            i -= 1; buf[i] = UInt8(ascii: "0") + UInt8(intPart % 10); intPart /= 10
        } while intPart > 0
        if x < 0 && n != 0 { i -= 1; buf[i] = UInt8(ascii: "-") }
        for k in i..<32 { s.unicodeScalars.append(Unicode.Scalar(buf[k])) }
    }
}

/// `appendFixed` into a new string.
public func fixedString(_ x: Double, _ digits: Int) -> String {
    var s = ""
    appendFixed(&s, x, digits)
    return s
}

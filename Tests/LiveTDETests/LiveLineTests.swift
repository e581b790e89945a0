import Engine
import Foundation
import XCTest
@testable import LiveTDE

final class LiveLineTests: XCTestCase {
    /// printf's `%.*f` text, with "-0.00" printed as "0.00" (the documented exception).
    func printfReference(_ x: Double, _ digits: Int) -> String {
        var ref = String(format: "%.\(digits)f", x)
        if ref.hasPrefix("-") && Double(ref) == 0 { ref.removeFirst() }
        return ref
    }

    /// The one formatter of live lines and `analyze` lines equals printf exactly (seeded random
    /// values, and exact decimal ties, which printf rounds to even).
    func testAppendFixedEqualsPrintfExactly() {
        var rng = SplitMix64(seed: 0x5EED_F1CE)
        var checked = 0, ties = 0
        func check(_ x: Double, _ digits: Int) {
            var s = ""
            appendFixed(&s, x, digits)
            XCTAssertEqual(s, printfReference(x, digits), "\(x) with \(digits) digits")
            XCTAssertEqual(Analyzer.jsonNumber(x, digits), s, "analyze and live lines share the formatter")
            checked += 1
        }
        for _ in 0..<20000 {
            let digits = Int(rng.next() % 7)
            let mag = [1.0, 1e-3, 1e3, 1e-6][Int(rng.next() % 4)]
            check(rng.uniform(-2000, 2000) * mag, digits)
        }
        // Exact ties: x * 10^digits = k + 1/2 exactly, i.e. x = odd / 2^(digits+1).
        for _ in 0..<5000 {
            let digits = Int(rng.next() % 7)
            let odd = Double(2 * Int(rng.next() % 400_000) + 1) * (rng.next() & 1 == 0 ? 1 : -1)
            let x = odd / Double(1 << (digits + 1))
            if (abs(x) * pow(10, Double(digits))).truncatingRemainder(dividingBy: 1) == 0.5 { ties += 1 }
            check(x, digits)
        }
        XCTAssertGreaterThan(ties, 4000, "the tie cases are ties")
        // Values one ulp either side of a tie, and the cases found in review.
        for x in [0.015625, 0.0156250000000001, 0.0156249999999999, -0.015625, 0.5, 1.5, 2.5, -2.5,
                  0.125, 0.375, 1e-320, -1e-9, 0, -0.0, 40.025, 0.18125, 123456.789, 9.9999995, 1e12] {
            for d in 0...6 { check(x, d); check(x.nextUp, d); check(x.nextDown, d) }
        }
        XCTAssertEqual(fixedString(0.015625, 5), "0.01562")
        XCTAssertEqual(fixedString(0.046875, 5), "0.04688")
        XCTAssertEqual(fixedString(-0.00001, 3), "0.000")
        XCTAssertEqual(fixedString(.nan, 3), "null")
        XCTAssertEqual(fixedString(-.infinity, 1), "null")
        XCTAssertGreaterThan(checked, 25000)
    }

    /// A published line is valid JSON with the documented fields, in order.
    func testLineSchema() throws {
        var u = Update(t: 1.25, sampleIndex: 20000, delaySamples: 3, delayMs: 0.1875, azimuthDeg: 40.025,
                       confidence: 0.9, votes: 145, levelDb: -23.44, method: "gcc-phat", post: .mode,
                       flags: [.holding, .gated], smoothedDelaySamples: 2.9, smoothedAzimuthDeg: 38.6,
                       smoothedConfidence: 0.85)
        let line = liveLine(u, seq: 7, sampleRate: 16000)
        // delay_ms: 2.9 / 16000 * 1000 is 0.18124999999999999 in binary, so 0.1812 (as printf
        // and `tded analyze` print it; the old live formatter said 0.1813).
        XCTAssertEqual(line, "{\"v\":1,\"t\":1.250,\"delay_ms\":0.1812,\"azimuth_deg\":38.60,\"confidence\":0.850,\"level_db\":-23.4,\"method\":\"gcc-phat\",\"seq\":7,\"raw_delay_ms\":0.18750,\"raw_azimuth_deg\":40.025,\"votes\":145,\"flags\":[\"holding\",\"gated\"]}")
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["v"] as? Int, 1)
        u.flags = []
        XCTAssertTrue(liveLine(u, seq: 8, sampleRate: 16000).hasSuffix("\"flags\":[]}"))
    }
}

/// Seeded generator (SplitMix64) so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
}

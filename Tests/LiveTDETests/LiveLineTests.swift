import Engine
import Foundation
import XCTest
@testable import LiveTDE

final class LiveLineTests: XCTestCase {
    /// The allocation-lean fixed-point formatter agrees with printf on random values.
    func testAppendFixedMatchesPrintf() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20000 {
            let digits = Int.random(in: 0...5, using: &rng)
            let x = Double.random(in: -2000...2000, using: &rng) * (Bool.random(using: &rng) ? 1 : 1e-3)
            var s = ""
            appendFixed(&s, x, digits)
            var ref = String(format: "%.\(digits)f", x)
            if ref.hasPrefix("-") && Double(ref) == 0 { ref.removeFirst() } // we print 0, not -0
            if s != ref {
                // only an exact-tie rounding difference in the last digit is acceptable
                XCTAssertEqual(Double(s)!, Double(ref)!, accuracy: 1.0001 / pow(10, Double(digits)), "\(x) @\(digits)")
            }
        }
        var s = ""; appendFixed(&s, .nan, 3); XCTAssertEqual(s, "null")
    }

    /// A published line is valid JSON with the documented fields, in order.
    func testLineSchema() throws {
        var u = Update(t: 1.25, sampleIndex: 20000, delaySamples: 3, delayMs: 0.1875, azimuthDeg: 40.025,
                       confidence: 0.9, votes: 145, levelDb: -23.44, method: "gcc-phat", post: .mode,
                       flags: [.holding, .gated], smoothedDelaySamples: 2.9, smoothedAzimuthDeg: 38.6,
                       smoothedConfidence: 0.85)
        let line = liveLine(u, seq: 7, sampleRate: 16000)
        XCTAssertEqual(line, "{\"v\":1,\"t\":1.250,\"delay_ms\":0.1813,\"azimuth_deg\":38.60,\"confidence\":0.850,\"level_db\":-23.4,\"method\":\"gcc-phat\",\"seq\":7,\"raw_delay_ms\":0.18750,\"raw_azimuth_deg\":40.025,\"votes\":145,\"flags\":[\"holding\",\"gated\"]}")
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["v"] as? Int, 1)
        u.flags = []
        XCTAssertTrue(liveLine(u, seq: 8, sampleRate: 16000).hasSuffix("\"flags\":[]}"))
    }
}

import XCTest
import EngineTestSupport
@testable import Engine

final class STFTColumnsTests: XCTestCase {
    /// Reference: periodic-Hann-windowed frame, direct DFT in Double, bins 0..<128.
    private func referenceColumn(_ x: [Float], at t: Int) -> (re: [Double], im: [Double]) {
        let n = 256
        var re = [Double](repeating: 0, count: 128), im = re
        for k in 0..<128 {
            var a = 0.0, b = 0.0
            for j in 0..<n {
                let w = 0.5 - 0.5 * cos(2 * Double.pi * Double(j) / Double(n))
                let v = Double(x[t + j]) * w
                let ph = -2 * Double.pi * Double(k * j) / Double(n)
                a += v * cos(ph); b += v * sin(ph)
            }
            re[k] = a; im[k] = b
        }
        return (re, im)
    }

    func testCachedColumnEqualsFreshDFT() {
        let x = TestSignals.source(.white, count: 1200, seed: 3).map { Float($0) }
        let cols = STFTColumns(capacity: 2000)
        cols.push(x)
        XCTAssertEqual(cols.completeEnd, Int64(1200 - 256 + 1))
        for t in [0, 1, 7, 100, 511, 944] {
            XCTAssertTrue(cols.hasColumn(at: Int64(t)))
            let ref = referenceColumn(x, at: t)
            let re = cols.real(at: Int64(t)), im = cols.imag(at: Int64(t))
            var maxErr = 0.0, maxMag = 0.0
            for k in 0..<128 {
                maxErr = max(maxErr, abs(Double(re[k]) - ref.re[k]), abs(Double(im[k]) - ref.im[k]))
                maxMag = max(maxMag, abs(ref.re[k]), abs(ref.im[k]))
            }
            XCTAssertLessThan(maxErr, 1e-5 * maxMag + 1e-5, "column \(t)")
        }
        XCTAssertFalse(cols.hasColumn(at: 945))
    }

    func testBlockSizesAndStridePhase() {
        let x = TestSignals.source(.chirp, count: 3000).map { Float($0) }
        let a = STFTColumns(capacity: 400, stride: 8, phase: 3)
        a.push(x)
        let b = STFTColumns(capacity: 400, stride: 8, phase: 3)
        feedInBlocks(x, sizes: [1, 7, 300, 13, 1024, 2]) { b.push($0) }
        XCTAssertEqual(a.columnsComputed, b.columnsComputed)
        XCTAssertFalse(a.hasColumn(at: 8))     // not on the lattice
        var checked = 0
        var t = a.oldestCached
        while t < a.completeEnd {
            XCTAssertTrue(a.hasColumn(at: t) && b.hasColumn(at: t))
            XCTAssertEqual(t % 8, 3)
            for k in 0..<128 {
                XCTAssertEqual(a.real(at: t)[k], b.real(at: t)[k])
                XCTAssertEqual(a.imag(at: t)[k], b.imag(at: t)[k])
            }
            checked += 1; t += 8
        }
        XCTAssertEqual(checked, 343)   // (3000-256-3)/8 + 1 = 343 columns, all still cached
        let ref = referenceColumn(x, at: 2739)
        XCTAssertEqual(Double(a.real(at: 2739)[5]), ref.re[5], accuracy: 1e-3)
    }

    func testCacheEvictsOldest() {
        let x = TestSignals.source(.white, count: 600).map { Float($0) }
        let c = STFTColumns(capacity: 10)
        c.push(x)
        XCTAssertEqual(c.oldestCached, Int64(600 - 256 + 1 - 10))
        XCTAssertFalse(c.hasColumn(at: c.oldestCached - 1))
        XCTAssertTrue(c.hasColumn(at: c.oldestCached))
        c.reset()
        XCTAssertEqual(c.samplesPushed, 0)
        XCTAssertFalse(c.hasColumn(at: 0))
    }
}

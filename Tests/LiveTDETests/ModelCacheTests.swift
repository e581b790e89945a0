import Engine
import Foundation
import XCTest
@testable import LiveTDE

/// `ModelLoader.loadGccMask(path:)` reads a pooling-model file once per process (so `tded
/// analyze` on many clips does not re-read and re-checksum it per file) but never serves a
/// replaced, edited or corrupted file from memory.
final class ModelCacheTests: XCTestCase {
    static var shippedSet: String {
        NonFiniteTests.repoRoot.appendingPathComponent(ModelLoader.gccMaskRelativePath).path
    }

    func copy(to dir: String, _ bytes: [UInt8]) throws -> String {
        let p = dir + "/set.safetensors"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func testSameFileIsReadOnceAndAChangedOneAfresh() throws {
        let dir = "/tmp/tded-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.shippedSet)))
        let p = try copy(to: dir, good)

        let a = try ModelLoader.loadGccMask(path: p)
        let b = try ModelLoader.loadGccMask(path: p)
        XCTAssertGreaterThan(a.count, 1, "the shipped file is a model set")
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) { XCTAssertTrue(x === y, "an unchanged file was read again") }

        // The same path, rewritten with one flipped bit in the tensor data: refused, not served
        // from memory (a new inode and modification time).
        try FileManager.default.removeItem(atPath: p)
        var bad = good
        bad[bad.count - 5] ^= 0x10
        _ = try copy(to: dir, bad)
        XCTAssertThrowsError(try ModelLoader.loadGccMask(path: p)) {
            XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)")
        }
        // Rewritten in place with the good bytes again: read afresh (new objects, same weights).
        _ = try copy(to: dir, good)
        var t = [timespec(tv_sec: 2_000_000_000, tv_nsec: 1), timespec(tv_sec: 2_000_000_000, tv_nsec: 1)]
        XCTAssertEqual(utimensat(AT_FDCWD, p, &t, 0), 0)
        let c = try ModelLoader.loadGccMask(path: p)
        XCTAssertEqual(c.count, a.count)
        for (x, y) in zip(a, c) {
            XCTAssertFalse(x === y, "a rewritten file was served from memory")
            XCTAssertEqual(x.minSpan, y.minSpan)
            XCTAssertEqual(x.mask.map(\.weight), y.mask.map(\.weight), "same bytes, same networks")
            XCTAssertEqual(x.head.map(\.weight), y.head.map(\.weight))
        }
        // A file that failed is not cached either: the next load reads it again.
        XCTAssertThrowsError(try ModelLoader.loadGccMask(path: dir + "/missing.safetensors"))
    }
}

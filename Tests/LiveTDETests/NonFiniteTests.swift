import Engine
import Foundation
import XCTest
@testable import LiveTDE

/// Issue 13 item 6: the non-finite policy (docs/protocol.md, "Non-finite values").
final class NonFiniteTests: XCTestCase {
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var shippedModel: String { repoRoot.appendingPathComponent("models/tded-stream-v1.safetensors").path }

    func makeDir() -> String {
        let d = "/tmp/tded-nf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// (header JSON object, data bytes) of a safetensors file.
    func split(_ b: [UInt8]) throws -> ([String: Any], [UInt8]) {
        var n = 0
        for i in 0..<8 { n |= Int(b[i]) << (8 * i) }
        let h = try JSONSerialization.jsonObject(with: Data(b[8..<(8 + n)])) as! [String: Any]
        return (h, Array(b[(8 + n)...]))
    }

    func join(_ h: [String: Any], _ data: [UInt8]) throws -> [UInt8] {
        var hb = [UInt8](try JSONSerialization.data(withJSONObject: h))
        while hb.count % 8 != 0 { hb.append(0x20) }
        var out = [UInt8]()
        for i in 0..<8 { out.append(UInt8((hb.count >> (8 * i)) & 0xFF)) }
        return out + hb + data
    }

    /// The shipped model with `mutate` applied to its tensor data; the checksum recomputed
    /// (`restamp`), left stale, or removed.
    func variant(_ dir: String, _ name: String, restamp: Bool = true, removeChecksum: Bool = false,
                 _ mutate: (inout [UInt8], SafetensorsFile) -> Void) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.shippedModel)))
        let file = try SafetensorsFile(bytes: bytes)
        var (h, data) = try split(bytes)
        mutate(&data, file)
        var meta = h["__metadata__"] as! [String: String]
        if removeChecksum { meta.removeValue(forKey: ModelLoader.checksumKey) } else if restamp { meta[ModelLoader.checksumKey] = SHA256.hex(data) }
        h["__metadata__"] = meta
        let p = dir + "/" + name
        try Data(try join(h, data)).write(to: URL(fileURLWithPath: p))
        return p
    }

    func learned(_ path: String) -> EstimatorOptions {
        var o = EstimatorOptions()
        o.method = .learned; o.modelPath = path
        return o
    }

    func testShippedModelCarriesAValidChecksum() throws {
        let f = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.shippedModel))))
        XCTAssertNotNil(f.metadata[ModelLoader.checksumKey], "re-run python3 -m tded_train.export --add-checksum on the shipped model")
        XCTAssertNoThrow(try ModelLoader.load(path: Self.shippedModel))
    }

    /// One flipped bit anywhere in the tensor data refuses the model (it used to load and give
    /// confident wrong answers).
    func testBitFlipInTensorDataIsRefused() throws {
        let dir = makeDir()
        for (k, offset) in [0, 4097, 500_001].enumerated() {
            let p = try variant(dir, "flip\(k).safetensors", restamp: false) { data, _ in data[offset % data.count] ^= 0x10 }
            XCTAssertThrowsError(try ModelLoader.load(path: p)) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
            XCTAssertThrowsError(try EstimatorFactory.make(learned(p))) { XCTAssertTrue("\($0)".contains("corrupted"), "\($0)") }
        }
    }

    /// No checksum field: loads, with one warning (older exports).
    func testModelWithoutChecksumLoadsWithAWarning() throws {
        let p = try variant(makeDir(), "old.safetensors", removeChecksum: true) { _, _ in }
        var warnings: [String] = []
        let saved = ModelLoader.warn
        ModelLoader.warn = { warnings.append($0) }
        defer { ModelLoader.warn = saved }
        XCTAssertNoThrow(try ModelLoader.load(path: p))
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains("no tded_data_sha256") ?? false, "\(warnings)")
    }

    /// Huge finite weights (with a valid checksum) overflow the encoder: refused at load by the
    /// probe instead of publishing a constant (or `null`) delay on every line.
    func testModelWithOverflowingOutputsIsRefusedAtLoad() throws {
        let p = try variant(makeDir(), "huge.safetensors") { data, file in
            // every weight of every layer x 1e30 (finite as stored, overflowing once multiplied)
            var n = 0
            for i in 0..<8 { n |= Int(file.bytes[i]) << (8 * i) }
            let base = 8 + n
            for (name, t) in file.tensors where name.hasSuffix(".weight") {
                for o in stride(from: t.byteRange.lowerBound - base, to: t.byteRange.upperBound - base, by: 4) {
                    var bits: UInt32 = 0
                    for j in 0..<4 { bits |= UInt32(data[o + j]) << (8 * UInt32(j)) }
                    let x = Float(bitPattern: bits) * 1e30
                    let nb = (x.isFinite ? x : 3e38).bitPattern
                    for j in 0..<4 { data[o + j] = UInt8((nb >> (8 * UInt32(j))) & 0xFF) }
                }
            }
        }
        // Without the probe this model publishes non-finite delays:
        let m = try ModelLoader.load(path: p)
        let est = try LearnedEstimator(model: m, options: .init(voteStride: 64, maxDelay: 24))
        var x = [Float](repeating: 0, count: 4000)
        for i in x.indices { x[i] = Float(sin(Double(i) * 0.37) * 0.1 + sin(Double(i) * 1.91) * 0.05) }
        let votes = est.processAll(left: x, right: x)
        XCTAssertFalse(votes.isEmpty)
        // (its embeddings overflow and normalise to 0: every vote says 0 whatever the input)
        XCTAssertTrue(votes.allSatisfy { $0.delay == 0 } || votes.contains { !$0.delay.isFinite },
                      "this model no longer breaks: \(votes.prefix(3))")
        XCTAssertNoThrow(try ModelLoader.load(path: p), "container and checksum are fine")
        XCTAssertThrowsError(try EstimatorFactory.make(learned(p))) { XCTAssertTrue("\($0)".contains("unusable"), "\($0)") }
    }

    /// The sanitizer: NaN/Inf -> 0, |x| > 1 -> +-1, counted, and only the updates whose span
    /// holds a cleaned sample are flagged.
    func testSanitizerCleansCountsAndFlagsBySpan() {
        let s = InputSanitizer()
        var l = [Float](repeating: 0.1, count: 1000), r = l
        l[10] = .nan; r[20] = .infinity; l[500] = 3e38; r[501] = -5
        l.withUnsafeMutableBufferPointer { lp in r.withUnsafeMutableBufferPointer { rp in
            s.clean(lp.baseAddress!, rp.baseAddress!, count: 1000, position: 0)
        } }
        XCTAssertEqual(l[10], 0); XCTAssertEqual(r[20], 0); XCTAssertEqual(l[500], 1); XCTAssertEqual(r[501], -1)
        XCTAssertEqual(s.nonfiniteSamples, 2); XCTAssertEqual(s.clippedSamples, 2)
        func upd(_ at: Int64) -> Update {
            Update(t: 0, sampleIndex: at, delaySamples: 0, delayMs: 0, azimuthDeg: 0, confidence: 1, votes: 1, levelDb: -20,
                   method: "x", post: .mode, flags: [], smoothedDelaySamples: 0, smoothedAzimuthDeg: 0, smoothedConfidence: 1)
        }
        XCTAssertEqual(s.flag(upd(100), span: 100).flags, [.nonfiniteInput])      // [0, 100)
        XCTAssertEqual(s.flag(upd(600), span: 100).flags, [.clippedInput])        // [500, 600)
        XCTAssertEqual(s.flag(upd(1000), span: 100).flags, [])                    // [900, 1000)
        let fresh = InputSanitizer()   // nothing cleaned yet: an early update (span before 0) is clean
        XCTAssertEqual(fresh.flag(upd(50), span: 1600).flags, [])
        // the next block: positions before it are still found
        var l2 = [Float](repeating: 0, count: 100), r2 = l2
        l2.withUnsafeMutableBufferPointer { lp in r2.withUnsafeMutableBufferPointer { rp in
            s.clean(lp.baseAddress!, rp.baseAddress!, count: 100, position: 1000)
        } }
        XCTAssertEqual(s.flag(upd(1100), span: 700).flags, [.clippedInput])       // [400, 1100)
        XCTAssertEqual(s.flag(upd(1100), span: 1100).flags, [.nonfiniteInput, .clippedInput])
    }

    /// Non-finite estimates never reach a line as `null`.
    func testSanitizedUpdateHasOnlyNumbers() {
        let u = Update(t: 1, sampleIndex: 16000, delaySamples: .nan, delayMs: .nan, azimuthDeg: .nan, confidence: .nan,
                       votes: 3, levelDb: .infinity, method: "learned", post: .mode, flags: [],
                       smoothedDelaySamples: .nan, smoothedAzimuthDeg: .nan, smoothedConfidence: 1)
        let line = liveLine(u.sanitized, seq: 1, sampleRate: 16000)
        XCTAssertFalse(line.contains("null"), line)
        XCTAssertTrue(line.contains("invalid_estimate"), line)
        let a = Analyzer.jsonLine(file: "f", u)
        XCTAssertFalse(a.contains("null"), a)
    }
}

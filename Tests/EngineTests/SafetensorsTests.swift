// Safetensors reader and model validation: valid files parse exactly; truncated, oversized,
// lying and malformed files are rejected with a clear one-line error (never a trap).
import XCTest
@testable import Engine

/// Builds safetensors bytes from (name, shape, values) with an optional metadata map; the
/// header JSON can be replaced wholesale to produce lying files.
func makeSafetensors(_ tensors: [(String, [Int], [Float])], metadata: [String: String]? = nil,
                     headerJSON: String? = nil) -> [UInt8] {
    var entries: [String] = []
    if let m = metadata {
        let data = try! JSONSerialization.data(withJSONObject: m, options: [.sortedKeys])
        entries.append("\"__metadata__\":" + String(decoding: data, as: UTF8.self))
    }
    var payload: [UInt8] = []
    for (name, shape, values) in tensors {
        let b = payload.count
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { payload += $0 } }
        entries.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[\(b),\(payload.count)]}")
    }
    let header = Array((headerJSON ?? "{" + entries.joined(separator: ",") + "}").utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    return out + header + payload
}

/// A model header JSON (spec "Export format") for the given layers.
func modelHeader(layers: [(inC: Int, outC: Int, k: Int, d: Int, act: String)], window: Int = 1024,
                 format: String = "tded-stream-encoder", version: Int = 1, nFFT: Int = 256) -> String {
    let ls = layers.map { "{\"in\":\($0.inC),\"out\":\($0.outC),\"kernel\":\($0.k),\"dilation\":\($0.d),\"activation\":\"\($0.act)\"}" }
    return "{\"format\":\"\(format)\",\"version\":\(version),\"sample_rate\":16000,\"n_fft\":\(nFFT),\"hop\":8,"
        + "\"window\":\(window),\"tau\":0.05,\"max_delay\":24,\"phat_beta\":0.5,\"column_norm\":true,"
        + "\"layers\":[\(ls.joined(separator: ","))],\"embedding_dim\":\(layers.last?.outC ?? 0),"
        + "\"objective\":\"none\",\"training\":{\"note\":\"test\"}}"
}

/// Seeded weights for the layers, as safetensors tensors.
func modelTensors(_ layers: [(inC: Int, outC: Int, k: Int, d: Int, act: String)], seed: UInt64 = 3)
    -> [(String, [Int], [Float])] {
    var rng = SeededRNG(seed: seed)
    var out: [(String, [Int], [Float])] = []
    for (i, l) in layers.enumerated() {
        let s = 1 / Float(l.inC * l.k).squareRoot()
        out.append(("layers.\(i).weight", [l.outC, l.inC, l.k],
                    (0..<(l.outC * l.inC * l.k)).map { _ in Float(rng.gaussian()) * s }))
        out.append(("layers.\(i).bias", [l.outC], (0..<l.outC).map { _ in Float(rng.gaussian()) * 0.1 }))
    }
    return out
}

let smallLayers: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] =
    [(256, 24, 1, 8, "relu"), (24, 24, 3, 16, "relu"), (24, 16, 1, 8, "none")]

final class SafetensorsTests: XCTestCase {
    func assertThrows<E: Error & CustomStringConvertible>(_ type: E.Type, _ expr: @autoclosure () throws -> Any,
                                                          contains needle: String,
                                                          file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try expr()
            XCTFail("expected an error containing '\(needle)'", file: file, line: line)
        } catch let e as E {
            let s = e.description
            XCTAssertTrue(s.contains(needle), "error '\(s)' does not mention '\(needle)'", file: file, line: line)
            XCTAssertFalse(s.contains("\n"), "error is not one line: \(s)", file: file, line: line)
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
    }

    func testRoundTrip() throws {
        let a: [Float] = [1, -2.5, .pi, 0, 1e-30, -7]
        let b: [Float] = [42]
        let f = try SafetensorsFile(bytes: makeSafetensors([("a", [2, 3], a), ("b", [1], b), ("e", [0, 4], [])],
                                                           metadata: ["k": "v"]))
        XCTAssertEqual(f.metadata, ["k": "v"])
        XCTAssertEqual(try f.floats("a"), a)
        XCTAssertEqual(try f.floats("b"), b)
        XCTAssertEqual(try f.floats("e"), [])
        XCTAssertEqual(f.tensors["a"]?.shape, [2, 3])
        assertThrows(SafetensorsError.self, try f.floats("zz"), contains: "no tensor named 'zz'")
    }

    func testTruncatedAndBadHeaderLength() {
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: []), contains: "too short")
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: [1, 0, 0]), contains: "too short")
        // Declared header longer than the file.
        var f = makeSafetensors([("a", [2], [1, 2])])
        f[0] = 0xff; f[1] = 0x7f
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: f), contains: "header length")
        // Absurd header length (would overflow a naive 8 + n).
        var g = makeSafetensors([("a", [2], [1, 2])])
        for i in 0..<8 { g[i] = 0xff }
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: g), contains: "header length")
        // Header length zero.
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 1, 2]),
                     contains: "header length")
    }

    func testEveryTruncationOfARealModelIsRejected() throws {
        let full = try EncoderFixture.bytes(EncoderFixture.fixtureURL("tiny.safetensors"))
        XCTAssertNoThrow(try EncoderModel(safetensorsBytes: full))
        var n = 0
        let cuts = Array(0..<200) + stride(from: 200, to: full.count, by: 997).map { $0 } + [full.count - 1]
        for cut in cuts {
            XCTAssertThrowsError(try EncoderModel(safetensorsBytes: Array(full[0..<cut])), "cut at \(cut)") { e in
                XCTAssertTrue(e is EncoderModelError)
            }
            n += 1
        }
        XCTAssertGreaterThan(n, 200)
    }

    func testGarbageHeaders() {
        for (json, needle) in [("{not json", "header is not valid"), ("[1,2,3]", "does not start with '{'"),
                               ("{\"a\":5}", "header is not valid"),
                               ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "data_offsets"),
                               ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "header is not valid"),
                               ("{\"__metadata__\":{\"x\":1}}", "header is not valid"),
                               ("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unknown dtype"),
                               ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "negative dimension"),
                               ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", "2 entries"),
                               ("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", "too large")] {
            let bytes = makeSafetensors([], headerJSON: json) + [0, 0, 0, 0]
            assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: bytes), contains: needle)
        }
        // Not UTF-8 at all.
        var b = makeSafetensors([], headerJSON: "{\"a\":1}")
        b[9] = 0xff; b[10] = 0xfe
        XCTAssertThrowsError(try SafetensorsFile(bytes: b))
    }

    func testLyingOffsets() {
        let four: [UInt8] = [0, 0, 128, 63]
        let cases: [(String, String)] = [
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "outside the 4-byte data section"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", "outside"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "outside"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8 bytes but data_offsets span 4"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}", "outside"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "overlap"),
        ]
        for (json, needle) in cases {
            assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: makeSafetensors([], headerJSON: json) + four),
                         contains: needle)
        }
        let f16 = makeSafetensors([], headerJSON: "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}") + four
        XCTAssertNoThrow(try SafetensorsFile(bytes: f16))
        assertThrows(SafetensorsError.self, try SafetensorsFile(bytes: f16).floats("h"), contains: "dtype F16, expected F32")
    }

    /// Random byte corruption of a real model: every outcome is a parse or a thrown error.
    func testRandomCorruptionNeverTraps() throws {
        let full = try EncoderFixture.bytes(EncoderFixture.fixtureURL("tiny.safetensors"))
        let headerEnd = 8 + Int(full[0]) + Int(full[1]) << 8 + Int(full[2]) << 16
        var rng = SeededRNG(seed: 99)
        var rejected = 0
        for _ in 0..<300 {
            var b = full
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(headerEnd))
                b[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            do { _ = try EncoderModel(safetensorsBytes: b) } catch { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 100, "most header corruptions must be detected")
    }

    // MARK: model validation

    func testValidSmallModelLoads() throws {
        let bytes = makeSafetensors(modelTensors(smallLayers), metadata: ["tded_model": modelHeader(layers: smallLayers)])
        let m = try EncoderModel(safetensorsBytes: bytes)
        XCTAssertEqual(m.layers.count, 3)
        XCTAssertEqual(m.receptiveField, 32)
        XCTAssertEqual(m.poolCount, (1024 - 256 - 32) / 8 + 1)
        XCTAssertEqual(m.embeddingDim, 16)
        XCTAssertEqual(m.phatBeta, 0.5)
        let w = modelTensors(smallLayers)[2].2  // layers.1.weight
        XCTAssertEqual(m.layers[1].weight, w)
    }

    func testModelRejections() {
        let good = modelTensors(smallLayers)
        let header = modelHeader(layers: smallLayers)
        func load(_ t: [(String, [Int], [Float])], _ meta: [String: String]?) throws -> EncoderModel {
            try EncoderModel(safetensorsBytes: makeSafetensors(t, metadata: meta))
        }
        assertThrows(EncoderModelError.self, try load(good, nil), contains: "no '__metadata__.tded_model'")
        assertThrows(EncoderModelError.self, try load(good, ["other": "x"]), contains: "tded_model")
        assertThrows(EncoderModelError.self, try load(good, ["tded_model": "{garbage"]), contains: "malformed JSON")
        assertThrows(EncoderModelError.self, try load(good, ["tded_model": "{\"format\":\"tded-stream-encoder\"}"]),
                     contains: "missing key")
        assertThrows(EncoderModelError.self, try load(good, ["tded_model": modelHeader(layers: smallLayers, format: "onnx")]),
                     contains: "format 'onnx'")
        assertThrows(EncoderModelError.self, try load(good, ["tded_model": modelHeader(layers: smallLayers, version: 2)]),
                     contains: "version 2")
        // Wrong weight shape for what the header says.
        var wrongShape = good
        wrongShape[2] = ("layers.1.weight", [24, 24, 2], Array(good[2].2[0..<(24 * 24 * 2)]))
        assertThrows(EncoderModelError.self, try load(wrongShape, ["tded_model": header]),
                     contains: "'layers.1.weight' has shape [24, 24, 2], header says [24, 24, 3]")
        // Missing tensor.
        assertThrows(EncoderModelError.self, try load(Array(good.dropLast()), ["tded_model": header]),
                     contains: "missing tensor 'layers.2.bias'")
        // Extra tensor.
        assertThrows(EncoderModelError.self, try load(good + [("layers.3.weight", [1], [0])], ["tded_model": header]),
                     contains: "unexpected tensor 'layers.3.weight'")
        // Layer widths that do not chain (header and tensors consistent with each other).
        let broken: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(256, 24, 1, 8, "relu"), (20, 16, 1, 8, "none")]
        assertThrows(EncoderModelError.self, try load(modelTensors(broken), ["tded_model": modelHeader(layers: broken)]),
                     contains: "layer 1 has 20 inputs, expected 24")
        let firstWrong: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(128, 16, 1, 8, "none")]
        assertThrows(EncoderModelError.self, try load(modelTensors(firstWrong), ["tded_model": modelHeader(layers: firstWrong)]),
                     contains: "layer 0 has 128 inputs, expected 256")
        let badDil: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(256, 16, 2, 12, "none")]
        assertThrows(EncoderModelError.self, try load(modelTensors(badDil), ["tded_model": modelHeader(layers: badDil)]),
                     contains: "dilation 12 must be a positive multiple of hop 8")
        let badAct: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(256, 16, 1, 8, "gelu")]
        assertThrows(EncoderModelError.self, try load(modelTensors(badAct), ["tded_model": modelHeader(layers: badAct)]),
                     contains: "activation 'gelu'")
        let tooDeep: [(inC: Int, outC: Int, k: Int, d: Int, act: String)] = [(256, 8, 9, 128, "none")]
        assertThrows(EncoderModelError.self, try load(modelTensors(tooDeep), ["tded_model": modelHeader(layers: tooDeep)]),
                     contains: "receptive field 1024")
        // Consistent but absurd: the streaming state would need gigabytes.
        XCTAssertThrowsError(try EncoderModel(sampleRate: 16000, nFFT: 256, hop: 8, window: 1 << 20, tau: 0.05,
                                              maxDelay: 24, phatBeta: 0, columnNorm: false,
                                              layers: [EncoderLayer(inChannels: 256, outChannels: 128, kernel: 1,
                                                                    dilation: 8, activation: .none,
                                                                    weight: [Float](repeating: 0, count: 256 * 128),
                                                                    bias: [Float](repeating: 0, count: 128))])) { e in
            XCTAssertTrue("\(e)".contains("streaming state"), "\(e)")
        }
        var nanW = good
        nanW[1] = ("layers.0.bias", [24], [Float](repeating: .nan, count: 24))
        assertThrows(EncoderModelError.self, try load(nanW, ["tded_model": header]), contains: "non-finite")
    }
}

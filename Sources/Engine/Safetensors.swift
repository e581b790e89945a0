// Safetensors reader: a strict, bounds-checked parser over an in-memory byte buffer.
//
// Layout (https://github.com/huggingface/safetensors):
//   [0, 8)         little-endian UInt64 N = header length
//   [8, 8+N)       UTF-8 JSON object: { "__metadata__": {String: String}?,
//                                       name: {"dtype", "shape", "data_offsets": [begin, end]} }
//   [8+N, EOF)     tensor data; offsets are relative to 8+N
//
// Every number read from the file is checked before it is used: a truncated, oversized or lying
// file produces a `SafetensorsError`, never a trap or an out-of-bounds read.

import Foundation

/// Why a safetensors buffer was rejected. `description` is one line naming the problem.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// Fewer than 8 bytes: not even a header length.
    case truncatedHeaderLength(fileSize: Int)
    /// The header length is larger than the file or than the reader's limit.
    case badHeaderLength(declared: UInt64, available: Int, limit: Int)
    /// The header bytes are not a JSON object of the expected shape.
    case badHeaderJSON(String)
    /// A tensor entry is malformed (dtype, shape or offsets).
    case badTensor(name: String, reason: String)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(String, String)
    /// A tensor the caller asked for is not in the file.
    case missingTensor(String)
    /// A tensor exists but has a dtype the caller cannot use.
    case wrongDType(name: String, found: String, expected: String)

    public var description: String {
        switch self {
        case .truncatedHeaderLength(let n):
            return "safetensors: file is \(n) bytes, too short for the 8-byte header length"
        case .badHeaderLength(let declared, let available, let limit):
            return "safetensors: header length \(declared) is invalid (\(available) bytes follow "
                + "the length field, limit \(limit))"
        case .badHeaderJSON(let why):
            return "safetensors: header is not valid: \(why)"
        case .badTensor(let name, let reason):
            return "safetensors: tensor '\(name)': \(reason)"
        case .overlappingTensors(let a, let b):
            return "safetensors: tensors '\(a)' and '\(b)' overlap in the data section"
        case .missingTensor(let name):
            return "safetensors: no tensor named '\(name)'"
        case .wrongDType(let name, let found, let expected):
            return "safetensors: tensor '\(name)' has dtype \(found), expected \(expected)"
        }
    }
}

/// A parsed safetensors file: metadata, tensor directory, and the raw bytes.
public struct SafetensorsFile {
    /// Element types defined by the safetensors format.
    public enum DType: String, CaseIterable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
        case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
            case .i16, .u16, .f16, .bf16: return 2
            case .i32, .u32, .f32: return 4
            case .f64, .i64, .u64: return 8
            }
        }
    }

    /// One entry of the tensor directory. `byteRange` is absolute within the file's bytes.
    public struct TensorInfo: Equatable {
        /// Tensor name (header key).
        public let name: String
        /// Element type.
        public let dtype: DType
        /// Dimensions, outermost first (C order).
        public let shape: [Int]
        /// Bytes of the tensor within `SafetensorsFile.bytes` (validated to lie in the data section).
        public let byteRange: Range<Int>
        /// Number of elements (product of `shape`; 1 for a scalar).
        public var count: Int { shape.reduce(1, *) }
    }

    /// Largest header accepted (the reference implementation uses the same 100 MB limit).
    public static let maxHeaderLength = 100_000_000

    /// `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    /// Tensor directory by name.
    public let tensors: [String: TensorInfo]
    /// The whole file.
    public let bytes: [UInt8]

    /// Parses and validates `bytes`. Throws `SafetensorsError` on any inconsistency.
    public init(bytes: [UInt8]) throws {
        self.bytes = bytes
        guard bytes.count >= 8 else { throw SafetensorsError.truncatedHeaderLength(fileSize: bytes.count) }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        let available = bytes.count - 8
        guard n >= 2, n <= UInt64(Self.maxHeaderLength), n <= UInt64(available) else {
            throw SafetensorsError.badHeaderLength(declared: n, available: available,
                                                   limit: Self.maxHeaderLength)
        }
        let headerLen = Int(n)
        let dataStart = 8 + headerLen
        let dataSize = bytes.count - dataStart
        let headerBytes = bytes[8..<dataStart]
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw SafetensorsError.badHeaderJSON("does not start with '{'")
        }
        let raw: [String: HeaderEntry]
        do {
            raw = try JSONDecoder().decode(HeaderDict.self, from: Data(headerBytes)).entries
        } catch let e as SafetensorsError {
            throw e
        } catch let e as DecodingError {
            throw SafetensorsError.badHeaderJSON(Self.describe(e))
        } catch {
            throw SafetensorsError.badHeaderJSON("\(error)")
        }

        var meta: [String: String] = [:]
        var dir: [String: TensorInfo] = [:]
        for (name, entry) in raw {
            switch entry {
            case .metadata(let m):
                meta = m
            case .tensor(let t):
                guard let dtype = DType(rawValue: t.dtype) else {
                    throw SafetensorsError.badTensor(name: name, reason: "unknown dtype '\(t.dtype)'")
                }
                var count = 1
                for d in t.shape {
                    guard d >= 0 else {
                        throw SafetensorsError.badTensor(name: name, reason: "negative dimension \(d)")
                    }
                    let (p, o) = count.multipliedReportingOverflow(by: d)
                    guard !o, p <= Int(Int32.max) * 64 else {
                        throw SafetensorsError.badTensor(name: name, reason: "shape \(t.shape) is too large")
                    }
                    count = p
                }
                guard t.data_offsets.count == 2 else {
                    throw SafetensorsError.badTensor(name: name, reason: "data_offsets must have 2 entries")
                }
                let b = t.data_offsets[0], e = t.data_offsets[1]
                guard b >= 0, e >= b, e <= dataSize else {
                    throw SafetensorsError.badTensor(
                        name: name, reason: "data_offsets [\(b), \(e)] outside the \(dataSize)-byte data section")
                }
                guard e - b == count * dtype.size else {
                    throw SafetensorsError.badTensor(
                        name: name, reason: "shape \(t.shape) x \(dtype.rawValue) needs \(count * dtype.size) "
                            + "bytes but data_offsets span \(e - b)")
                }
                dir[name] = TensorInfo(name: name, dtype: dtype, shape: t.shape,
                                       byteRange: (dataStart + b)..<(dataStart + e))
            }
        }
        // No two tensors may share bytes.
        let sorted = dir.values.filter { !$0.byteRange.isEmpty }
            .sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        if sorted.count > 1 {
            for i in 1..<sorted.count where sorted[i].byteRange.lowerBound < sorted[i - 1].byteRange.upperBound {
                throw SafetensorsError.overlappingTensors(sorted[i - 1].name, sorted[i].name)
            }
        }
        self.metadata = meta
        self.tensors = dir
    }

    /// The tensor `name` as Float values (C order). Only F32 is accepted.
    public func floats(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw SafetensorsError.missingTensor(name) }
        guard info.dtype == .f32 else {
            throw SafetensorsError.wrongDType(name: name, found: info.dtype.rawValue, expected: "F32")
        }
        let n = info.count
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: info.byteRange.lowerBound)
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let bits = base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                    dst[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
        }
        return out
    }

    private static func describe(_ e: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at '\(p)'"
        }
        switch e {
        case .dataCorrupted(let c): return "malformed JSON\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let k, let c): return "missing key '\(k.stringValue)'\(path(c))"
        case .typeMismatch(_, let c): return "wrong type\(path(c)): \(c.debugDescription)"
        case .valueNotFound(_, let c): return "missing value\(path(c))"
        @unknown default: return "\(e)"
        }
    }
}

// MARK: - Header decoding

private struct RawTensor: Decodable {
    let dtype: String
    let shape: [Int]
    let data_offsets: [Int]
}

private enum HeaderEntry {
    case metadata([String: String])
    case tensor(RawTensor)
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

private struct HeaderDict: Decodable {
    let entries: [String: HeaderEntry]
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        var out: [String: HeaderEntry] = [:]
        for key in c.allKeys {
            if key.stringValue == "__metadata__" {
                out[key.stringValue] = .metadata(try c.decode([String: String].self, forKey: key))
            } else {
                out[key.stringValue] = .tensor(try c.decode(RawTensor.self, forKey: key))
            }
        }
        entries = out
    }
}

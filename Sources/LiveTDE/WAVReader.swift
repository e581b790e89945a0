// WAVReader.swift: RIFF/WAVE reader (PCM 8/16/24/32-bit, float32, WAVE_FORMAT_EXTENSIBLE) and
// a small writer (tests, tools).
import Foundation

/// A clear one-line WAV error (the message names the problem, not the file; callers prefix it).
public struct WAVError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Sample encodings the reader and writer support.
public enum WAVSampleFormat: String, CaseIterable, Sendable {
    case pcm8, pcm16, pcm24, pcm32, float32
    /// Bytes per sample.
    public var bytes: Int {
        switch self { case .pcm8: 1; case .pcm16: 2; case .pcm24: 3; case .pcm32, .float32: 4 }
    }
}

/// A decoded stereo pair (the two selected channels), as float samples in [-1, 1].
public struct StereoAudio: Sendable {
    public var sampleRate: Int
    public var left: [Float]
    public var right: [Float]
    /// Channels in the file and the encoding found.
    public var fileChannels: Int
    public var format: WAVSampleFormat
    public var frames: Int { left.count }
}

/// Reads WAV files into a stereo pair.
public enum WAVReader {
    /// Reads `path`. `channels` picks which two file channels are (left, right), 0-based;
    /// `nil` requires a 2-channel file. Throws `WAVError` with a one-line message.
    public static func read(path: String, channels: (Int, Int)? = nil) throws -> StereoAudio {
        do { try InputFiles.checkRegularFile(path) } catch let e as InputFileError {
            throw WAVError(e.description == "is a directory, not a file" ? "is a directory, not a WAV file" : e.description)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WAVError("cannot read file: \(InputFiles.describe(errno))")
        }
        return try decode([UInt8](data), channels: channels)
    }

    /// Decodes WAV bytes (see `read(path:channels:)`).
    public static func decode(_ b: [UInt8], channels: (Int, Int)? = nil) throws -> StereoAudio {
        let h = try parseHeader(size: b.count) { o, n in Array(b[o..<min(b.count, o + n)]) }
        let (li, ri) = try h.pick(channels)
        let frames = h.frames
        var left = [Float](repeating: 0, count: frames), right = left
        b.withUnsafeBufferPointer { p in
            left.withUnsafeMutableBufferPointer { l in
                right.withUnsafeMutableBufferPointer { r in
                    decodeFrames(p.baseAddress! + h.dataRange.lowerBound, frames: frames, header: h, li, ri,
                                 left: l.baseAddress!, right: r.baseAddress!)
                }
            }
        }
        return StereoAudio(sampleRate: h.rate, left: left, right: right, fileChannels: h.channels, format: h.format)
    }

    /// What the header of a WAV file says: encoding, channels, rate, frame size, and where the
    /// sample data lies.
    public struct Header: Equatable, Sendable {
        public var format: WAVSampleFormat
        public var channels: Int
        public var rate: Int
        /// Bytes per frame (all channels).
        public var align: Int
        /// Byte range of the data chunk's samples in the file.
        public var dataRange: Range<Int>
        /// Frames in the data chunk.
        public var frames: Int { dataRange.count / align }

        /// The (left, right) channel indices for `channels` (nil: the file must be stereo).
        public func pick(_ c: (Int, Int)?) throws -> (Int, Int) {
            if let c {
                guard c.0 != c.1 else { throw WAVError("--channels must name two different channels") }
                guard c.0 >= 0, c.1 >= 0, c.0 < channels, c.1 < channels else {
                    throw WAVError("file has \(channels) channel\(channels == 1 ? "" : "s"); cannot pick channels \(c.0),\(c.1) (0-based)")
                }
                return c
            }
            if channels == 1 { throw WAVError("1-channel (mono) file: a delay needs 2 channels") }
            if channels > 2 { throw WAVError("file has \(channels) channels; pick two with --channels L,R (0-based)") }
            return (0, 1)
        }
    }

    /// Parses and validates the header of a WAV file of `size` bytes; `read(offset, count)`
    /// returns up to `count` bytes at `offset` (whole bytes in memory, or `pread` on a file).
    public static func parseHeader(size total: Int, read: (Int, Int) throws -> [UInt8]) throws -> Header {
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
        func tag(_ b: [UInt8], _ o: Int) -> String { String(decoding: b[o..<o + 4], as: UTF8.self) }

        guard total >= 12 else { throw WAVError("truncated header: \(total) bytes, a WAV header needs at least 12") }
        let riff = try read(0, 12)
        guard riff.count == 12 else { throw WAVError("truncated header: could not read 12 bytes") }
        guard tag(riff, 0) == "RIFF" || tag(riff, 0) == "RF64", tag(riff, 8) == "WAVE" else {
            throw WAVError("not a WAV file (no RIFF/WAVE header)")
        }
        guard tag(riff, 0) == "RIFF" else { throw WAVError("RF64 WAV files are not supported") }
        var pos = 12
        var fmt: (code: Int, channels: Int, rate: Int, align: Int, bits: Int)? = nil
        var dataRange: Range<Int>? = nil
        while pos < total {
            guard pos + 8 <= total else {
                throw WAVError("truncated chunk header at byte \(pos)")
            }
            let ch = try read(pos, 8)
            guard ch.count == 8 else { throw WAVError("truncated chunk header at byte \(pos)") }
            let id = tag(ch, 0), size = u32(ch, 4)
            let body = pos + 8
            if id == "fmt " {
                guard size >= 16 else { throw WAVError("wrong chunk size: fmt chunk is \(size) bytes, needs at least 16") }
                guard body + size <= total else { throw WAVError("truncated header: fmt chunk claims \(size) bytes but only \(total - body) remain") }
                let f = try read(body, min(size, 40))
                guard f.count >= min(size, 40) else { throw WAVError("truncated header: fmt chunk") }
                var code = u16(f, 0)
                let chans = u16(f, 2), rate = u32(f, 4), align = u16(f, 12), bits = u16(f, 14)
                if code == 0xFFFE {
                    guard size >= 40 else { throw WAVError("wrong chunk size: WAVE_FORMAT_EXTENSIBLE fmt chunk is \(size) bytes, needs 40") }
                    code = u16(f, 24)   // first two bytes of the SubFormat GUID
                }
                fmt = (code, chans, rate, align, bits)
            } else if id == "data" {
                guard fmt != nil else { throw WAVError("data chunk before fmt chunk") }
                guard body + size <= total else {
                    throw WAVError("wrong chunk size: data chunk claims \(size) bytes but only \(total - body) remain (truncated file?)")
                }
                dataRange = body..<(body + size)
                break
            }
            pos = body + size + (size & 1)
        }
        guard let f = fmt else { throw WAVError("truncated header: no fmt chunk") }
        guard let dr = dataRange else { throw WAVError("no data chunk") }

        let format: WAVSampleFormat
        switch (f.code, f.bits) {
        case (1, 8): format = .pcm8
        case (1, 16): format = .pcm16
        case (1, 24): format = .pcm24
        case (1, 32): format = .pcm32
        case (3, 32): format = .float32
        default:
            throw WAVError("unsupported encoding: format code \(f.code) with \(f.bits) bits per sample (supported: PCM 8/16/24/32-bit, float32)")
        }
        guard f.rate > 0 else { throw WAVError("invalid sample rate 0 Hz in fmt chunk") }
        guard f.channels >= 1 else { throw WAVError("fmt chunk says 0 channels") }
        guard f.align == f.channels * format.bytes else {
            throw WAVError("wrong fmt chunk: block align \(f.align) != \(f.channels) channels x \(format.bytes) bytes")
        }
        guard dr.count > 0 else { throw WAVError("zero-length data: the data chunk is empty") }
        guard dr.count % f.align == 0 else {
            throw WAVError("wrong chunk size: data chunk size \(dr.count) is not a multiple of the frame size \(f.align)")
        }
        return Header(format: format, channels: f.channels, rate: f.rate, align: f.align, dataRange: dr)
    }

    /// Decodes `frames` frames at `p` (interleaved, `header.align` bytes each), channels `li`
    /// and `ri`, into `left` / `right`.
    public static func decodeFrames(_ p: UnsafePointer<UInt8>, frames: Int, header h: Header, _ li: Int, _ ri: Int,
                                    left: UnsafeMutablePointer<Float>, right: UnsafeMutablePointer<Float>) {
        let bytes = h.format.bytes
        for i in 0..<frames {
            let fr = p + i * h.align
            left[i] = sample(fr + li * bytes, h.format)
            right[i] = sample(fr + ri * bytes, h.format)
        }
    }

    @inline(__always)
    private static func sample(_ p: UnsafePointer<UInt8>, _ f: WAVSampleFormat) -> Float {
        switch f {
        case .pcm8: return (Float(p[0]) - 128) / 128
        case .pcm16: return Float(Int16(bitPattern: UInt16(p[0]) | UInt16(p[1]) << 8)) / 32768
        case .pcm24:
            let u = UInt32(p[0]) << 8 | UInt32(p[1]) << 16 | UInt32(p[2]) << 24
            return Float(Int32(bitPattern: u) >> 8) / 8_388_608
        case .pcm32:
            let u = UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
            return Float(Double(Int32(bitPattern: u)) / 2_147_483_648)
        case .float32:
            let u = UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
            return Float(bitPattern: u)
        }
    }
}

/// Writes WAV files (PCM or float32, any channel count; `extensible` writes
/// WAVE_FORMAT_EXTENSIBLE). Samples are clipped to [-1, 1] for PCM.
public enum WAVWriter {
    /// Encodes `channels` (equal lengths) as WAV bytes.
    public static func encode(channels: [[Float]], sampleRate: Int, format: WAVSampleFormat,
                              extensible: Bool = false) -> [UInt8] {
        let nc = channels.count, frames = channels.first?.count ?? 0
        let bps = format.bytes, align = nc * bps
        var out: [UInt8] = []
        func put16(_ v: Int) { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func put32(_ v: Int) { put16(v & 0xFFFF); put16((v >> 16) & 0xFFFF) }
        let code = format == .float32 ? 3 : 1
        let fmtSize = extensible ? 40 : 16
        out += Array("RIFF".utf8); put32(4 + 8 + fmtSize + 8 + frames * align + (frames * align & 1))
        out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(fmtSize)
        put16(extensible ? 0xFFFE : code); put16(nc); put32(sampleRate); put32(sampleRate * align)
        put16(align); put16(bps * 8)
        if extensible {
            put16(22); put16(bps * 8); put32(nc == 2 ? 3 : 0)
            put16(code); out += [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        out += Array("data".utf8); put32(frames * align)
        out.reserveCapacity(out.count + frames * align + 1)
        for i in 0..<frames {
            for c in 0..<nc {
                let x = channels[c][i]
                let v = Double(max(-1, min(1, x)))
                switch format {
                case .pcm8: out.append(UInt8(max(0, min(255, (v * 128 + 128).rounded()))))
                case .pcm16:
                    let s = Int(max(-32768, min(32767, (v * 32768).rounded())))
                    put16(s & 0xFFFF)
                case .pcm24:
                    let s = Int(max(-8_388_608, min(8_388_607, (v * 8_388_608).rounded())))
                    out += [UInt8(s & 0xFF), UInt8((s >> 8) & 0xFF), UInt8((s >> 16) & 0xFF)]
                case .pcm32:
                    let s = Int(max(-2_147_483_648, min(2_147_483_647, (v * 2_147_483_648).rounded())))
                    put32(s & 0xFFFF_FFFF)
                case .float32:
                    let u = Int(x.bitPattern); put32(u)
                }
            }
        }
        if out.count & 1 == 1 { out.append(0) }
        return out
    }

    /// Writes a WAV file; throws a one-line error if it can't.
    public static func write(path: String, channels: [[Float]], sampleRate: Int,
                             format: WAVSampleFormat = .pcm16, extensible: Bool = false) throws {
        let bytes = encode(channels: channels, sampleRate: sampleRate, format: format, extensible: extensible)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw WAVError("cannot write \(path)")
        }
    }
}

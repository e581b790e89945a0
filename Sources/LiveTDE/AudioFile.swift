// AudioFile.swift: reading recordings block by block through libsndfile (WAV, WAVE_FORMAT_EXTENSIBLE,
// RF64, W64, FLAC, Ogg/Vorbis, Opus, MP3, AIFF, CAF, ...), `-` for stdin, and AAC/M4A/3GP through
// an `ffmpeg` subprocess when it is installed. Memory is proportional to the block, not the file.
import CSndfile
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A recording open for sequential reading of a stereo pair (two of its channels).
public final class AudioFileStream {
    /// Sample rate in Hz, channels in the file, and frames (nil when unknown: a pipe).
    public let rate: Int
    public let channels: Int
    public let frames: Int?
    /// The container/encoding as libsndfile names it (e.g. "WAV (Microsoft) / Signed 16 bit PCM").
    public let formatName: String
    private let sf: OpaquePointer
    private let li: Int, ri: Int
    private var buf: UnsafeMutablePointer<Float>
    private var bufFrames = 0
    private var decoder: Process?

    /// What a phone recording in an MP4/3GP/AAC container needs, in one line.
    static func ffmpegMissing(_ path: String) -> String {
        "AAC/M4A/3GP audio needs ffmpeg to decode and ffmpeg is not installed (apt install ffmpeg); "
            + "or convert it: ffmpeg -i \(path) -f wav - | tded analyze -"
    }

    /// The one line for a mono file.
    static let monoMessage = "1-channel (mono) file: a delay needs 2 channels; record in stereo "
        + "(a phone recorder app with a stereo/2-channel setting, see docs/phone-recordings.md), "
        + "or pick two channels of a multichannel file with --channels L,R"

    /// Opens `path` (`-` = standard input). `channels` picks which two file channels are
    /// (left, right), 0-based; `nil` requires a 2-channel file. Throws `WAVError` with one line.
    public init(path: String, channels pick: (Int, Int)? = nil) throws {
        var info = SF_INFO()
        var handle: OpaquePointer?
        if path == "-" {
            handle = sf_open_fd(0, Int32(SFM_READ), &info, 0)
            guard handle != nil else { throw WAVError("standard input: \(AudioFileStream.openError())") }
        } else {
            do { try InputFiles.checkRegularFile(path) } catch let e as InputFileError {
                throw WAVError(e.description == "is a directory, not a file" ? "is a directory, not an audio file" : e.description)
            }
            if AudioFileStream.looksLikeMP4OrAAC(path) {
                (handle, decoder) = try AudioFileStream.openWithFFmpeg(path, &info)
            } else {
                handle = sf_open(path, Int32(SFM_READ), &info)
                guard handle != nil else { throw WAVError(AudioFileStream.openError()) }
            }
        }
        guard let h = handle else { throw WAVError("cannot open") }
        let fileRate = Int(info.samplerate), fileChannels = Int(info.channels)
        // Pipes report an unknown (huge) length.
        let known = info.seekable != 0 && info.frames >= 0 && info.frames < Int64(1) << 40
        let pair: (Int, Int)
        do {
            pair = try AudioFileStream.check(rate: fileRate, channels: fileChannels, pick: pick)
            if known && info.frames == 0 { throw WAVError("zero-length data: the file holds no audio frames") }
        } catch {
            sf_close(h)
            if let p = decoder { if p.isRunning { p.terminate() }; p.waitUntilExit() }
            throw error
        }
        sf = h
        rate = fileRate; channels = fileChannels
        frames = known ? Int(info.frames) : nil
        (li, ri) = pair
        formatName = AudioFileStream.describeFormat(info.format)
        buf = .allocate(capacity: 1)
    }

    /// The (left, right) channel indices for `pick` (nil: the file must be stereo).
    static func check(rate: Int, channels: Int, pick: (Int, Int)?) throws -> (Int, Int) {
        guard rate > 0 else { throw WAVError("invalid sample rate \(rate) Hz") }
        guard channels >= 1 else { throw WAVError("the file says 0 channels") }
        if let c = pick {
            guard c.0 != c.1 else { throw WAVError("--channels must name two different channels") }
            guard c.0 >= 0, c.1 >= 0, c.0 < channels, c.1 < channels else {
                throw WAVError("file has \(channels) channel\(channels == 1 ? "" : "s"); cannot pick channels \(c.0),\(c.1) (0-based)")
            }
            return c
        }
        if channels == 1 { throw WAVError(monoMessage) }
        if channels > 2 { throw WAVError("file has \(channels) channels; pick two with --channels L,R (0-based)") }
        return (0, 1)
    }

    /// libsndfile's names of the container and encoding.
    static func describeFormat(_ format: Int32) -> String {
        func name(_ f: Int32) -> String? {
            var fi = SF_FORMAT_INFO()
            fi.format = f
            guard sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &fi, Int32(MemoryLayout<SF_FORMAT_INFO>.size)) == 0,
                  let n = fi.name else { return nil }
            return String(cString: n)
        }
        let major = name(format & Int32(SF_FORMAT_TYPEMASK)) ?? "audio"
        return name(format & Int32(SF_FORMAT_SUBMASK)).map { major + " / " + $0 } ?? major
    }

    deinit { closeAll() }

    private func closeAll() {
        sf_close(sf)
        buf.deallocate()
        if let p = decoder, p.isRunning { p.terminate() }
        decoder?.waitUntilExit()
    }

    /// Reads up to `max` frames into `left` / `right` (each room for `max`); returns the count
    /// (0 at the end). Throws a one-line error on a decoding failure.
    public func read(max: Int, left: UnsafeMutablePointer<Float>, right: UnsafeMutablePointer<Float>) throws -> Int {
        guard max > 0 else { return 0 }
        if max > bufFrames {
            buf.deallocate()
            buf = .allocate(capacity: max * channels)
            bufFrames = max
        }
        let got = Int(sf_readf_float(sf, buf, sf_count_t(max)))
        if got <= 0 {
            let e = sf_error(sf)
            if e != 0 { throw WAVError("cannot decode: \(AudioFileStream.oneLine(String(cString: sf_strerror(sf))))") }
            if let p = decoder {
                p.waitUntilExit()
                if p.terminationStatus != 0 { throw WAVError("ffmpeg could not decode it (exit status \(p.terminationStatus))") }
            }
            return 0
        }
        let c = channels
        for i in 0..<got {
            left[i] = buf[i * c + li]
            right[i] = buf[i * c + ri]
        }
        return got
    }

    /// Reads everything into arrays (for `--input`, which replays from memory).
    public func readAll(block: Int = 65536) throws -> (left: [Float], right: [Float]) {
        var l: [Float] = [], r: [Float] = []
        if let f = frames { l.reserveCapacity(f); r.reserveCapacity(f) }
        let bl = UnsafeMutablePointer<Float>.allocate(capacity: block), br = UnsafeMutablePointer<Float>.allocate(capacity: block)
        defer { bl.deallocate(); br.deallocate() }
        while true {
            let n = try read(max: block, left: bl, right: br)
            if n == 0 { break }
            l.append(contentsOf: UnsafeBufferPointer(start: bl, count: n))
            r.append(contentsOf: UnsafeBufferPointer(start: br, count: n))
        }
        guard !l.isEmpty else { throw WAVError("zero-length data: the file holds no audio frames") }
        return (l, r)
    }

    private static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// libsndfile's reason for the last failed open, as one line.
    private static func openError() -> String {
        let code = sf_error(nil)
        let msg = oneLine(String(cString: sf_strerror(nil)))
        if code == Int32(SF_ERR_UNRECOGNISED_FORMAT) {
            return "not a recognised audio file (WAV, FLAC, Ogg, Opus, MP3, AIFF, CAF, W64, RF64...): \(msg)"
        }
        return "cannot read audio: \(msg)"
    }

    /// An MP4/3GP/M4A container (`ftyp` box) or a raw AAC ADTS stream.
    static func looksLikeMP4OrAAC(_ path: String) -> Bool {
        guard let fh = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? fh.close() }
        let b = [UInt8]((try? fh.read(upToCount: 12)) ?? Data())
        if b.count >= 8, b[4] == 0x66, b[5] == 0x74, b[6] == 0x79, b[7] == 0x70 { return true } // "ftyp"
        if b.count >= 2, b[0] == 0xFF, b[1] & 0xF6 == 0xF0 { return true }                         // ADTS sync, layer 0
        return false
    }

    /// `ffmpeg` on PATH, or nil.
    static func findFFmpeg() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for d in path.split(separator: ":") where !d.isEmpty {
            let p = String(d) + "/ffmpeg"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Decodes `path` with ffmpeg to float WAV on a pipe and opens the pipe with libsndfile.
    private static func openWithFFmpeg(_ path: String, _ info: inout SF_INFO) throws -> (OpaquePointer, Process) {
        guard let ff = findFFmpeg() else { throw WAVError(ffmpegMissing(path)) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ff)
        p.arguments = ["-nostdin", "-v", "error", "-i", path, "-vn", "-f", "wav", "-acodec", "pcm_f32le", "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw WAVError("cannot start ffmpeg: \(error.localizedDescription)") }
        let fd = dup(out.fileHandleForReading.fileDescriptor)
        try? out.fileHandleForReading.close()
        try? out.fileHandleForWriting.close()
        guard fd >= 0, let h = sf_open_fd(fd, Int32(SFM_READ), &info, 1) else {
            if fd >= 0 { _ = Glibc.close(fd) }
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
            throw WAVError("ffmpeg could not decode it (exit status \(p.terminationStatus)); is it an audio recording?")
        }
        return (h, p)
    }
}

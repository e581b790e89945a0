// WAVStream.swift: reading a WAV file block by block (memory proportional to the block, not
// the file), for `tded analyze`. Uses `WAVReader`'s header parser and sample decoder.
import Foundation

/// A WAV file open for sequential reading of a stereo pair.
public final class WAVStream {
    /// The file's header.
    public let header: WAVReader.Header
    private let fd: CInt
    private let li: Int, ri: Int
    private var nextFrame = 0
    private var raw: UnsafeMutablePointer<UInt8>
    private var rawCapacity = 0

    /// Opens `path` and parses its header (one-line `WAVError`s as `WAVReader.read`).
    public init(path: String, channels: (Int, Int)? = nil) throws {
        let size: Int
        do { size = try InputFiles.checkRegularFile(path) } catch let e as InputFileError {
            throw WAVError(e.description == "is a directory, not a file" ? "is a directory, not a WAV file" : e.description)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WAVError("cannot open: \(InputFiles.describe(errno))") }
        do {
            header = try WAVReader.parseHeader(size: size) { o, n in
                var buf = [UInt8](repeating: 0, count: n)
                let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(o)) }
                guard got >= 0 else { throw WAVError("cannot read file: \(InputFiles.describe(errno))") }
                return Array(buf[0..<got])
            }
            (li, ri) = try header.pick(channels)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        raw = .allocate(capacity: 1)
    }

    deinit { close(fd); raw.deallocate() }

    /// Frames not read yet.
    public var remainingFrames: Int { header.frames - nextFrame }

    /// Reads up to `max` frames into `left` / `right` (each room for `max`); returns the count
    /// (0 at the end). Throws a one-line error on a read failure.
    public func read(max: Int, left: UnsafeMutablePointer<Float>, right: UnsafeMutablePointer<Float>) throws -> Int {
        let n = min(max, remainingFrames)
        guard n > 0 else { return 0 }
        let bytes = n * header.align
        if bytes > rawCapacity {
            raw.deallocate()
            raw = .allocate(capacity: bytes)
            rawCapacity = bytes
        }
        var done = 0
        let start = header.dataRange.lowerBound + nextFrame * header.align
        while done < bytes {
            let got = pread(fd, raw + done, bytes - done, off_t(start + done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw WAVError(got < 0 ? "cannot read file: \(InputFiles.describe(errno))" : "file shrank while reading (truncated at byte \(start + done))")
            }
            done += got
        }
        WAVReader.decodeFrames(raw, frames: n, header: header, li, ri, left: left, right: right)
        nextFrame += n
        return n
    }
}

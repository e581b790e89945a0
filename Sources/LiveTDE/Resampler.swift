// Resampler.swift: sample-rate conversion with libsoxr (high quality).
import CSoxr

/// A clear one-line resampling error.
public struct ResamplerError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The input sample rates accepted from files (anything else is one clear error rather than
/// an unbounded resampling job: a 1 Hz header would mean 16000x upsampling).
public enum AudioRates {
    /// Accepted file rates, Hz.
    public static let fileRates = 8000...384_000
    /// Accepted engine rates, Hz (as `engine.rate`).
    public static let engineRates = 8000...192_000

    /// Throws unless a file at `rate` Hz may be read.
    public static func checkFileRate(_ rate: Int) throws {
        guard fileRates.contains(rate) else {
            throw ResamplerError("sample rate \(rate) Hz is outside the supported \(fileRates.lowerBound)...\(fileRates.upperBound) Hz")
        }
    }
}

/// Streaming stereo sample-rate conversion with libsoxr (`SOXR_HQ`, planar float). Feed blocks
/// with `process`, then `flush` once at the end; memory is bounded by the block size.
public final class StreamResampler {
    private let soxr: soxr_t
    /// Input and output rates, Hz.
    public let inRate: Double, outRate: Double
    private var outL: UnsafeMutablePointer<Float>, outR: UnsafeMutablePointer<Float>
    private var outCapacity = 0

    /// A resampler from `inRate` to `outRate` Hz for two channels.
    public init(from inRate: Double, to outRate: Double) throws {
        guard inRate > 0, outRate > 0, inRate.isFinite, outRate.isFinite else {
            throw ResamplerError("invalid sample rates \(inRate) -> \(outRate) Hz")
        }
        self.inRate = inRate; self.outRate = outRate
        var io = soxr_io_spec(SOXR_FLOAT32_S, SOXR_FLOAT32_S)
        var q = soxr_quality_spec(UInt(SOXR_HQ), 0)
        var err: soxr_error_t? = nil
        guard let s = soxr_create(inRate, outRate, 2, &err, &io, &q, nil), err == nil else {
            throw ResamplerError("resampling failed: \(err.map { String(cString: $0) } ?? "soxr_create")")
        }
        soxr = s
        outL = .allocate(capacity: 1); outR = .allocate(capacity: 1)
    }

    deinit { soxr_delete(soxr); outL.deallocate(); outR.deallocate() }

    /// Resamples `n` frames (nil pointers with `n == 0`: end of input, drains the filter) and
    /// calls `output` with each block produced (valid during the call only).
    public func process(left: UnsafePointer<Float>?, right: UnsafePointer<Float>?, count n: Int,
                        output: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void) throws {
        let room = max(1024, Int((Double(n) * outRate / inRate).rounded(.up)) + 64)
        if room > outCapacity {
            outL.deallocate(); outR.deallocate()
            outL = .allocate(capacity: room); outR = .allocate(capacity: room)
            outCapacity = room
        }
        var consumed = 0
        var first = true
        while first || consumed < n || n == 0 {
            first = false
            var idone = 0, odone = 0
            var inPtrs: [UnsafeRawPointer?] = [left.map { UnsafeRawPointer($0 + consumed) }, right.map { UnsafeRawPointer($0 + consumed) }]
            var outPtrs: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(outL), UnsafeMutableRawPointer(outR)]
            let err: soxr_error_t? = inPtrs.withUnsafeMutableBufferPointer { ip in
                outPtrs.withUnsafeMutableBufferPointer { op in
                    soxr_process(soxr, n == 0 ? nil : UnsafeRawPointer(ip.baseAddress!), n - consumed, &idone,
                                 UnsafeMutableRawPointer(op.baseAddress!), outCapacity, &odone)
                }
            }
            if let err { throw ResamplerError("resampling failed: \(String(cString: err))") }
            consumed += idone
            if odone > 0 {
                try output(UnsafeBufferPointer(start: outL, count: odone), UnsafeBufferPointer(start: outR, count: odone))
            }
            if n == 0 && odone == 0 { break }      // drained
            if n > 0 && idone == 0 && odone == 0 { break }
        }
    }

    /// End of input: drains what the filter still holds.
    public func flush(output: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> Void) throws {
        try process(left: nil, right: nil, count: 0, output: output)
    }
}

/// Offline sample-rate conversion of whole signals with libsoxr (`SOXR_HQ`, 20-bit quality,
/// linear phase). Used when a file's rate differs from the engine rate.
public enum Resampler {
    /// Resamples one channel from `inRate` to `outRate` Hz. Returns `x` unchanged when the
    /// rates are equal. Output length is `round(count * outRate / inRate)`.
    public static func resample(_ x: [Float], from inRate: Double, to outRate: Double) throws -> [Float] {
        guard inRate > 0, outRate > 0, inRate.isFinite, outRate.isFinite else {
            throw ResamplerError("invalid sample rates \(inRate) -> \(outRate) Hz")
        }
        if inRate == outRate || x.isEmpty { return x }
        return try resample(left: x, right: x, from: inRate, to: outRate).left
    }

    /// Resamples both channels of a stereo pair (streamed through `StreamResampler` in blocks:
    /// no whole-signal work buffers, unlike `soxr_oneshot`). Output length is
    /// `round(count * outRate / inRate)`.
    public static func resample(left: [Float], right: [Float], from inRate: Double,
                                to outRate: Double) throws -> (left: [Float], right: [Float]) {
        precondition(left.count == right.count)
        if inRate == outRate || left.isEmpty { return (left, right) }
        let rs = try StreamResampler(from: inRate, to: outRate)
        let outLen = Int((Double(left.count) * outRate / inRate).rounded())
        var ol = [Float](), or = [Float]()
        ol.reserveCapacity(outLen); or.reserveCapacity(outLen)
        let take: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) -> Void = { l, r in
            let k = min(l.count, outLen - ol.count)
            ol.append(contentsOf: l[0..<k]); or.append(contentsOf: r[0..<k])
        }
        let block = 65536
        try left.withUnsafeBufferPointer { l in
            try right.withUnsafeBufferPointer { r in
                var i = 0
                while i < l.count {
                    let n = min(block, l.count - i)
                    try rs.process(left: l.baseAddress! + i, right: r.baseAddress! + i, count: n, output: take)
                    i += n
                }
            }
        }
        try rs.flush(output: take)
        while ol.count < outLen { ol.append(0); or.append(0) }
        return (ol, or)
    }
}

/// Loads a recording as the stereo pair at the engine rate: reads it (`AudioFileStream`,
/// libsndfile), picks the channels, checks the rate bounds before decoding, resamples with
/// libsoxr when the file rate differs. One-line errors.
public enum AudioLoader {
    public static func load(path: String, channels: (Int, Int)?, rate: Int) throws -> (left: [Float], right: [Float]) {
        let s = try AudioFileStream(path: path, channels: channels)
        try AudioRates.checkFileRate(s.rate)
        let a = try s.readAll()
        if s.rate == rate { return a }
        return try Resampler.resample(left: a.left, right: a.right, from: Double(s.rate), to: Double(rate))
    }
}

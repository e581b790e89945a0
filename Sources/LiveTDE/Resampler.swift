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
        soxr = try makeStereoSoxr(from: inRate, to: outRate)
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

/// The capture side's sample-rate converter (device rate -> engine rate): libsoxr in streaming
/// mode (`SOXR_HQ`, linear phase, the same filter on both channels, so the inter-channel delay
/// is untouched), with every buffer allocated up front for periods of at most `maxFrames`:
/// `process` allocates nothing, which the capture thread requires.
public final class CaptureResampler {
    private let soxr: soxr_t
    /// Device and engine rates, Hz.
    public let inRate: Double, outRate: Double
    /// Largest period `process` accepts.
    public let maxFrames: Int
    /// Planar input: fill `inLeft[0..<n]` / `inRight[0..<n]`, then call `process(count: n)`.
    public let inLeft: UnsafeMutablePointer<Float>, inRight: UnsafeMutablePointer<Float>
    private let outL: UnsafeMutablePointer<Float>, outR: UnsafeMutablePointer<Float>
    private let outCapacity: Int
    private let inPtrs: UnsafeMutablePointer<UnsafeRawPointer?>
    private let outPtrs: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    public init(from inRate: Double, to outRate: Double, maxFrames: Int) throws {
        guard inRate > 0, outRate > 0, inRate.isFinite, outRate.isFinite, maxFrames > 0 else {
            throw ResamplerError("invalid sample rates \(inRate) -> \(outRate) Hz")
        }
        soxr = try makeStereoSoxr(from: inRate, to: outRate)
        self.inRate = inRate; self.outRate = outRate; self.maxFrames = maxFrames
        inLeft = .allocate(capacity: maxFrames); inRight = .allocate(capacity: maxFrames)
        outCapacity = Int((Double(maxFrames) * outRate / inRate).rounded(.up)) + 256
        outL = .allocate(capacity: outCapacity); outR = .allocate(capacity: outCapacity)
        inPtrs = .allocate(capacity: 2); outPtrs = .allocate(capacity: 2)
        outPtrs[0] = UnsafeMutableRawPointer(outL); outPtrs[1] = UnsafeMutableRawPointer(outR)
    }

    deinit {
        soxr_delete(soxr)
        inLeft.deallocate(); inRight.deallocate(); outL.deallocate(); outR.deallocate()
        inPtrs.deallocate(); outPtrs.deallocate()
    }

    /// Resamples `inLeft/inRight[0..<n]` (n <= maxFrames) and calls `output` with what soxr
    /// produced (valid during the call only). Returns false on a soxr error.
    @inline(__always)
    public func process(count n: Int, output: (UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void) -> Bool {
        var consumed = 0
        while consumed < n {
            inPtrs[0] = UnsafeRawPointer(inLeft + consumed); inPtrs[1] = UnsafeRawPointer(inRight + consumed)
            var idone = 0, odone = 0
            let err = soxr_process(soxr, UnsafeRawPointer(inPtrs), n - consumed, &idone,
                                   UnsafeMutableRawPointer(outPtrs), outCapacity, &odone)
            if err != nil { return false }
            consumed += idone
            if odone > 0 { output(outL, outR, odone) }
            if idone == 0 && odone == 0 { break }
        }
        return true
    }

    /// Latency the converter adds, in seconds, measured on a fresh copy: after each period
    /// fed (past the first 0.1 s), the audio time that went in minus the audio time that came
    /// out; the largest value. soxr holds back about half its (linear-phase) filter, the same
    /// on both channels, so the inter-channel delay is not changed; only the lines are later.
    public func measuredLatencySeconds() throws -> Double {
        let probe = try CaptureResampler(from: inRate, to: outRate, maxFrames: maxFrames)
        let total = Int(inRate * 0.3)
        var fed = 0, got = 0
        var worst = 0.0
        var state: UInt32 = 1
        while fed < total {
            let n = min(probe.maxFrames, total - fed)
            for i in 0..<n {
                state = state &* 1664525 &+ 1013904223
                let v = Float(Int32(bitPattern: state)) / Float(Int32.max) * 0.1
                probe.inLeft[i] = v; probe.inRight[i] = v
            }
            _ = probe.process(count: n) { _, _, k in got += k }
            fed += n
            if Double(fed) / inRate > 0.1 { worst = max(worst, Double(fed) / inRate - Double(got) / outRate) }
        }
        return worst
    }
}

/// A two-channel, float32, high-quality (SOXR_HQ) libsoxr resampler; one line of error when
/// libsoxr refuses it.
func makeStereoSoxr(from inRate: Double, to outRate: Double) throws -> soxr_t {
    var io = soxr_io_spec(SOXR_FLOAT32_S, SOXR_FLOAT32_S)
    var q = soxr_quality_spec(UInt(SOXR_HQ), 0)
    var err: soxr_error_t? = nil
    guard let s = soxr_create(inRate, outRate, 2, &err, &io, &q, nil), err == nil else {
        throw ResamplerError("resampling failed: \(err.map { String(cString: $0) } ?? "soxr_create")")
    }
    return s
}

// Resampler.swift: sample-rate conversion with libsoxr (high quality).
import CSoxr

/// A clear one-line resampling error.
public struct ResamplerError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
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
        let outLen = Int((Double(x.count) * outRate / inRate).rounded())
        var out = [Float](repeating: 0, count: max(outLen, 1))
        var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
        var q = soxr_quality_spec(UInt(SOXR_HQ), 0)
        var idone = 0, odone = 0
        let err: soxr_error_t? = x.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                soxr_oneshot(inRate, outRate, 1, inp.baseAddress, x.count, &idone,
                             o.baseAddress, outLen, &odone, &io, &q, nil)
            }
        }
        if let err { throw ResamplerError("resampling failed: \(String(cString: err))") }
        return Array(out[0..<min(odone, outLen)])
    }

    /// Resamples both channels of a stereo pair.
    public static func resample(left: [Float], right: [Float], from inRate: Double,
                                to outRate: Double) throws -> (left: [Float], right: [Float]) {
        (try resample(left, from: inRate, to: outRate), try resample(right, from: inRate, to: outRate))
    }
}

/// Loads a WAV file as the stereo pair at the engine rate: reads it (`WAVReader`), picks the
/// channels, resamples with libsoxr when the file rate differs. One-line errors.
public enum AudioLoader {
    public static func load(path: String, channels: (Int, Int)?, rate: Int) throws -> (left: [Float], right: [Float]) {
        let a = try WAVReader.read(path: path, channels: channels)
        if a.sampleRate == rate { return (a.left, a.right) }
        return try Resampler.resample(left: a.left, right: a.right, from: Double(a.sampleRate), to: Double(rate))
    }
}

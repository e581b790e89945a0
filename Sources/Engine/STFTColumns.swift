// STFTColumns.swift: per-sample STFT column producer with a fixed-capacity ring cache.
import Foundation

/// Produces the STFT "column" of every frame start position of a mono stream, exactly as
/// `docs/encoder-spec.md` defines it: frame `x[t ..< t+nFFT]` times a periodic Hann window,
/// unnormalised real FFT, bins `0 ..< nFFT/2` (Nyquist dropped), stored planar (re / im).
///
/// Push samples in blocks of any size with `push(_:)`; every newly complete frame start `t`
/// with `t % stride == phase` is transformed once and kept in a ring of `capacity` columns,
/// so overlapping windows that need the same column read it from the cache instead of
/// recomputing it. Positions are absolute sample indices counted from the first pushed
/// sample (0). Steady state allocates nothing.
///
/// Typical use by a block consumer (blocks of at most `capacity * stride` samples):
/// ```swift
/// let first = cols.completeEnd          // first frame start this block can complete
/// cols.push(block)
/// var t = first
/// while t < cols.completeEnd {
///     if cols.hasColumn(at: t) { use(cols.real(at: t), cols.imag(at: t)) }   // `bins` floats each
///     t += 1
/// }
/// ```
public final class STFTColumns {
    /// Frame length (FFT size); the spec fixes 256.
    public let nFFT: Int
    /// Number of stored bins per column (`nFFT / 2`).
    public let bins: Int
    /// Only frame starts `t` with `t % stride == phase` are computed.
    public let stride: Int
    /// See `stride`.
    public let phase: Int
    /// Number of columns the ring keeps.
    public let capacity: Int

    /// Total samples pushed since creation or `reset()`.
    public private(set) var samplesPushed: Int64 = 0
    /// Number of columns computed so far (the `k`-th computed column has `t = phase + k*stride`).
    public private(set) var columnsComputed: Int64 = 0

    private let window: UnsafeMutablePointer<Float>
    private let history: UnsafeMutablePointer<Float>   // mirrored ring, 2*nFFT
    private let re: UnsafeMutablePointer<Float>        // capacity * bins
    private let im: UnsafeMutablePointer<Float>
    private let fft: ForwardRealFFT

    /// Creates a column producer.
    /// - Parameters:
    ///   - capacity: columns kept in the cache (at least 1).
    ///   - nFFT: frame length, even (default 256).
    ///   - stride, phase: compute only positions `t` with `t % stride == phase` (default every t).
    public init(capacity: Int, nFFT: Int = 256, stride: Int = 1, phase: Int = 0) {
        precondition(capacity >= 1 && nFFT >= 2 && nFFT % 2 == 0 && stride >= 1
                     && phase >= 0 && phase < stride, "invalid STFTColumns configuration")
        self.nFFT = nFFT; self.bins = nFFT / 2
        self.stride = stride; self.phase = phase; self.capacity = capacity
        window = .allocate(capacity: nFFT)
        STFTColumns.fillPeriodicHann(window, count: nFFT)
        history = .allocate(capacity: 2 * nFFT); history.initialize(repeating: 0, count: 2 * nFFT)
        re = .allocate(capacity: capacity * bins); re.initialize(repeating: 0, count: capacity * bins)
        im = .allocate(capacity: capacity * bins); im.initialize(repeating: 0, count: capacity * bins)
        fft = ForwardRealFFT(size: nFFT)
    }

    deinit {
        window.deallocate(); history.deallocate(); re.deallocate(); im.deallocate()
    }

    /// Writes a periodic Hann window `w[n] = 0.5 - 0.5 cos(2 pi n / count)`.
    public static func fillPeriodicHann(_ w: UnsafeMutablePointer<Float>, count: Int) {
        for n in 0..<count {
            w[n] = Float(0.5 - 0.5 * cos(2.0 * Double.pi * Double(n) / Double(count)))
        }
    }

    /// Forgets all samples and columns; positions restart at 0.
    public func reset() {
        samplesPushed = 0; columnsComputed = 0
        history.update(repeating: 0, count: 2 * nFFT)
    }

    /// First frame start whose column is not computed yet because its samples have not all
    /// arrived: every computed `t` satisfies `t < completeEnd`, i.e. `t <= samplesPushed - nFFT`.
    public var completeEnd: Int64 { max(0, samplesPushed - Int64(nFFT) + 1) }

    /// Position of the oldest column still in the cache (or of the next one if none exists).
    public var oldestCached: Int64 {
        let first = max(0, columnsComputed - Int64(capacity))
        return Int64(phase) + first * Int64(stride)
    }

    /// Whether the column at `t` is computed and still cached.
    @inline(__always) public func hasColumn(at t: Int64) -> Bool {
        guard t >= Int64(phase) else { return false }
        let d = t - Int64(phase)
        guard d % Int64(stride) == 0 else { return false }
        let k = d / Int64(stride)
        return k < columnsComputed && k >= columnsComputed - Int64(capacity)
    }

    @inline(__always) private func slot(_ t: Int64) -> Int {
        Int(((t - Int64(phase)) / Int64(stride)) % Int64(capacity)) * bins
    }

    /// Real parts (`bins` floats) of the column at `t`. Requires `hasColumn(at: t)`; the
    /// pointer is valid until the next `push`/`reset`.
    @inline(__always) public func real(at t: Int64) -> UnsafePointer<Float> {
        precondition(hasColumn(at: t), "STFT column \(t) is not in the cache")
        return UnsafePointer(re + slot(t))
    }

    /// Imaginary parts (`bins` floats) of the column at `t`. Same validity rules as `real(at:)`.
    @inline(__always) public func imag(at t: Int64) -> UnsafePointer<Float> {
        precondition(hasColumn(at: t), "STFT column \(t) is not in the cache")
        return UnsafePointer(im + slot(t))
    }

    /// Appends samples and computes the columns of every newly complete frame on the lattice.
    /// A caller that needs every column must read them before more than `capacity` new
    /// columns are produced (push blocks of at most `capacity * stride` samples).
    public func push(_ samples: UnsafeBufferPointer<Float>) {
        guard let base = samples.baseAddress else { return }
        let n = nFFT
        for i in 0..<samples.count {
            let p = Int(samplesPushed % Int64(n))
            history[p] = base[i]; history[p + n] = base[i]
            samplesPushed += 1
            let t = samplesPushed - Int64(n)
            if t >= Int64(phase) && (t - Int64(phase)) % Int64(stride) == 0 {
                computeColumn(frame: history + (p + 1) % n, t: t)
            }
        }
    }

    /// Convenience overload of `push(_:)` for arrays (tests, offline use).
    public func push(_ samples: [Float]) { samples.withUnsafeBufferPointer { push($0) } }

    private func computeColumn(frame: UnsafePointer<Float>, t: Int64) {
        let inp = fft.input
        for j in 0..<nFFT { inp[j] = frame[j] * window[j] }
        fft.execute()
        let out = fft.output
        let k = columnsComputed % Int64(capacity)
        let r = re + Int(k) * bins, q = im + Int(k) * bins
        for b in 0..<bins { r[b] = out[2 * b]; q[b] = out[2 * b + 1] }
        columnsComputed += 1
    }
}

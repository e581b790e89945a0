// RealFFT.swift: thin owners of FFTW single-precision real transforms (plans + aligned buffers).
import CFFTW
import Foundation

/// Serialises FFTW planning, which is not thread-safe. Every plan creation and destruction in
/// the package goes through this lock (executing a plan is thread-safe and needs no lock).
public enum FFTWPlanner {
    private static let lock = NSLock()

    /// Planner flags used for every plan. `FFTW_ESTIMATE` is the default because it makes plan
    /// choice (and so floating-point results) identical from run to run and plans instantly.
    nonisolated(unsafe) public static var flags: UInt32 = UInt32(FFTW_ESTIMATE)

    /// Runs `body` while holding the FFTW planner lock.
    public static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }
}

/// Allocates `count` floats with FFTW's SIMD alignment, zero-filled.
@inline(__always)
func fftwAllocFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let p = fftwf_alloc_real(max(count, 1))!
    p.initialize(repeating: 0, count: max(count, 1))
    return p
}

/// Forward real FFT of size `n`: `input` (n reals) -> `output` (n/2+1 interleaved complex).
/// Unnormalised: `X_k = sum_n x[n] e^{-2 pi i k n / n}`.
public final class ForwardRealFFT {
    /// Transform size.
    public let n: Int
    /// Aligned input buffer of `n` floats. Fill it, then call `execute()`.
    public let input: UnsafeMutablePointer<Float>
    /// Aligned output buffer of `n/2+1` complex values, interleaved re, im.
    public let output: UnsafeMutablePointer<Float>
    private let plan: fftwf_plan

    /// Creates the plan and its buffers.
    public init(size n: Int) {
        precondition(n >= 2 && n % 2 == 0, "FFT size must be even")
        self.n = n
        input = fftwAllocFloats(n)
        output = fftwAllocFloats(2 * (n / 2 + 1))
        let inp = input, out = output
        plan = FFTWPlanner.withLock {
            let cplx = UnsafeMutableRawPointer(out).assumingMemoryBound(to: fftwf_complex.self)
            return fftwf_plan_dft_r2c_1d(Int32(n), inp, cplx, FFTWPlanner.flags)!
        }
    }

    /// Runs the transform on the current contents of `input`.
    @inline(__always) public func execute() { fftwf_execute(plan) }

    deinit {
        FFTWPlanner.withLock { fftwf_destroy_plan(plan) }
        fftwf_free(input); fftwf_free(output)
    }
}

/// Inverse real FFT of size `n`: `input` (n/2+1 interleaved complex) -> `output` (n reals).
/// Unnormalised (the result is `n` times the true inverse). The input buffer is destroyed.
public final class InverseRealFFT {
    /// Transform size.
    public let n: Int
    /// Aligned input buffer of `n/2+1` complex values, interleaved re, im.
    public let input: UnsafeMutablePointer<Float>
    /// Aligned output buffer of `n` floats.
    public let output: UnsafeMutablePointer<Float>
    private let plan: fftwf_plan

    /// Creates the plan and its buffers.
    public init(size n: Int) {
        precondition(n >= 2 && n % 2 == 0, "FFT size must be even")
        self.n = n
        input = fftwAllocFloats(2 * (n / 2 + 1))
        output = fftwAllocFloats(n)
        let inp = input, out = output
        plan = FFTWPlanner.withLock {
            let cplx = UnsafeMutableRawPointer(inp).assumingMemoryBound(to: fftwf_complex.self)
            return fftwf_plan_dft_c2r_1d(Int32(n), cplx, out, FFTWPlanner.flags)!
        }
    }

    /// Runs the transform on the current contents of `input` (which it overwrites).
    @inline(__always) public func execute() { fftwf_execute(plan) }

    deinit {
        FFTWPlanner.withLock { fftwf_destroy_plan(plan) }
        fftwf_free(input); fftwf_free(output)
    }
}

/// Complex inverse FFT of size `n` (`FFTW_BACKWARD`, unnormalised:
/// `z[m] = sum_k Z[k] e^{+2 pi i k m / n}`), interleaved re, im buffers.
public final class InverseComplexFFT {
    /// Transform size.
    public let n: Int
    /// Aligned input buffer of `n` interleaved complex values. The transform may overwrite it.
    public let input: UnsafeMutablePointer<Float>
    /// Aligned output buffer of `n` interleaved complex values.
    public let output: UnsafeMutablePointer<Float>
    private let plan: fftwf_plan

    /// Creates the plan and its buffers.
    public init(size n: Int) {
        precondition(n >= 1, "FFT size must be positive")
        self.n = n
        input = fftwAllocFloats(2 * n)
        output = fftwAllocFloats(2 * n)
        let inp = input, out = output
        plan = FFTWPlanner.withLock {
            let i = UnsafeMutableRawPointer(inp).assumingMemoryBound(to: fftwf_complex.self)
            let o = UnsafeMutableRawPointer(out).assumingMemoryBound(to: fftwf_complex.self)
            return fftwf_plan_dft_1d(Int32(n), i, o, FFTW_BACKWARD, FFTWPlanner.flags)!
        }
    }

    /// Runs the transform on the current contents of `input`.
    @inline(__always) public func execute() { fftwf_execute(plan) }

    deinit {
        FFTWPlanner.withLock { fftwf_destroy_plan(plan) }
        fftwf_free(input); fftwf_free(output)
    }
}

// Process-wide OpenBLAS settings and what OpenBLAS reports about itself.
import COpenBLAS
import Foundation

/// The process's OpenBLAS: thread setting (made once, at process start) and identification for
/// benchmark reports.
public enum BLASRuntime {
    /// Makes OpenBLAS run every call on the calling thread. Call once at process start (tded's
    /// `main`, the test targets' setup), before any engine runs: the engine's GEMMs are small
    /// (OpenBLAS's threads would only contend for the cores), and the real-time audio thread
    /// should not hand work to other threads. Results do not depend on it (every GEMM of a layer
    /// has one fixed shape, docs/encoder-spec.md), but timings do.
    public static func useOneThread() {
        openblas_set_num_threads(1)
    }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel set OpenBLAS picked for this CPU (or `OPENBLAS_CORETYPE`), e.g. "Haswell",
    /// "SkylakeX", "Cooperlake".
    public static var coreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "?"
    }

    /// OpenBLAS's build configuration string (version, DYNAMIC_ARCH, threading, ...).
    public static var config: String {
        openblas_get_config().map { String(cString: $0) } ?? "?"
    }
}

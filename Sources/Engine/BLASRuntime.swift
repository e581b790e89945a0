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

    /// The kernel set to ask OpenBLAS for when it fell back to its generic SSE3 kernels
    /// ("Prescott") on a CPU it does not recognise although the CPU has AVX2/FMA or AVX-512
    /// (OpenBLAS 0.3.21 on newer Xeons: the learned engine then runs 5x slower). Nil when
    /// OpenBLAS picked a real kernel set, `OPENBLAS_CORETYPE` is set, or the CPU lacks them.
    /// `cpuFlags`: the `flags` line of /proc/cpuinfo (read when nil).
    public static func betterCore(cpuFlags: String? = nil, current: String? = nil,
                                  environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard (current ?? coreName).lowercased() == "prescott" else { return nil }
        let line = cpuFlags ?? (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("flags") }.map(String.init) ?? ""
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
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

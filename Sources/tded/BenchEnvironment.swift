// What `tded bench` figures were measured on, so they can be compared across machines.
import Engine
import Foundation

enum BenchEnvironment {
    /// CPU model name from /proc/cpuinfo (first processor), or "?".
    static var cpuModel: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "?" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "?"
    }

    /// The SIMD extensions that decide OpenBLAS's kernels (from the first processor's flags).
    static var simdFlags: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return "?" }
        let flags = Set(line.split(separator: " ").map(String.init))
        let known = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_vnni"]
        let have = known.filter { flags.contains($0) }
        return have.isEmpty ? "none of avx2/avx512" : have.joined(separator: " ")
    }

    /// Major.minor of the Swift compiler that built this binary.
    static var swiftVersion: String {
        #if compiler(>=6.5)
        return ">= 6.5"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }

    static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// The lines `tded bench` prints first.
    static func lines() -> [String] {
        let env = ProcessInfo.processInfo.environment
        return [
            "machine: CPU \(cpuModel) (\(ProcessInfo.processInfo.activeProcessorCount) logical CPUs; \(simdFlags))",
            "machine: OpenBLAS core \(BLASRuntime.coreName) (OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "(unset)")), "
                + "\(BLASRuntime.threads) thread(s); build: \(BLASRuntime.config)",
            "machine: tded built with Swift \(swiftVersion), \(buildConfiguration) configuration",
        ]
    }
}

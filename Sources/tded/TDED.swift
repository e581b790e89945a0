// TDED.swift: the `tded` command-line root.
import ArgumentParser
import Engine
import Foundation

/// `tded`: live time-delay estimation and azimuth for a two-microphone array.
@main
struct TDED: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tded",
        abstract: "Live time-delay estimation and azimuth for a two-microphone array.",
        // The subcommand list. `Run` (the daemon) is the default subcommand.
        subcommands: [
            Run.self,       // daemon (issue 3)
            Analyze.self,   // offline analysis of WAV files (issue 2)
            Bench.self,     // engine throughput (issue 2)
            Status.self,    // daemon status (issue 3)
            View.self,      // browser view, a separate HTTP process (issue 14)
            Watch.self,     // terminal gauge (issue 14)
            Calibrate.self, // channel order and spacing (issue 16)
        ],
        defaultSubcommand: Run.self
    )

    /// Process start: OpenBLAS on the calling thread only (see `BLASRuntime.useOneThread`),
    /// then the usual argument parsing and dispatch.
    static func main() {
        // OpenBLAS chooses its kernels when it loads, from OPENBLAS_CORETYPE or the CPU id; on
        // CPUs it does not know it falls back to generic SSE3 kernels. Then run again, once,
        // with the kernel set the CPU supports (same process id, so systemd is unaffected).
        if let core = BLASRuntime.betterCore(), getenv("TDED_BLAS_REEXEC") == nil {
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv("TDED_BLAS_REEXEC", "1", 1)
            var argv = CommandLine.arguments.map { strdup($0) }
            argv.append(nil)
            execv("/proc/self/exe", &argv)
            // exec failed: go on with the generic kernels
        }
        BLASRuntime.useOneThread()
        main(nil)
    }
}

// TDED.swift: the `tded` command-line root.
import ArgumentParser
import Engine

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
        ],
        defaultSubcommand: Run.self
    )

    /// Process start: OpenBLAS on the calling thread only (see `BLASRuntime.useOneThread`),
    /// then the usual argument parsing and dispatch.
    static func main() {
        BLASRuntime.useOneThread()
        main(nil)
    }
}

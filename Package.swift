// swift-tools-version:6.0
//
// LiveTDE: live time-delay estimation and azimuth for two-microphone arrays.
//
// Targets, one job each:
//   CFFTW, COpenBLAS, CALSA, CSoxr, CSndfile  thin system-library shims (module maps only)
//   RingBuffer                      lock-free SPSC ring of stereo frames (swift-atomics)
//   Engine                          pure DSP: STFT columns, GCC-PHAT, learned encoder, votes,
//                                   azimuth, smoothing. No I/O.
//   LiveTDE                         I/O around the engine: audio files (libsndfile), resampling, ALSA capture,
//                                   file replay, config, socket publisher, daemon loop
//   LiveView                        viewers of the stream: `tded view` (HTTP + SSE, embedded
//                                   page) and `tded watch`'s gauge; socket clients only
//   tded                            the command-line tool and daemon entry point
//   EngineTestSupport               test-only references (from-scratch encoder, literal vote mode)
//                                   and helpers shared by the tests; no product ships it
//
// Supported: Linux only (x86-64 built and tested; Debian/Ubuntu packages in
// scripts/install-deps.sh). LiveTDE needs ALSA, /proc and glibc malloc statistics, so no Apple
// platform is declared: `platforms:` would only name minimum versions for platforms the package
// does not build on.
import PackageDescription

let package = Package(
    name: "LiveTDE",
    products: [
        .executable(name: "tded", targets: ["tded"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "RingBuffer", targets: ["RingBuffer"]),
        .library(name: "LiveTDE", targets: ["LiveTDE"]),
        .library(name: "LiveView", targets: ["LiveView"]),
        .executable(name: "tded-example-client", targets: ["tded-example-client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // System libraries: module maps only, no logic.
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CALSA", path: "Sources/CALSA",
                       providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr",
                       providers: [.apt(["libsoxr-dev"])]),
        .systemLibrary(name: "CSndfile", path: "Sources/CSndfile",
                       providers: [.apt(["libsndfile1-dev"])]),

        .target(
            name: "RingBuffer",
            dependencies: [.product(name: "Atomics", package: "swift-atomics")]
        ),
        .target(
            name: "Engine",
            dependencies: ["CFFTW", "COpenBLAS"]
            // No `-Ounchecked`: an unsafe flag keeps the package from being a versioned
            // dependency, and `tded bench` showed no gain from it (docs/performance.md,
            // "Build flags": 3 interleaved runs each, within the run-to-run spread).
        ),
        .target(
            name: "LiveTDE",
            dependencies: [
                "Engine", "RingBuffer", "CALSA", "CSoxr", "CSndfile",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // The viewers (`tded view`'s HTTP/SSE server and page, `tded watch`'s gauge): clients of
        // the daemon's socket, never linked into its publish path.
        .target(
            name: "LiveView",
            dependencies: [
                "LiveTDE",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tded",
            dependencies: [
                "Engine", "LiveTDE", "LiveView",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // examples/clients/swift: a reconnecting client on the project's own types.
        .executableTarget(name: "tded-example-client", dependencies: ["LiveTDE"],
                          path: "examples/clients/swift"),

        // Test support (like swift-collections' _CollectionsTestSupport): references and
        // helpers the tests share, kept out of the Engine product.
        .target(name: "EngineTestSupport", dependencies: ["Engine", "COpenBLAS"],
                path: "Tests/EngineTestSupport"),

        .testTarget(name: "RingBufferTests", dependencies: ["RingBuffer"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "EngineTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LiveTDETests", dependencies: ["LiveTDE", "Engine"]),
        .testTarget(name: "tdedTests", dependencies: ["LiveTDE", "Engine"]),
        .testTarget(name: "LiveViewTests", dependencies: [
            "LiveView", "LiveTDE", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v5]
)

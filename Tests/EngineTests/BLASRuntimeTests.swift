// BLASRuntime.betterCore: which kernel set tded asks OpenBLAS for when it fell back to its
// generic kernels on a CPU it does not recognise.
import XCTest
@testable import Engine

final class BLASRuntimeTests: XCTestCase {
    let avx512 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16"
    let avx2 = "flags\t\t: fpu sse2 avx avx2 fma"
    let sse = "flags\t\t: fpu sse2 sse3"

    func testGenericFallbackOnAModernCPUGetsItsKernels() {
        XCTAssertEqual(BLASRuntime.betterCore(cpuFlags: avx512, current: "Prescott", environment: [:]), "SkylakeX")
        XCTAssertEqual(BLASRuntime.betterCore(cpuFlags: avx2, current: "Prescott", environment: [:]), "Haswell")
    }

    func testNothingChangesWhenOpenBLASKnewTheCPUOrWasTold() {
        XCTAssertNil(BLASRuntime.betterCore(cpuFlags: avx512, current: "Cooperlake", environment: [:]))
        XCTAssertNil(BLASRuntime.betterCore(cpuFlags: avx512, current: "Haswell", environment: [:]))
        XCTAssertNil(BLASRuntime.betterCore(cpuFlags: avx512, current: "Prescott", environment: ["OPENBLAS_CORETYPE": "Prescott"]))
        XCTAssertNil(BLASRuntime.betterCore(cpuFlags: sse, current: "Prescott", environment: [:]))
        XCTAssertNil(BLASRuntime.betterCore(cpuFlags: "flags: avx2", current: "Prescott", environment: [:]), "AVX2 without FMA")
    }
}

// The learned pooled-GCC weighting (`pooling = learned`): parity with PyTorch on committed
// spectra, whole-clip accuracy through the pipeline, and refusal of bad models and configs.
import XCTest
import EngineTestSupport
@testable import Engine

func shippedGccMaskURL(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    try committedModelURL("tded-gccmask-v1.safetensors", file: file, line: line)
}

final class GccMaskTests: XCTestCase {
    private func shipped() throws -> GccMaskModel {
        try GccMaskModel(safetensorsBytes: [UInt8](try Data(contentsOf: try shippedGccMaskURL())))
    }

    private func gcc(_ m: GccMaskModel, maxLag: Int, step: Int = 16,
                     taper: GCCPHATConfig.Taper = .rectangular) throws -> GCCPHAT {
        var c = GCCPHATConfig(step: step, maxLag: maxLag, taper: taper, pooling: .learned)
        c.poolingModel = m
        return try GCCPHAT(config: c)
    }

    /// The engine's delay of the fixture's pooled spectra equals PyTorch's
    /// (`python3 -m tded_train.gccmask fixture`) within 0.01 sample, and is near the truth on
    /// the clean clips.
    func testParityWithPyTorchOnFixtureSpectra() throws {
        let m = try shipped()
        XCTAssertEqual(m.headBands, [], "the shipped model is format version 1")
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag"), want = try fx.floats("delay"),
            truth = try fx.floats("truth")
        let B = 1025
        XCTAssertEqual(spectra.count, want.count * 4 * B)
        for i in 0..<want.count {
            let est = try gcc(m, maxLag: Int(lags[i]))
            let got = spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * B) }
            let d = try XCTUnwrap(got, "clip \(i)")
            print("[gccmask parity] clip \(i): engine \(d.delay) torch \(want[i]) truth \(truth[i]) conf \(d.confidence)")
            XCTAssertEqual(d.delay, Double(want[i]), accuracy: 0.01, "clip \(i)")
            XCTAssertTrue((0...1).contains(d.confidence))
        }
    }

    /// The Hann / coherence / sub-band path (a per-update model of format version 2:
    /// Tests/EngineTests/Fixtures/gccmask_live_model.safetensors, not shipped) also matches
    /// PyTorch within 0.01 sample.
    func testLiveModelParityWithPyTorch() throws {
        let m = try GccMaskModel(safetensorsBytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_live_model.safetensors"))))
        XCTAssertEqual(m.taper, .hann)
        XCTAssertEqual(m.maskInputs, 5)
        // (version 2: its head also sees the sub-band correlations, so this covers that path)
        XCTAssertEqual(m.headBands, [64, 128, 256, 512])
        XCTAssertEqual(m.head.first?.inChannels, 3 + 5)
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_live_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag"), want = try fx.floats("delay")
        for i in 0..<want.count {
            let est = try gcc(m, maxLag: Int(lags[i]), taper: .hann)
            let d = try XCTUnwrap(spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * 1025) })
            XCTAssertEqual(d.delay, Double(want[i]), accuracy: 0.01, "clip \(i)")
        }
        XCTAssertThrowsError(try gcc(m, maxLag: 8)) { XCTAssertTrue("\($0)".contains("hann")) }
    }

    /// Through the pipeline (`wholeResult`, the engine's own spectra): fractional delays of
    /// both signs on noise and speech-like sound.
    func testWholeClipDelaysThroughThePipeline() throws {
        let m = try shipped()
        for (kind, d) in [(SignalKind.white, 3.3), (.speechLike, -5.7), (.white, -0.45), (.speechLike, 11.25)] {
            let s = TestSignals.stereo(kind, count: 1151, delay: d, snrDb: 20, seed: 4)
            var c = PipelineConfig()
            c.post = .pooled; c.keepAllVotes = true; c.micDistance = 0.3
            let p = try TDEPipeline(estimator: try gcc(m, maxLag: 16), config: c)
            _ = p.process(left: s.left, right: s.right)
            p.finish()
            let w = p.wholeResult()
            print("[gccmask pipeline] \(kind) \(d): \(w.delaySamples)")
            XCTAssertEqual(w.delaySamples, d, accuracy: 0.25, "\(kind) \(d)")
        }
    }

    /// Swapping the channels (conj(G), the two auto spectra exchanged) negates the delay, and
    /// identical channels give exactly 0: the model is evaluated on both channel orders.
    func testSwappedChannelsNegateTheDelay() throws {
        let m = try shipped()
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag")
        let B = 1025
        for i in 0..<lags.count {
            let est = try gcc(m, maxLag: Int(lags[i]))
            let s = Array(spectra[(i * 4 * B)..<((i + 1) * 4 * B)])
            var sw = s
            for k in 0..<B { sw[B + k] = -s[B + k]; sw[2 * B + k] = s[3 * B + k]; sw[3 * B + k] = s[2 * B + k] }
            let a = try XCTUnwrap(s.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!) })
            let b = try XCTUnwrap(sw.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!) })
            XCTAssertEqual(a.delay, -b.delay, accuracy: 1e-9, "clip \(i)")
        }
        let x = TestSignals.stereo(.speechLike, count: 1151, delay: 0, snrDb: 60, seed: 2).left
        var c = PipelineConfig()
        c.post = .pooled; c.keepAllVotes = true; c.micDistance = 0.2
        let p = try TDEPipeline(estimator: try gcc(m, maxLag: 11), config: c)
        _ = p.process(left: x, right: x)
        p.finish()
        XCTAssertEqual(p.wholeResult().delaySamples, 0, accuracy: 1e-9)
    }

    /// Silence gives no estimate (nil), never NaN.
    func testSilenceGivesNoEstimate() throws {
        let est = try gcc(try shipped(), maxLag: 16)
        let zeros = [Float](repeating: 0, count: 4 * 1025)
        XCTAssertNil(zeros.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!) })
    }

    /// Configurations the model was not trained for are refused with one line.
    func testRefusesUntrainedConfigurations() throws {
        let m = try shipped()
        XCTAssertThrowsError(try gcc(m, maxLag: 30)) { XCTAssertTrue("\($0)".contains("wider than the model")) }
        XCTAssertThrowsError(try gcc(m, maxLag: 8, taper: .hann)) { XCTAssertTrue("\($0)".contains("rectangular")) }
        XCTAssertThrowsError(try GCCPHAT(config: GCCPHATConfig(pooling: .learned))) { XCTAssertTrue("\($0)".contains("needs its model")) }
        var c = GCCPHATConfig(window: 512, step: 16, maxLag: 8, pooling: .learned)
        c.poolingModel = m
        XCTAssertThrowsError(try GCCPHAT(config: c)) { XCTAssertTrue("\($0)".contains("512")) }
    }

    /// Bad files: an encoder model, a missing tensor, a wrong shape, non-finite weights.
    func testBadModelFilesAreRefused() throws {
        let enc = [UInt8](try Data(contentsOf: try shippedModelURL()))
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: enc)) { XCTAssertTrue("\($0)".contains("not a learned-pooling model")) }
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: [1, 2, 3]))
        let good = [UInt8](try Data(contentsOf: try shippedGccMaskURL()))
        let f = try SafetensorsFile(bytes: good)
        // Overwrite the first weight of mask.0 with NaN: refused.
        var nan = good
        let r = try XCTUnwrap(f.tensors["mask.0.weight"]).byteRange
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for i in 0..<4 { nan[r.lowerBound + i] = $0[i] } }
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: nan)) { XCTAssertTrue("\($0)".contains("non-finite")) }
        // Rename a tensor in the header (same length): missing tensor.
        let key = Array("\"head.0.bias\"".utf8)
        let at = try XCTUnwrap((0...(good.count - key.count)).first { Array(good[$0..<($0 + key.count)]) == key })
        var renamed = good
        renamed[at + 6] = UInt8(ascii: "9")
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: renamed)) { XCTAssertTrue("\($0)".contains("head.0")) }
    }

    /// The version-2 header's sub-band edges: a version-1 file may not have them, they must
    /// increase inside the spectrum, and the head's first layer must take one input per band.
    func testSubBandHeaderIsChecked() throws {
        let f = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_live_model.safetensors"))))
        let tensors = try f.tensors.keys.sorted().map { ($0, f.tensors[$0]!.shape, try f.floats($0)) }
        let header = try XCTUnwrap(f.metadata[GccMaskModel.metadataKey])
        func model(_ edit: (inout [String: Any]) -> Void) throws -> GccMaskModel {
            var h = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any])
            edit(&h)
            let json = String(decoding: try JSONSerialization.data(withJSONObject: h), as: UTF8.self)
            return try GccMaskModel(safetensorsBytes: makeSafetensors(tensors, metadata: [GccMaskModel.metadataKey: json]))
        }
        XCTAssertEqual(try model { _ in }.headBands, [64, 128, 256, 512])
        XCTAssertThrowsError(try model { $0["version"] = 1 }) { XCTAssertTrue("\($0)".contains("version 2"), "\($0)") }
        XCTAssertThrowsError(try model { $0["version"] = 3 }) { XCTAssertTrue("\($0)".contains("version 3"), "\($0)") }
        XCTAssertThrowsError(try model { $0["head_bands"] = [64, 64, 256, 512] }) { XCTAssertTrue("\($0)".contains("increasing"), "\($0)") }
        XCTAssertThrowsError(try model { $0["head_bands"] = [64, 128, 256, 2000] }) { XCTAssertTrue("\($0)".contains("increasing"), "\($0)") }
        XCTAssertThrowsError(try model { $0["head_bands"] = [128, 256, 512] }) { XCTAssertTrue("\($0)".contains("head.0"), "\($0)") }
        XCTAssertThrowsError(try model { $0.removeValue(forKey: "head_bands") }) { XCTAssertTrue("\($0)".contains("head.0"), "\($0)") }
    }

    func testLearnedPoolingNameRoundTrips() {
        XCTAssertEqual(GCCPHATConfig.PoolWeighting(parsing: "learned"), .learned)
        XCTAssertEqual(GCCPHATConfig.PoolWeighting.learned.name, "learned")
        XCTAssertTrue(GCCPHATConfig.PoolWeighting.learned.needsAutoSpectra)
        XCTAssertNil(GCCPHATConfig.PoolWeighting(parsing: "learned+snr"))
    }
}

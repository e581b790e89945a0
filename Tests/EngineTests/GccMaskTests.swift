// The learned pooled-GCC weighting (`pooling = learned`): parity with PyTorch on committed
// spectra, whole-clip accuracy through the pipeline, and refusal of bad models and configs.
import XCTest
import EngineTestSupport
@testable import Engine

func shippedGccMaskURL(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    try committedModelURL("tded-gccmask-v10.safetensors", file: file, line: line)
}

/// Pooled spectra in the evidence layout (`Re G`, `Im G`, `P_L`, `P_R`, `window + 1` bins each)
/// of two white sources at delays `tA`, `tB` (samples) with powers `pA`, `pB`: `G = conj(L) R` is
/// each source's power times `e^{-i w t}`.
func twoSourceSpectra(window: Int, tA: Double, pA: Double, tB: Double, pB: Double) -> [Float] {
    let B = window + 1
    var p = [Float](repeating: 0, count: 4 * B)
    for k in 0..<B {
        let w = Double.pi * Double(k) / Double(window)
        p[k] = Float(pA * cos(w * tA) + pB * cos(w * tB)); p[B + k] = Float(-pA * sin(w * tA) - pB * sin(w * tB))
        p[2 * B + k] = Float(pA + pB); p[3 * B + k] = Float(pA + pB)
    }
    return p
}

final class GccMaskTests: XCTestCase {
    /// The shipped model set's networks (members 0-3, an ensemble decoded by the posterior
    /// median, for short pools; member 4 from 0.25 s).
    private func shipped() throws -> [GccMaskModel] {
        try GccMaskModel.members(safetensorsBytes: [UInt8](try Data(contentsOf: try shippedGccMaskURL())))
    }

    private func gcc(_ m: [GccMaskModel], maxLag: Int, step: Int = 16,
                     taper: GCCPHATConfig.Taper = .rectangular) throws -> GCCPHAT {
        var c = GCCPHATConfig(step: step, maxLag: maxLag, taper: taper, pooling: .learned)
        c.poolingModels = m
        return try GCCPHAT(config: c)
    }

    private func gcc(_ m: GccMaskModel, maxLag: Int, step: Int = 16,
                     taper: GCCPHATConfig.Taper = .rectangular) throws -> GCCPHAT {
        try gcc([m], maxLag: maxLag, step: step, taper: taper)
    }

    /// The engine's delay of the fixture's pooled spectra equals PyTorch's
    /// (`python3 -m tded_train.gccmask fixture`) within 0.002 sample: for each network alone
    /// (with its member's decoding), and for the shipped set with its networks picked by the
    /// pooled window count (the four-network ensemble below 0.25 s, whose delays differ from
    /// its networks', decoded by the posterior median; the long network by argmax), and is near
    /// the truth on the clean clips.
    func testParityWithPyTorchOnFixtureSpectra() throws {
        let m = try shipped()
        XCTAssertEqual(m.map(\.minSpan), [0, 0, 0, 0, 4000], "the shipped model set: four networks for short pools, one from 0.25 s")
        let bands = [64, 128, 256, 512]
        XCTAssertEqual(m.map(\.headBands), [[], bands, [], bands, bands], "networks 1, 3 and 4 are format version 2 (sub-bands)")
        XCTAssertEqual(m.map(\.decoding), Array(repeating: .median(temperature: 0.7), count: 4) + [.argmax])
        XCTAssertEqual(m.map(\.dominant), [nil, nil, nil, nil, GccMaskDominantCheck(maxGap: 2, minPowerRatio: 2, spread: .init(maxGap: 4, epsilon: 0.03, minRatio: 1, minSpread: 0.55, blockWindows: 125))])
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag"), truth = try fx.floats("truth")
        let alone = try m.indices.map { try fx.floats("delay.m\($0)") }
        let set = try m.indices.map { try fx.floats("delay.set\($0)") }
        XCTAssertEqual(set[0], try fx.floats("delay"))
        let B = 1025
        XCTAssertEqual(spectra.count, truth.count * 4 * B)
        func resolve(_ est: GCCPHAT, _ i: Int, _ windows: Int) throws -> PooledEstimate {
            try XCTUnwrap(spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * B, windows: windows) }, "clip \(i)")
        }
        for n in m.indices {
            for i in 0..<truth.count {
                let d = try resolve(try gcc(m[n], maxLag: Int(lags[i])), i, 1)
                XCTAssertEqual(d.delay, Double(alone[n][i]), accuracy: 0.002, "network \(n) alone, clip \(i)")
            }
        }
        // 0.25 s = 4000 samples pooled = 187 windows of 1024 at step 16
        for (member, windows) in [(0, 1), (0, 186), (4, 187), (4, 100_000)] {
            for i in 0..<truth.count {
                let d = try resolve(try gcc(m, maxLag: Int(lags[i])), i, windows)
                print("[gccmask parity] set at \(windows) windows, clip \(i): engine \(d.delay) torch \(set[member][i]) truth \(truth[i]) conf \(d.confidence)")
                XCTAssertEqual(d.delay, Double(set[member][i]), accuracy: 0.002, "\(windows) windows, clip \(i)")
                XCTAssertTrue((0...1).contains(d.confidence))
            }
        }
        // the ensemble is neither of its networks, and the long network differs from it, by more
        // than the tolerance: the averaging and the pick are both tested
        for other in alone.prefix(4) + [set[4]] {
            XCTAssertGreaterThan(zip(set[0], other).map { abs($0 - $1) }.max() ?? 0, 0.005)
        }
        // the clean clips are within a tenth of a sample of the truth
        for i in [0, 1, 4] { XCTAssertEqual(Double(set[0][i]), Double(truth[i]), accuracy: 0.1, "clip \(i)") }
    }

    /// The posterior median (`GccMaskDecoding.median`) against a direct computation: a flat
    /// posterior's median is the middle of the search range, one point's mass is spread over its
    /// cell, the temperature sharpens toward the mode, and the answer stays inside the range.
    func testMedianDecoding() throws {
        let G = 9, step = 0.5, maxLag = 2   // grid -2, -1.5, ..., 2
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: G)
        defer { scratch.deallocate() }
        func median(_ v: [Double], _ inRange: [Bool], t: Double = 1) -> Double? {
            v.withUnsafeBufferPointer { vb in inRange.withUnsafeBufferPointer { rb in
                GccMaskDecoding.median(vb.baseAddress!, inRange: rb.baseAddress!, count: G, gridStep: step, maxLag: maxLag,
                                       temperature: t, scratch: scratch)?.1
            } }
        }
        let all = [Bool](repeating: true, count: G)
        XCTAssertEqual(try XCTUnwrap(median([Double](repeating: 3, count: G), all)), 0, accuracy: 1e-12)
        // all mass on grid point 6 (lag 1): the median is the middle of its cell
        var one = [Double](repeating: -1e4, count: G); one[6] = 0
        XCTAssertEqual(try XCTUnwrap(median(one, all)), 1, accuracy: 1e-9)
        // masses 1 and 3 at lags -1 and +1 (log 1, log 3): half of 4 = 2 lies a third into lag +1's cell
        var two = [Double](repeating: -1e4, count: G); two[2] = 0; two[6] = log(3)
        XCTAssertEqual(try XCTUnwrap(median(two, all)), 1 - 0.25 + 0.5 * (1.0 / 3), accuracy: 1e-9)
        // temperature 0.5 squares the masses (1 : 9): half of 10 = 5, 4/9 into the cell
        XCTAssertEqual(try XCTUnwrap(median(two, all, t: 0.5)), 1 - 0.25 + 0.5 * (4.0 / 9), accuracy: 1e-9)
        // points out of range carry no mass; a median at the range's edge stays inside it
        var edge = [Double](repeating: 0, count: G); edge[8] = 50
        XCTAssertEqual(try XCTUnwrap(median(edge, all)), 2, accuracy: 1e-12)
        // (range -2 ... 1.5: eight equal cells spanning -2.25 ... 1.75, whose middle is -0.25)
        XCTAssertEqual(try XCTUnwrap(median(edge, all.enumerated().map { $0.offset < 8 })), -0.25, accuracy: 1e-12)
        XCTAssertNil(median(one, [Bool](repeating: false, count: G)))
        XCTAssertNil(median([Double](repeating: .nan, count: G), all))
    }

    /// The dominant-source check: two sources, A 3x the power of B; the logits favour B's peak
    /// by 1 nat. Steering a null at each leaves the other's power times the same comb filter, so
    /// the check switches to A's peak when its ratio (3) beats `minPowerRatio` and the gap is
    /// within `maxGap`, and keeps B's otherwise.
    func testDominantSourceCheck() throws {
        let window = 16, G = 9, step = 0.5, maxLag = 2   // grid -2, -1.5, ..., 2
        let tA = 1.5, tB = -1.5, pA = 3.0, pB = 1.0
        let pooled = twoSourceSpectra(window: window, tA: tA, pA: pA, tB: tB, pB: pB)
        // the null at a source's delay removes exactly that source
        let nullA = pooled.withUnsafeBufferPointer { GccMaskDominantCheck.nullPower(t: tA, window: window, spectra: $0.baseAddress!) }
        let nullB = pooled.withUnsafeBufferPointer { GccMaskDominantCheck.nullPower(t: tB, window: window, spectra: $0.baseAddress!) }
        XCTAssertEqual(nullB / nullA, pA / pB, accuracy: 1e-4)
        var v = [Double](repeating: -5, count: G); v[1] = 0; v[7] = -1   // B's peak (lag -1.5) best, A's (1.5) 1 nat below
        let inRange = [Bool](repeating: true, count: G)
        func check(_ c: GccMaskDominantCheck) -> (Int, Double)? {
            v.withUnsafeBufferPointer { vb in inRange.withUnsafeBufferPointer { rb in
                c.louderPeak(vb.baseAddress!, inRange: rb.baseAddress!, count: G, gridStep: step, maxLag: maxLag, best: 1,
                             window: window, pooled: pooled)
            } }
        }
        let switched = try XCTUnwrap(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 2)))
        XCTAssertEqual(switched.0, 7)
        XCTAssertEqual(switched.1, tA, accuracy: 1e-12)
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 0.5, minPowerRatio: 2)), "A's peak is 1 nat below: beyond the gap")
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 4)), "A has 3x, not 4x, B's power")
        // a second peak closer than 2 samples is not a second source
        v[7] = -5; v[4] = -1
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 1)))
    }

    /// The spread rule on flat two-source spectra per block (as the trainer's test): the logits
    /// favour B by 1 nat, the null rule is off (ratio 100); A has 2.25x B's power over the clip.
    /// When A's share changes from block to block the rule switches to A; when it stays the same,
    /// or only one block holds a quarter of a block's windows, it does not.
    func testDominantCheckSpreadRule() throws {
        let window = 1024, B = window + 1, G = 193, step = 0.25, maxLag = 24
        let tA = 4.0, tB = -6.0
        func spectra(_ pA: Double, _ pB: Double) -> [Float] { twoSourceSpectra(window: window, tA: tA, pA: pA, tB: tB, pB: pB) }
        let three = spectra(3, 1)
        XCTAssertEqual(three.withUnsafeBufferPointer { GccMaskDominantCheck.demixedLogRatio(t1: tB, t2: tA, epsilon: 0.03, window: window, spectra: $0.baseAddress!) },
                       log(3), accuracy: 1e-4)
        var v = [Double](repeating: -5, count: G)
        let at = { (lag: Double) in Int(((lag + Double(maxLag)) / step).rounded()) }
        v[at(tB)] = 0; v[at(tA)] = -1
        let inRange = [Bool](repeating: true, count: G)
        let rule = GccMaskDominantCheck(maxGap: 2, minPowerRatio: 100,
                                        spread: .init(maxGap: 4, epsilon: 0.03, minRatio: 1, minSpread: 0.55, blockWindows: 125))
        func check(_ c: GccMaskDominantCheck, _ blocks: [[Float]], _ windows: [Int]) -> Double? {
            var pooled = [Float](repeating: 0, count: 4 * B)
            for b in blocks { for j in pooled.indices { pooled[j] += b[j] } }
            let flat = blocks.flatMap { $0 }
            return v.withUnsafeBufferPointer { vb in inRange.withUnsafeBufferPointer { rb in pooled.withUnsafeBufferPointer { pb in
                flat.withUnsafeBufferPointer { fb in windows.withUnsafeBufferPointer { wb in
                    c.louderPeak(vb.baseAddress!, inRange: rb.baseAddress!, count: G, gridStep: step, maxLag: maxLag, best: at(tB),
                                 window: window, pooled: pb.baseAddress!, blocks: fb.baseAddress!, blockCount: blocks.count,
                                 blockStride: 4 * B, blockWindows: wb.baseAddress!)?.1
                } }
            } } }
        }
        let varying = [4.0, 0.5, 4.0, 0.5].map { spectra($0, 1) }, steady = Array(repeating: spectra(2.25, 1), count: 4)
        XCTAssertEqual(try XCTUnwrap(check(rule, varying, [125, 125, 125, 125])), tA, accuracy: 1e-9)
        XCTAssertNil(check(rule, steady, [125, 125, 125, 125]), "a steady share is one talker and its echo")
        XCTAssertNil(check(rule, Array(varying[0..<2]), [125, 15]), "one block counts")
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 100, spread: nil), varying, [125, 125, 125, 125]))
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 100,
                                                spread: .init(maxGap: 0.5, epsilon: 0.03, minRatio: 1, minSpread: 0.55, blockWindows: 125)),
                           varying, [125, 125, 125, 125]), "beyond the rule's gap")
        XCTAssertNil(check(GccMaskDominantCheck(maxGap: 2, minPowerRatio: 100,
                                                spread: .init(maxGap: 4, epsilon: 0.03, minRatio: 3, minSpread: 0.55, blockWindows: 125)),
                           varying, [125, 125, 125, 125]), "2.25x, not 3x")
    }

    /// The shipped set's spread rule on the fixture's two long two-talker clips: given the block
    /// spectra PyTorch pooled, the engine answers as PyTorch does with and without them (the
    /// rule switches on the first clip); and the pipeline, pooling the clips' audio for
    /// `--whole`, keeps the same blocks and gives the same answer.
    func testSpreadRuleParityOnFixtureLongClips() throws {
        let m = try shipped()
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("long.spectra"), blocks = try fx.floats("long.blocks"), counts = try fx.floats("long.block_windows")
        let windows = try fx.floats("long.windows"), lags = try fx.floats("long.max_lag"), audio = try fx.floats("long.audio")
        let withBlocks = try fx.floats("long.delay"), without = try fx.floats("long.delay_without_blocks")
        let B = 1025, nb = counts.count / 2, n = audio.count / 4
        XCTAssertGreaterThan(abs(withBlocks[0] - without[0]), 1, "the rule switches on the first clip")
        for i in 0..<2 {
            let est = try gcc(m, maxLag: Int(lags[i]))
            XCTAssertEqual(est.wholeBlockWindows, 125)
            let bw = (0..<nb).map { Int(counts[i * nb + $0]) }
            let got = try XCTUnwrap(spectra.withUnsafeBufferPointer { s in blocks.withUnsafeBufferPointer { b in bw.withUnsafeBufferPointer { w in
                est.resolve(pooled: s.baseAddress! + i * 4 * B, windows: Int(windows[i]), blocks: b.baseAddress! + i * nb * 4 * B,
                            blockCount: nb, blockWindows: w.baseAddress!)
            } } })
            XCTAssertEqual(got.delay, Double(withBlocks[i]), accuracy: 0.002, "clip \(i) with blocks")
            let plain = try XCTUnwrap(spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * B, windows: Int(windows[i])) })
            XCTAssertEqual(plain.delay, Double(without[i]), accuracy: 0.002, "clip \(i) without blocks")
            // the pipeline on the audio (no high-pass: the fixture's spectra were pooled without it)
            var c = PipelineConfig()
            c.post = .pooled; c.keepAllVotes = true; c.highpassHz = 0; c.micDistance = 0.2
            let p = try TDEPipeline(estimator: try gcc(m, maxLag: Int(lags[i])), config: c)
            let left = Array(audio[(2 * i * n)..<((2 * i + 1) * n)]), right = Array(audio[((2 * i + 1) * n)..<((2 * i + 2) * n)])
            _ = p.process(left: left, right: right)
            p.finish()
            XCTAssertEqual(p.wholeResult().delaySamples, Double(withBlocks[i]), accuracy: 0.002, "clip \(i) through the pipeline")
        }
    }

    /// An ensemble of one network twice gives that network's delays and confidences.
    func testEnsembleOfOneNetworkTwiceIsThatNetwork() throws {
        let m = try shipped()
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag")
        for i in 0..<lags.count {
            let one = try gcc(m[1], maxLag: Int(lags[i])), two = try gcc([m[1], m[1]], maxLag: Int(lags[i]))
            let a = try XCTUnwrap(spectra.withUnsafeBufferPointer { one.resolve(pooled: $0.baseAddress! + i * 4 * 1025, windows: 5) })
            let b = try XCTUnwrap(spectra.withUnsafeBufferPointer { two.resolve(pooled: $0.baseAddress! + i * 4 * 1025, windows: 5) })
            XCTAssertEqual(a.delay, b.delay, accuracy: 1e-9, "clip \(i)")
            XCTAssertEqual(a.confidence, b.confidence, accuracy: 1e-12, "clip \(i)")
        }
    }

    /// The window count at which the long network takes over follows its `minSpan` and the
    /// estimator's step: `(windows - 1) x step + window >= minSpan`.
    func testMemberIsPickedByPooledSpan() throws {
        let m = try shipped()
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let spectra = try fx.floats("spectra"), lags = try fx.floats("max_lag")
        let want = [try fx.floats("delay.set0"), try fx.floats("delay.set4")]
        let i = try XCTUnwrap(want[0].indices.max { abs(want[0][$0] - want[1][$0]) < abs(want[0][$1] - want[1][$1]) })
        for (step, firstLong) in [(16, 187), (8, 373), (64, 48), (1, 2977)] {
            let est = try gcc(m, maxLag: Int(lags[i]), step: step)
            for (windows, member) in [(firstLong - 1, 0), (firstLong, 1)] {
                let d = try XCTUnwrap(spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * 1025, windows: windows) })
                XCTAssertEqual(d.delay, Double(want[member][i]), accuracy: 0.002, "step \(step), \(windows) windows")
            }
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
            let d = try XCTUnwrap(spectra.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress! + i * 4 * 1025, windows: 1) })
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
        // The pipeline passes its window count: a 72-ms clip is resolved by the ensemble of
        // networks 0-3, a 0.5-s clip by network 4 alone.
        let short = Array(m[0...3]), long = [m[4]]
        for (count, networks, others) in [(1151, short, long), (8000, long, short)] {
            let s = TestSignals.stereo(.speechLike, count: count, delay: 4.4, snrDb: 0, seed: 8)
            func whole(_ models: [GccMaskModel]) throws -> Double {
                var c = PipelineConfig()
                c.post = .pooled; c.keepAllVotes = true; c.micDistance = 0.3
                let p = try TDEPipeline(estimator: try gcc(models, maxLag: 16), config: c)
                _ = p.process(left: s.left, right: s.right)
                p.finish()
                return p.wholeResult().delaySamples
            }
            let set = try whole(m), alone = try whole(networks), other = try whole(others)
            print("[gccmask pipeline] \(count) samples: set \(set), its networks \(alone), the others \(other)")
            XCTAssertEqual(set, alone, "\(count) samples")
            XCTAssertNotEqual(alone, other, "the two choices must differ here for the pick to be tested")
            XCTAssertEqual(set, 4.4, accuracy: 0.25)
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
            let a = try XCTUnwrap(s.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!, windows: 1) })
            let b = try XCTUnwrap(sw.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!, windows: 1) })
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
        XCTAssertNil(zeros.withUnsafeBufferPointer { est.resolve(pooled: $0.baseAddress!, windows: 1) })
    }

    /// Configurations the model was not trained for are refused with one line.
    func testRefusesUntrainedConfigurations() throws {
        let m = try shipped()
        XCTAssertThrowsError(try gcc(m, maxLag: 30)) { XCTAssertTrue("\($0)".contains("wider than the model")) }
        XCTAssertThrowsError(try gcc(m, maxLag: 8, taper: .hann)) { XCTAssertTrue("\($0)".contains("rectangular")) }
        XCTAssertThrowsError(try GCCPHAT(config: GCCPHATConfig(pooling: .learned))) { XCTAssertTrue("\($0)".contains("needs its model")) }
        var c = GCCPHATConfig(window: 512, step: 16, maxLag: 8, pooling: .learned)
        c.poolingModels = m
        XCTAssertThrowsError(try GCCPHAT(config: c)) { XCTAssertTrue("\($0)".contains("512")) }
    }

    /// Bad files: an encoder model, a missing tensor, a wrong shape, non-finite weights.
    func testBadModelFilesAreRefused() throws {
        let enc = [UInt8](try Data(contentsOf: try shippedModelURL()))
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: enc)) { XCTAssertTrue("\($0)".contains("not a learned-pooling model")) }
        XCTAssertThrowsError(try GccMaskModel.members(safetensorsBytes: enc)) { XCTAssertTrue("\($0)".contains("not a learned-pooling model")) }
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: [1, 2, 3]))
        XCTAssertThrowsError(try GccMaskModel.members(safetensorsBytes: [1, 2, 3]))
        let good = [UInt8](try Data(contentsOf: try shippedGccMaskURL()))
        let f = try SafetensorsFile(bytes: good)
        // Overwrite the first weight of the second member's mask.0 with NaN: refused.
        var nan = good
        let r = try XCTUnwrap(f.tensors["m1.mask.0.weight"]).byteRange
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for i in 0..<4 { nan[r.lowerBound + i] = $0[i] } }
        XCTAssertThrowsError(try GccMaskModel.members(safetensorsBytes: nan)) { XCTAssertTrue("\($0)".contains("member 1: mask.0 has non-finite"), "\($0)") }
        // Rename a tensor in the header (same length): missing tensor.
        let key = Array("\"m1.head.0.bias\"".utf8)
        let at = try XCTUnwrap((0...(good.count - key.count)).first { Array(good[$0..<($0 + key.count)]) == key })
        var renamed = good
        renamed[at + 9] = UInt8(ascii: "9")
        XCTAssertThrowsError(try GccMaskModel.members(safetensorsBytes: renamed)) { XCTAssertTrue("\($0)".contains("head.0"), "\($0)") }
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

    /// Model sets (versions 3 and 4): members under `m<i>.`, `min_span` from 0 and never
    /// decreasing, one window and taper, one lag grid and one decoding per ensemble, `decode`
    /// only in version 4; a set is not a single network; stray tensors are refused.
    func testModelSetHeaderIsChecked() throws {
        let f = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: try shippedGccMaskURL())))
        let tensors = try f.tensors.keys.sorted().map { ($0, f.tensors[$0]!.shape, try f.floats($0)) }
        let header = try XCTUnwrap(f.metadata[GccMaskModel.metadataKey])
        func bytes(_ tensors: [(String, [Int], [Float])], _ edit: (inout [String: Any], inout [[String: Any]]) -> Void) throws -> [UInt8] {
            var h = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any])
            var members = try XCTUnwrap(h["members"] as? [[String: Any]])
            edit(&h, &members)
            if h["members"] != nil { h["members"] = members }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: h), as: UTF8.self)
            return makeSafetensors(tensors, metadata: [GccMaskModel.metadataKey: json])
        }
        func set(_ edit: (inout [String: Any], inout [[String: Any]]) -> Void) throws -> [GccMaskModel] {
            try GccMaskModel.members(safetensorsBytes: try bytes(tensors, edit))
        }
        XCTAssertEqual(try set { _, _ in }.map(\.minSpan), [0, 0, 0, 0, 4000])
        XCTAssertThrowsError(try GccMaskModel(safetensorsBytes: try bytes(tensors) { _, _ in })) { XCTAssertTrue("\($0)".contains("model set"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[0]["min_span"] = 16 }) { XCTAssertTrue("\($0)".contains("first member"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[3]["min_span"] = 16; m[4]["min_span"] = 8 }) { XCTAssertTrue("\($0)".contains("must not decrease"), "\($0)") }
        XCTAssertEqual(try set { _, m in m[4]["min_span"] = 0; m[4]["decode"] = m[0]["decode"] }.map(\.minSpan), [0, 0, 0, 0, 0], "five networks, one ensemble")
        XCTAssertThrowsError(try set { _, m in m[1]["max_lag"] = 20 }) { XCTAssertTrue("\($0)".contains("member 1: an ensemble"), "\($0)") }
        XCTAssertEqual(try set { _, m in m[4]["max_lag"] = 20 }.map(\.maxLag), [24, 24, 24, 24, 20], "networks for other spans may have their own grid")
        // decoding: one rule per ensemble, a known rule, a temperature in range, version 4 only
        XCTAssertThrowsError(try set { _, m in m[4]["min_span"] = 0 }) { XCTAssertTrue("\($0)".contains("member 4: an ensemble") && "\($0)".contains("decoding"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[2]["decode"] = ["rule": "median", "temperature": 1.0] }) { XCTAssertTrue("\($0)".contains("member 2: an ensemble"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in for i in 0..<4 { m[i]["decode"] = ["rule": "mean", "temperature": 1.0] } }) { XCTAssertTrue("\($0)".contains("member 0: decode 'mean'"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in for i in 0..<4 { m[i]["decode"] = ["rule": "median", "temperature": 0.0] } }) { XCTAssertTrue("\($0)".contains("0.05...20"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in for i in 0..<4 { m[i]["decode"] = ["rule": "median"] } }) { XCTAssertTrue("\($0)".contains("temperature"), "\($0)") }
        XCTAssertThrowsError(try set { h, _ in h["version"] = 3 }) { XCTAssertTrue("\($0)".contains("member 0: 'decode' needs a model set of version 4"), "\($0)") }
        XCTAssertEqual(try set { h, m in h["version"] = 3; for i in 0..<5 { m[i].removeValue(forKey: "decode") } }.map(\.decoding),
                       Array(repeating: .argmax, count: 5), "version 3: argmax")
        XCTAssertEqual(try set { _, m in m[4]["decode"] = ["rule": "median", "temperature": 2.0] }.map(\.decoding).last, .median(temperature: 2.0))
        // the dominant-source check: with the argmax rule only, both numbers in range
        XCTAssertEqual(try set { _, _ in }.last?.dominant, GccMaskDominantCheck(maxGap: 2, minPowerRatio: 2, spread: .init(maxGap: 4, epsilon: 0.03, minRatio: 1, minSpread: 0.55, blockWindows: 125)))
        XCTAssertEqual(try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0, "min_power_ratio": 2.0]] }.last?.dominant,
                       GccMaskDominantCheck(maxGap: 2, minPowerRatio: 2), "without a spread rule (v9)")
        for bad: [String: Any] in [["max_gap": 4.0, "epsilon": 0.0, "min_ratio": 1.0, "min_spread": 0.5, "block_windows": 125],
                                   ["max_gap": 4.0, "epsilon": 0.03, "min_ratio": 1.0, "min_spread": 0.5, "block_windows": 4],
                                   ["max_gap": 60.0, "epsilon": 0.03, "min_ratio": 1.0, "min_spread": 0.5, "block_windows": 125],
                                   ["max_gap": 4.0, "epsilon": 0.03, "min_ratio": 1.0]] {
            XCTAssertThrowsError(try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0, "min_power_ratio": 2.0, "spread": bad]] }) {
                XCTAssertTrue("\($0)".contains("member 4: decode 'dominant.spread' needs"), "\($0)")
            }
        }
        XCTAssertThrowsError(try set { _, m in m[4]["decode"] = ["rule": "median", "temperature": 1.0, "dominant": ["max_gap": 2.0, "min_power_ratio": 2.0]] }) {
            XCTAssertTrue("\($0)".contains("member 4: decode 'dominant' needs the argmax rule"), "\($0)")
        }
        XCTAssertThrowsError(try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0]] }) { XCTAssertTrue("\($0)".contains("min_power_ratio"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0, "min_power_ratio": 0.5]] }) { XCTAssertTrue("\($0)".contains("1...100"), "\($0)") }
        // blocks are kept for at most TDEPipeline.maxWholeBlocks blocks; a longer stream is
        // resolved without them (here blocks of 8 windows: 480 blocks = 3840 windows). The
        // fixture's first long clip, on which the spread rule switches, tiled 7 times (3437
        // windows) and 8 times (3937).
        let spread: [String: Any] = ["max_gap": 4.0, "epsilon": 0.03, "min_ratio": 1.0, "min_spread": 0.55, "block_windows": 8]
        let small = try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0, "min_power_ratio": 2.0, "spread": spread]] }
        let plain = try set { _, m in m[4]["decode"] = ["rule": "argmax", "dominant": ["max_gap": 2.0, "min_power_ratio": 2.0]] }
        let fx = try SafetensorsFile(bytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_fixture.safetensors"))))
        let audio = try fx.floats("long.audio"), n = audio.count / 4
        func whole(_ models: [GccMaskModel], tiles: Int) throws -> Double {
            var c = PipelineConfig()
            c.post = .pooled; c.keepAllVotes = true; c.highpassHz = 0; c.micDistance = 0.2
            let p = try TDEPipeline(estimator: try gcc(models, maxLag: 12), config: c)
            let left = Array(audio[0..<n]), right = Array(audio[n..<(2 * n)])
            for _ in 0..<tiles { _ = p.process(left: left, right: right) }
            p.finish()
            return p.wholeResult().delaySamples
        }
        XCTAssertEqual(TDEPipeline.maxWholeBlocks, 480)
        XCTAssertGreaterThan(abs(try whole(small, tiles: 7) - (try whole(plain, tiles: 7))), 1, "under the cap the blocks count")
        XCTAssertEqual(try whole(small, tiles: 8), try whole(plain, tiles: 8), "over the cap they are dropped")
        XCTAssertThrowsError(try set { _, m in m[1].removeValue(forKey: "min_span") }) { XCTAssertTrue("\($0)".contains("min_span missing"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[1]["taper"] = "hann" }) { XCTAssertTrue("\($0)".contains("differ from member 0"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m[1]["version"] = 3 }) { XCTAssertTrue("\($0)".contains("member 1: version 3"), "\($0)") }
        XCTAssertThrowsError(try set { h, _ in h.removeValue(forKey: "members") }) { XCTAssertTrue("\($0)".contains("without 'members'"), "\($0)") }
        XCTAssertThrowsError(try set { _, m in m = [] }) { XCTAssertTrue("\($0)".contains("0 members"), "\($0)") }
        // two members only: the tensors of member 2 are strays
        XCTAssertThrowsError(try set { _, m in m.removeLast() }) { XCTAssertTrue("\($0)".contains("unexpected tensor 'm4."), "\($0)") }
        // a member's tensor missing
        let missing = tensors.filter { $0.0 != "m4.head.2.bias" }
        XCTAssertThrowsError(try GccMaskModel.members(safetensorsBytes: try bytes(missing) { _, _ in })) {
            XCTAssertTrue("\($0)".contains("member 4") && "\($0)".contains("head.2.bias"), "\($0)")
        }
        // a single-network file is a one-member list
        let live = try GccMaskModel.members(safetensorsBytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_live_model.safetensors"))))
        XCTAssertEqual(live.map(\.minSpan), [0])
        // the engine refuses member lists whose minimum spans decrease
        var c = GCCPHATConfig(step: 16, maxLag: 8, pooling: .learned)
        let m = try shipped()
        c.poolingModels = [m[4], m[0]]
        XCTAssertThrowsError(try GCCPHAT(config: c)) { XCTAssertTrue("\($0)".contains("must not decrease"), "\($0)") }
    }

    /// The hold threshold follows the weighting: a pipeline with the learned weighting flags
    /// updates below `learnedMinConfidence` (0.3) low-confidence and holds the published delay
    /// there, a classical one only below 0.05; `PipelineConfig.minConfidence` overrides both.
    func testLearnedWeightingHoldsBelowItsOwnThreshold() throws {
        let m = try GccMaskModel(safetensorsBytes: [UInt8](try Data(contentsOf: EncoderFixture.fixtureURL("gccmask_live_model.safetensors"))))
        var c = PipelineConfig()
        c.post = .pooled; c.memorySeconds = 0.2; c.micDistance = 0.3
        let learned = try gcc(m, maxLag: 16, taper: .hann)
        XCTAssertEqual(learned.defaultMinConfidence, PipelineConfig.learnedMinConfidence)
        XCTAssertEqual(PipelineConfig.learnedMinConfidence, 0.3)
        let classical = try GCCPHAT(config: GCCPHATConfig(step: 16, maxLag: 16, taper: .hann, pooling: .phat(beta: 1)))
        XCTAssertEqual(classical.defaultMinConfidence, PipelineConfig.classicalMinConfidence)
        XCTAssertEqual(try TDEPipeline(estimator: learned, config: c).minConfidence, 0.3)
        XCTAssertEqual(try TDEPipeline(estimator: classical, config: c).minConfidence, 0.05)
        // 1 s of a source at +3 samples, then 1 s of weak sound at -6 samples in loud noise: the
        // second second's updates with confidences in [0.05, 0.3) are held by the learned pipeline
        let a = TestSignals.stereo(.speechLike, count: 16000, delay: 3, snrDb: 20, seed: 5)
        let b = TestSignals.stereo(.white, count: 16000, delay: -6, snrDb: -12, seed: 6)
        let left = a.left + b.left, right = a.right + b.right
        var held = 0
        for (p, threshold) in [(try TDEPipeline(estimator: learned, config: c), 0.3),
                               (try TDEPipeline(estimator: try gcc(m, maxLag: 16, taper: .hann), config: { var o = c; o.minConfidence = 0.05; return o }()), 0.05)] {
            for u in p.process(left: left, right: right) where u.votes > 0 && !u.flags.contains(.silent) {
                XCTAssertEqual(u.flags.contains(.lowConfidence), u.confidence < threshold, "t \(u.t) confidence \(u.confidence)")
                if u.confidence < 0.3 && u.confidence >= 0.05 && threshold == 0.3 {
                    XCTAssertTrue(u.flags.contains(.holding)); held += 1
                }
            }
        }
        XCTAssertGreaterThan(held, 0, "no update between the two thresholds: the test signal proves nothing")
    }

    func testLearnedPoolingNameRoundTrips() {
        XCTAssertEqual(GCCPHATConfig.PoolWeighting(parsing: "learned"), .learned)
        XCTAssertEqual(GCCPHATConfig.PoolWeighting.learned.name, "learned")
        XCTAssertTrue(GCCPHATConfig.PoolWeighting.learned.needsAutoSpectra)
        XCTAssertNil(GCCPHATConfig.PoolWeighting(parsing: "learned+snr"))
    }
}

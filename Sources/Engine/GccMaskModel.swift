// GccMaskModel.swift: the learned pooled-GCC weighting (`pooling = learned`), as read from its
// `.safetensors` file (docs/gccmask-spec.md, written by train/tded_train/gccmask.py).
import Foundation

/// A malformed learned-pooling model; `description` is one line.
public struct GccMaskModelError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Weights of the learned pooled-GCC weighting: a 1-D CNN over frequency that gives each bin of
/// the pooled cross spectrum a weight in (0, 1), a learned PHAT exponent, and a 1-D CNN over
/// the lag grid that corrects the weighted correlation's logits (see `GccMaskEvaluator`).
/// Immutable; shared between estimators.
public final class GccMaskModel: Equatable, Sendable {
    /// One `Conv1d` (PyTorch layout `[out, in, kernel]`, zero "same" padding).
    public struct Conv: Sendable {
        public let inChannels: Int, outChannels: Int, kernel: Int
        public let weight: [Float], bias: [Float]
    }

    /// Analysis window the model was trained for (samples; FFT 2 x window).
    public let window: Int
    /// The window shape of the pooled spectra it was trained on: rectangular for one estimate
    /// over a whole clip (`--whole`), Hann for per-update (live) estimates.
    public let taper: GCCPHATConfig.Taper
    /// Mask inputs per bin: 4 (levels, frequency) or 5 (plus the pooled coherence).
    public let maskInputs: Int
    /// Sample rate the model was trained for.
    public let sampleRate: Int
    /// The lag grid: `-maxLag ... maxLag` in steps of `gridStep` samples.
    public let maxLag: Int
    public let gridStep: Double
    /// Frequency CNN (`maskInputs` inputs per bin, 1 output: the weight's logit).
    public let mask: [Conv]
    /// Lag CNN (3 inputs per grid point: correlation, in-range flag, lag / maxLag; then, with
    /// `headBands`, one sub-band correlation per band; 1 output).
    public let head: [Conv]
    /// Inner edges (bins, increasing) that split the weighted spectrum into sub-bands whose
    /// correlations, each normalised on its own, the head also sees; empty: none (version 1).
    public let headBands: [Int]
    /// The PHAT exponent: bins are weighted by `w_k / |G_k|^beta`.
    public let beta: Float
    /// log of the scale of the correlation in the logits.
    public let temp: Float
    /// Grid points (`2 * maxLag / gridStep + 1`).
    public var gridCount: Int { Int((Double(2 * maxLag) / gridStep).rounded()) + 1 }

    /// The shortest pooled span (samples, `(windows - 1) x step + window`) this network is for:
    /// 0 for a single-network file; in a model set (versions 3 and 4) each member takes the spans from
    /// its `minSpan` up to the next larger one (members with equal `minSpan` together).
    public let minSpan: Int
    /// How this network's logits (or, in an ensemble, the members' mean log-probabilities)
    /// become a delay: `argmax` unless a model set of version 4 names a rule for the member.
    public let decoding: GccMaskDecoding
    /// The dominant-source check after the argmax, when a model set of version 4 names one for
    /// the member (`decode.dominant`); nil otherwise.
    public let dominant: GccMaskDominantCheck?

    public static func == (a: GccMaskModel, b: GccMaskModel) -> Bool { a === b }

    private struct Header: Decodable {
        let format: String
        let version: Int
        let sample_rate: Int
        let window: Int
        let nfft: Int
        let taper: String
        let max_lag: Int
        let grid_step: Double
        let mask_inputs: Int?
        let mask_layers: Int
        let mask_kernel: Int
        let mask_channels: Int
        let head_layers: Int
        let head_kernel: Int
        let head_channels: Int
        let head_bands: [Int]?
        let min_span: Int?
        let decode: Decode?
    }

    /// A member's decoding rule (model sets of version 4).
    private struct Decode: Decodable {
        let rule: String
        let temperature: Double?
        let dominant: Dominant?
    }

    /// A member's dominant-source check (`decode.dominant`).
    private struct Dominant: Decodable {
        let max_gap: Double?
        let min_power_ratio: Double?
        let spread: Spread?
    }

    /// The dominant-source check's spread rule (`decode.dominant.spread`).
    private struct Spread: Decodable {
        let max_gap: Double?
        let epsilon: Double?
        let min_ratio: Double?
        let min_spread: Double?
        let block_windows: Int?
    }

    /// The header of a model set (versions 3 and 4): member headers (each a version 1 or 2 header
    /// plus `min_span`, and in version 4 an optional `decode`), whose tensors carry the prefix
    /// `m<index>.`.
    private struct SetHeader: Decodable {
        let format: String
        let version: Int
        let members: [Header]?
    }

    /// Metadata key of the JSON header.
    public static let metadataKey = "tded_gccmask"
    public static let format = "tded-gccmask"
    /// Most members of a model set.
    public static let maxMembers = 8

    /// Reads and validates a single-network model (version 1 or 2) from a parsed file; a model
    /// set (version 3 or 4) is read with `members(file:)`.
    public convenience init(file: SafetensorsFile) throws {
        let (version, headers) = try Self.headers(file)
        guard version <= 2 else {
            throw GccMaskModelError("a model set of \(headers.count) networks (version \(version)): load it with GccMaskModel.members(file:)")
        }
        guard headers[0].decode == nil else { throw GccMaskModelError("'decode' belongs to a model set's members (version 4)") }
        try self.init(header: headers[0], file: file, prefix: "", minSpan: 0, decoding: .argmax, dominant: nil)
        try Self.checkTensorNames(file, [self], prefixes: [""])
    }

    /// The networks of a model file in non-decreasing `minSpan` order: one for versions 1 and
    /// 2, each member of a model set (versions 3 and 4). The engine uses, for a pooled span, the
    /// members with the largest `minSpan` it reaches: one network, or an ensemble of those
    /// sharing that `minSpan` (`GccMaskEnsemble`), decoded by their `decoding`.
    public static func members(file: SafetensorsFile) throws -> [GccMaskModel] {
        let (version, headers) = try headers(file)
        guard version >= 3 else { return [try GccMaskModel(file: file)] }
        func bad(_ s: String) -> GccMaskModelError { GccMaskModelError(s) }
        guard (1...maxMembers).contains(headers.count) else {
            throw bad("model set: \(headers.count) members, expected 1...\(maxMembers)")
        }
        var out: [GccMaskModel] = []
        for (i, h) in headers.enumerated() {
            guard h.version == 1 || h.version == 2 else { throw bad("model set member \(i): version \(h.version), expected 1 or 2") }
            guard let span = h.min_span, (0...(1 << 24)).contains(span) else {
                throw bad("model set member \(i): min_span missing or outside 0...16777216 samples")
            }
            guard i > 0 || span == 0 else { throw bad("model set: the first member's min_span is \(span), expected 0") }
            guard i == 0 || span >= out[i - 1].minSpan else {
                throw bad("model set: min_span must not decrease from member to member (member \(i): \(span))")
            }
            let decoding: GccMaskDecoding
            switch (h.decode?.rule, h.decode?.temperature) {
            case (nil, _): decoding = .argmax
            case (_, _) where version < 4: throw bad("model set member \(i): 'decode' needs a model set of version 4")
            case ("argmax", _): decoding = .argmax
            case ("median", let t?) where GccMaskDecoding.temperatureRange.contains(t): decoding = .median(temperature: t)
            case (let rule?, let t):
                throw bad("model set member \(i): decode '\(rule)'\(t.map { " at temperature \($0)" } ?? ""): expected 'argmax', or 'median' with a temperature in 0.05...20")
            }
            var dominant: GccMaskDominantCheck?
            if let d = h.decode?.dominant {
                guard decoding == .argmax, let gap = d.max_gap, let ratio = d.min_power_ratio,
                      (0...50).contains(gap), (1...100).contains(ratio) else {
                    throw bad("model set member \(i): decode 'dominant' needs the argmax rule, max_gap in 0...50 and min_power_ratio in 1...100")
                }
                var spread: GccMaskDominantCheck.Spread?
                if let sp = d.spread {
                    guard let g = sp.max_gap, let e = sp.epsilon, let r = sp.min_ratio, let sd = sp.min_spread,
                          let bw = sp.block_windows, (0...50).contains(g), e > 0 && e <= 1, (1...100).contains(r),
                          sd > 0 && sd <= 20, (8...100_000).contains(bw) else {
                        throw bad("model set member \(i): decode 'dominant.spread' needs max_gap in 0...50, epsilon in (0, 1], min_ratio in 1...100, min_spread in (0, 20] and block_windows in 8...100000")
                    }
                    spread = GccMaskDominantCheck.Spread(maxGap: g, epsilon: e, minRatio: r, minSpread: sd, blockWindows: bw)
                }
                dominant = GccMaskDominantCheck(maxGap: gap, minPowerRatio: ratio, spread: spread)
            }
            let m: GccMaskModel
            do { m = try GccMaskModel(header: h, file: file, prefix: "m\(i).", minSpan: span, decoding: decoding, dominant: dominant) } catch let e as GccMaskModelError {
                throw bad("model set member \(i): \(e.description)")
            }
            guard i == 0 || (m.window == out[0].window && m.taper == out[0].taper) else {
                throw bad("model set member \(i): window \(m.window) / taper \(m.taper.rawValue) differ from member 0's (\(out[0].window) / \(out[0].taper.rawValue))")
            }
            guard i == 0 || span != out[i - 1].minSpan || (m.maxLag == out[i - 1].maxLag && m.gridStep == out[i - 1].gridStep) else {
                throw bad("model set member \(i): an ensemble (same min_span as member \(i - 1)) needs member \(i - 1)'s lag grid")
            }
            guard i == 0 || span != out[i - 1].minSpan || (m.decoding == out[i - 1].decoding && m.dominant == out[i - 1].dominant) else {
                throw bad("model set member \(i): an ensemble (same min_span as member \(i - 1)) needs member \(i - 1)'s decoding")
            }
            out.append(m)
        }
        try checkTensorNames(file, out, prefixes: out.indices.map { "m\($0)." })
        return out
    }

    /// Parses and validates every network of a model file from its bytes (see `members(file:)`).
    public static func members(safetensorsBytes bytes: [UInt8]) throws -> [GccMaskModel] {
        let f: SafetensorsFile
        do { f = try SafetensorsFile(bytes: bytes) } catch let e as SafetensorsError {
            throw GccMaskModelError("\(e)")
        }
        return try members(file: f)
    }

    /// The file's version and its network headers (one, or a set's members).
    private static func headers(_ file: SafetensorsFile) throws -> (Int, [Header]) {
        func bad(_ s: String) -> GccMaskModelError { GccMaskModelError(s) }
        guard let json = file.metadata[metadataKey] else {
            throw bad("no '\(metadataKey)' metadata: not a learned-pooling model (an encoder model goes to --model)")
        }
        let top: SetHeader
        do { top = try JSONDecoder().decode(SetHeader.self, from: Data(json.utf8)) } catch {
            throw bad("malformed '\(metadataKey)' metadata")
        }
        guard top.format == format else { throw bad("format '\(top.format)', expected '\(format)'") }
        switch top.version {
        case 1, 2:
            do { return (top.version, [try JSONDecoder().decode(Header.self, from: Data(json.utf8))]) } catch {
                throw bad("malformed '\(metadataKey)' metadata")
            }
        case 3, 4:
            guard let m = top.members else { throw bad("model set (version \(top.version)) without 'members'") }
            return (top.version, m)
        default:
            throw bad("version \(top.version), expected 1, 2, 3 or 4")
        }
    }

    /// Every tensor of the file belongs to one of the networks (under its prefix).
    private static func checkTensorNames(_ file: SafetensorsFile, _ nets: [GccMaskModel], prefixes: [String]) throws {
        var expected = Set<String>()
        for (net, p) in zip(nets, prefixes) {
            expected.formUnion((0..<net.mask.count).flatMap { ["\(p)mask.\($0).weight", "\(p)mask.\($0).bias"] })
            expected.formUnion((0..<net.head.count).flatMap { ["\(p)head.\($0).weight", "\(p)head.\($0).bias"] })
            expected.formUnion(["\(p)beta", "\(p)temp"])
        }
        if let extra = file.tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw GccMaskModelError("unexpected tensor '\(extra)'")
        }
    }

    /// One network: its header and its tensors under `prefix`.
    private init(header h: Header, file: SafetensorsFile, prefix: String, minSpan: Int, decoding: GccMaskDecoding,
                 dominant: GccMaskDominantCheck?) throws {
        func bad(_ s: String) -> GccMaskModelError { GccMaskModelError(s) }
        guard h.format == Self.format else { throw bad("format '\(h.format)', expected '\(Self.format)'") }
        guard h.version == 1 || h.version == 2 else { throw bad("version \(h.version), expected 1 or 2") }
        guard h.sample_rate == 16000 else { throw bad("sample_rate \(h.sample_rate), expected 16000") }
        guard (16...8192).contains(h.window), h.nfft == 2 * h.window else {
            throw bad("window \(h.window) / nfft \(h.nfft): expected a window of 16...8192 and nfft = 2 x window")
        }
        guard let taper = GCCPHATConfig.Taper(rawValue: h.taper) else { throw bad("taper '\(h.taper)', expected 'rectangular' or 'hann'") }
        let inputs = h.mask_inputs ?? 4
        guard inputs == 4 || inputs == 5 else { throw bad("mask_inputs \(inputs), expected 4 or 5") }
        guard (1...256).contains(h.max_lag), h.max_lag < h.window else { throw bad("max_lag \(h.max_lag) must be in 1...256") }
        guard h.grid_step > 0, h.grid_step <= 1, (1 / h.grid_step).rounded() == 1 / h.grid_step else {
            throw bad("grid_step \(h.grid_step) must be 1/n")
        }
        func tensor(_ name: String) throws -> [Float] {
            do { return try file.floats(prefix + name) } catch let e as SafetensorsError { throw bad("\(e)") }
        }
        func stack(_ name: String, layers: Int, kernel: Int, channels: Int, inputs: Int) throws -> [Conv] {
            guard (1...16).contains(layers), (1...63).contains(kernel), kernel % 2 == 1, (1...256).contains(channels) else {
                throw bad("\(name): \(layers) layers, kernel \(kernel), \(channels) channels: expected 1...16 layers, an odd kernel up to 63, 1...256 channels")
            }
            var out: [Conv] = []
            for i in 0..<layers {
                let cin = i == 0 ? inputs : channels, cout = i == layers - 1 ? 1 : channels
                let w = try tensor("\(name).\(i).weight"), b = try tensor("\(name).\(i).bias")
                guard w.count == cout * cin * kernel, b.count == cout else {
                    throw bad("\(name).\(i): \(w.count) weights and \(b.count) biases, expected \(cout * cin * kernel) and \(cout)")
                }
                guard w.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else { throw bad("\(name).\(i) has non-finite weights") }
                out.append(Conv(inChannels: cin, outChannels: cout, kernel: kernel, weight: w, bias: b))
            }
            return out
        }
        let mask = try stack("mask", layers: h.mask_layers, kernel: h.mask_kernel, channels: h.mask_channels, inputs: inputs)
        let bands = h.head_bands ?? []
        guard h.version == 2 || bands.isEmpty else { throw bad("head_bands needs version 2") }
        guard bands.count <= 16, zip([0] + bands, bands + [h.window + 1]).allSatisfy({ $0 < $1 }) else {
            throw bad("head_bands \(bands): expected at most 16 increasing bin edges inside 1...\(h.window)")
        }
        let head = try stack("head", layers: h.head_layers, kernel: h.head_kernel, channels: h.head_channels,
                             inputs: 3 + (bands.isEmpty ? 0 : bands.count + 1))
        let beta = try tensor("beta"), temp = try tensor("temp")
        guard beta.count == 1, temp.count == 1, (0...1.5).contains(beta[0]), temp[0].isFinite, abs(temp[0]) < 20 else {
            throw bad("beta \(beta) / temp \(temp): expected one beta in 0...1.5 and one finite temp")
        }
        window = h.window; self.taper = taper; maskInputs = inputs; sampleRate = h.sample_rate; maxLag = h.max_lag; gridStep = h.grid_step
        self.mask = mask; self.head = head; headBands = bands; self.beta = beta[0]; self.temp = temp[0]
        self.minSpan = minSpan
        self.decoding = decoding
        self.dominant = dominant
    }

    /// Parses and validates a model from the file's bytes.
    public convenience init(safetensorsBytes bytes: [UInt8]) throws {
        let f: SafetensorsFile
        do { f = try SafetensorsFile(bytes: bytes) } catch let e as SafetensorsError {
            throw GccMaskModelError("\(e)")
        }
        try self.init(file: f)
    }
}

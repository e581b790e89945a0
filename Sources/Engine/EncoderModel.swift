// The learned streaming encoder's description and weights (docs/encoder-spec.md), read from a
// safetensors export and validated so the forward pass can trust every dimension.

import Foundation

/// Why a model file was rejected. `description` is one line.
public enum EncoderModelError: Error, CustomStringConvertible, Equatable {
    /// The safetensors container itself is broken.
    case container(SafetensorsError)
    /// `__metadata__["tded_model"]` is absent.
    case missingMetadata
    /// The `tded_model` JSON is malformed or of the wrong format/version.
    case badMetadata(String)
    /// The description is internally inconsistent or does not match the tensors.
    case invalid(String)

    public var description: String {
        switch self {
        case .container(let e): return "model file: \(e.description)"
        case .missingMetadata:
            return "model file: no '__metadata__.tded_model' header (not a tded-stream-encoder export)"
        case .badMetadata(let why): return "model file: bad tded_model header: \(why)"
        case .invalid(let why): return "model file: \(why)"
        }
    }
}

/// One causal dilated convolution over columns (spec "Layers").
public struct EncoderLayer: Equatable {
    /// Activation applied after the bias.
    public enum Activation: String { case relu, none }
    /// Input channels (`n_fft` for the first layer).
    public let inChannels: Int
    /// Output channels.
    public let outChannels: Int
    /// Taps; tap `kernel - 1` is the newest input.
    public let kernel: Int
    /// Dilation in samples (a multiple of the model's hop).
    public let dilation: Int
    /// Applied after the bias.
    public let activation: Activation
    /// Weight in PyTorch order `[out, in, kernel]`, C order.
    public let weight: [Float]
    /// Bias `[out]`.
    public let bias: [Float]

    /// Creates a layer; shapes are checked by `EncoderModel`'s initialiser.
    public init(inChannels: Int, outChannels: Int, kernel: Int, dilation: Int,
                activation: Activation, weight: [Float], bias: [Float]) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.dilation = dilation
        self.activation = activation
        self.weight = weight
        self.bias = bias
    }

    /// Weight element `W[o, i, j]`.
    @inlinable public func w(_ o: Int, _ i: Int, _ j: Int) -> Float {
        weight[(o * inChannels + i) * kernel + j]
    }
}

/// A validated streaming encoder: hyper-parameters from the `tded_model` header plus weights.
public struct EncoderModel {
    /// Audio sample rate the model was trained for, Hz.
    public let sampleRate: Int
    /// STFT frame length (columns carry `nFFT / 2` bins).
    public let nFFT: Int
    /// Spacing of the pooled outputs, samples; every dilation is a multiple of it.
    public let hop: Int
    /// Window length, samples.
    public let window: Int
    /// Softmax temperature of the affinities.
    public let tau: Float
    /// Largest delay (samples) in the affinity band.
    public let maxDelay: Int
    /// Partial-PHAT exponent applied to each column, in [0, 1].
    public let phatBeta: Float
    /// Whether each column is RMS-normalised over its bins.
    public let columnNorm: Bool
    /// The causal convolutions, first to last.
    public let layers: [EncoderLayer]
    /// Training objective recorded in the header ("stereocrw", "none", ...); informational.
    public let objective: String

    /// Feature vector length per column: real and imaginary parts of n_fft/2 bins.
    public var featureDim: Int { nFFT }
    /// Embedding length (last layer's output channels).
    public var embeddingDim: Int { layers.last!.outChannels }
    /// Receptive-field offset R = sum (k_i - 1) * dilation_i, in samples.
    public var receptiveField: Int { layers.reduce(0) { $0 + ($1.kernel - 1) * $1.dilation } }
    /// Number of pooled last-layer outputs per window, M.
    public var poolCount: Int { (window - nFFT - receptiveField) / hop + 1 }
    /// Multiply-adds per column through all layers.
    public var macsPerColumn: Int { layers.reduce(0) { $0 + $1.inChannels * $1.outChannels * $1.kernel } }

    /// Builds and validates a model from parts (used by tests and by the file reader).
    public init(sampleRate: Int, nFFT: Int, hop: Int, window: Int, tau: Float, maxDelay: Int,
                phatBeta: Float, columnNorm: Bool, layers: [EncoderLayer],
                objective: String = "none") throws {
        func bad(_ s: String) -> EncoderModelError { .invalid(s) }
        guard sampleRate > 0 else { throw bad("sample_rate \(sampleRate) must be positive") }
        guard nFFT >= 4, nFFT % 2 == 0, nFFT <= 1 << 16 else {
            throw bad("n_fft \(nFFT) must be even, in 4...65536")
        }
        guard hop >= 1, hop <= nFFT else { throw bad("hop \(hop) must be in 1...n_fft") }
        guard window >= nFFT, window <= 1 << 20 else {
            throw bad("window \(window) must be in n_fft...1048576")
        }
        guard tau.isFinite, tau > 0 else { throw bad("tau \(tau) must be a positive number") }
        guard maxDelay >= 0, maxDelay <= window else { throw bad("max_delay \(maxDelay) must be in 0...window") }
        guard phatBeta.isFinite, phatBeta >= 0, phatBeta <= 1 else {
            throw bad("phat_beta \(phatBeta) must be in [0, 1]")
        }
        guard !layers.isEmpty, layers.count <= 64 else { throw bad("need 1...64 layers, got \(layers.count)") }
        var rf = 0
        for (i, l) in layers.enumerated() {
            let expectIn = i == 0 ? nFFT : layers[i - 1].outChannels
            guard l.inChannels == expectIn else {
                throw bad("layer \(i) has \(l.inChannels) inputs, expected \(expectIn)"
                          + (i == 0 ? " (= n_fft: re and im of n_fft/2 bins)" : " (previous layer's outputs)"))
            }
            guard l.outChannels >= 1, l.outChannels <= 1 << 14 else {
                throw bad("layer \(i) out \(l.outChannels) must be in 1...16384")
            }
            guard l.kernel >= 1, l.kernel <= 64 else { throw bad("layer \(i) kernel \(l.kernel) must be in 1...64") }
            guard l.dilation >= 1, l.dilation % hop == 0, l.dilation <= window else {
                throw bad("layer \(i) dilation \(l.dilation) must be a positive multiple of hop \(hop)")
            }
            guard l.weight.count == l.outChannels * l.inChannels * l.kernel else {
                throw bad("layer \(i) weight has \(l.weight.count) values, expected "
                          + "[\(l.outChannels), \(l.inChannels), \(l.kernel)]")
            }
            guard l.bias.count == l.outChannels else {
                throw bad("layer \(i) bias has \(l.bias.count) values, expected \(l.outChannels)")
            }
            guard l.weight.allSatisfy({ $0.isFinite }), l.bias.allSatisfy({ $0.isFinite }) else {
                throw bad("layer \(i) has non-finite weights")
            }
            rf += (l.kernel - 1) * l.dilation
        }
        guard window - nFFT - rf >= 0 else {
            throw bad("receptive field \(rf) + n_fft \(nFFT) exceeds the window \(window)")
        }
        // Streaming state (per channel, at step 1): each layer keeps (k-1)*dilation input
        // columns, the pooling keeps the last window's outputs. Refuse absurd headers before
        // anything is allocated for them.
        let state = layers.reduce(0) { $0 + $1.inChannels * ($1.kernel - 1) * $1.dilation }
            + layers.last!.outChannels * window
        guard state <= 1 << 26 else {
            throw bad("streaming state of \(state) floats per channel is too large (limit \(1 << 26))")
        }
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.hop = hop
        self.window = window
        self.tau = tau
        self.maxDelay = maxDelay
        self.phatBeta = phatBeta
        self.columnNorm = columnNorm
        self.layers = layers
        self.objective = objective
    }

    /// Reads a model from the bytes of a `.safetensors` export.
    public init(safetensorsBytes bytes: [UInt8]) throws {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(bytes: bytes) } catch let e as SafetensorsError {
            throw EncoderModelError.container(e)
        }
        try self.init(file: file)
    }

    /// Reads a model from a parsed safetensors file.
    public init(file: SafetensorsFile) throws {
        guard let json = file.metadata["tded_model"] else { throw EncoderModelError.missingMetadata }
        let h: ModelHeader
        do {
            h = try JSONDecoder().decode(ModelHeader.self, from: Data(json.utf8))
        } catch let e as DecodingError {
            throw EncoderModelError.badMetadata(Self.describe(e))
        } catch {
            throw EncoderModelError.badMetadata("\(error)")
        }
        guard h.format == "tded-stream-encoder" else {
            throw EncoderModelError.badMetadata("format '\(h.format)', expected 'tded-stream-encoder'")
        }
        guard h.version == 1 else { throw EncoderModelError.badMetadata("version \(h.version), expected 1") }
        let expectedNames = Set((0..<h.layers.count).flatMap { ["layers.\($0).weight", "layers.\($0).bias"] })
        if let extra = Set(file.tensors.keys).subtracting(expectedNames).sorted().first {
            throw EncoderModelError.invalid("unexpected tensor '\(extra)' for a \(h.layers.count)-layer model")
        }
        var layers: [EncoderLayer] = []
        for (i, l) in h.layers.enumerated() {
            guard let act = EncoderLayer.Activation(rawValue: l.activation) else {
                throw EncoderModelError.badMetadata("layer \(i) activation '\(l.activation)', expected relu or none")
            }
            let wName = "layers.\(i).weight", bName = "layers.\(i).bias"
            guard let wi = file.tensors[wName] else { throw EncoderModelError.invalid("missing tensor '\(wName)'") }
            guard let bi = file.tensors[bName] else { throw EncoderModelError.invalid("missing tensor '\(bName)'") }
            guard wi.shape == [l.out, l.in, l.kernel] else {
                throw EncoderModelError.invalid("tensor '\(wName)' has shape \(wi.shape), header says "
                                                + "[\(l.out), \(l.in), \(l.kernel)]")
            }
            guard bi.shape == [l.out] else {
                throw EncoderModelError.invalid("tensor '\(bName)' has shape \(bi.shape), header says [\(l.out)]")
            }
            let w: [Float], b: [Float]
            do { w = try file.floats(wName); b = try file.floats(bName) } catch let e as SafetensorsError {
                throw EncoderModelError.container(e)
            }
            layers.append(EncoderLayer(inChannels: l.in, outChannels: l.out, kernel: l.kernel,
                                       dilation: l.dilation, activation: act, weight: w, bias: b))
        }
        try self.init(sampleRate: h.sample_rate, nFFT: h.n_fft, hop: h.hop, window: h.window,
                      tau: Float(h.tau), maxDelay: h.max_delay, phatBeta: Float(h.phat_beta),
                      columnNorm: h.column_norm, layers: layers, objective: h.objective ?? "unknown")
        if let d = h.embedding_dim, d != embeddingDim {
            throw EncoderModelError.invalid("embedding_dim \(d) differs from the last layer's \(embeddingDim) outputs")
        }
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .dataCorrupted(let c): return "malformed JSON: \(c.debugDescription)"
        case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
        case .typeMismatch(let t, let c):
            return "'\(c.codingPath.map { $0.stringValue }.joined(separator: "."))' is not a \(t)"
        case .valueNotFound(_, let c):
            return "'\(c.codingPath.map { $0.stringValue }.joined(separator: "."))' is null"
        @unknown default: return "\(e)"
        }
    }
}

private struct ModelHeader: Decodable {
    struct Layer: Decodable {
        let `in`: Int
        let out: Int
        let kernel: Int
        let dilation: Int
        let activation: String
    }
    let format: String
    let version: Int
    let sample_rate: Int
    let n_fft: Int
    let hop: Int
    let window: Int
    let tau: Double
    let max_delay: Int
    let phat_beta: Double
    let column_norm: Bool
    let layers: [Layer]
    let embedding_dim: Int?
    let objective: String?
}

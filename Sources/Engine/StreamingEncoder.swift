// The learned encoder's forward pass, computed incrementally over a mono stream
// (docs/encoder-spec.md). Each STFT column goes through the layers exactly once; every layer
// keeps the last (k-1)*dilation positions of its input in fixed storage; blocks of new columns
// go through each layer as one SGEMM per kernel tap; window embeddings are pooled from the
// cached last-layer outputs.

import COpenBLAS
import Foundation

/// Feature vector of one STFT column (spec "Signal and columns"): partial PHAT, optional
/// column RMS normalisation, then `[Re Y_0 ..< Re Y_{B-1}, Im Y_0 ..< Im Y_{B-1}]`.
public enum EncoderFeatures {
    /// Writes `2 * bins` features for the column (`re`, `im`: `bins` values each) into `out`.
    @inline(__always)
    public static func compute(re: UnsafePointer<Float>, im: UnsafePointer<Float>, bins: Int,
                               phatBeta: Float, columnNorm: Bool, out: UnsafeMutablePointer<Float>) {
        let oRe = out, oIm = out + bins
        if phatBeta == 0 {
            for k in 0..<bins { oRe[k] = re[k]; oIm[k] = im[k] }
        } else if phatBeta == 0.5 {
            for k in 0..<bins {
                let a = re[k], b = im[k]
                let g = 1 / ((a * a + b * b).squareRoot() + 1e-6).squareRoot()
                oRe[k] = a * g; oIm[k] = b * g
            }
        } else if phatBeta == 1 {
            for k in 0..<bins {
                let a = re[k], b = im[k]
                let g = 1 / ((a * a + b * b).squareRoot() + 1e-6)
                oRe[k] = a * g; oIm[k] = b * g
            }
        } else {
            let beta = Double(phatBeta)
            for k in 0..<bins {
                let a = re[k], b = im[k]
                let mag = Double((a * a + b * b).squareRoot() + 1e-6)
                let g = Float(exp(-beta * log(mag)))
                oRe[k] = a * g; oIm[k] = b * g
            }
        }
        if columnNorm {
            var p: Float = 0
            for k in 0..<bins { p += oRe[k] * oRe[k] + oIm[k] * oIm[k] }
            let g = 1 / (p / Float(bins) + 1e-8).squareRoot()
            for k in 0..<bins { oRe[k] *= g; oIm[k] *= g }
        }
    }
}

/// 64-byte aligned, zero-initialised float storage owned by the encoder.
@inline(__always)
private func alignedFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
    let p = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
    return p
}

/// Column-major `[channels x capacity]` storage of a sequence, appended at `end`, that keeps
/// the last `history` columns when it compacts (a sliding window with lazy compaction: the
/// memmove happens at most once per `capacity - history - block` columns).
private final class ColumnBuffer {
    let channels: Int
    let history: Int
    let capacity: Int
    let data: UnsafeMutablePointer<Float>
    /// One past the newest valid column.
    var end: Int

    init(channels: Int, history: Int, maxBlock: Int) {
        self.channels = channels
        self.history = history
        capacity = 2 * (history + maxBlock)
        data = alignedFloats(channels * capacity)
        end = history  // the history starts as zeros (positions before the stream start)
    }
    deinit { data.deallocate() }

    /// Makes room for `n` more columns after `end`.
    @inline(__always) func reserve(_ n: Int) {
        if end + n > capacity {
            if history > 0 {
                (data).update(from: data + (end - history) * channels, count: history * channels)
            }
            end = history
        }
    }

    func reset() {
        data.update(repeating: 0, count: channels * capacity)
        end = history
    }

    @inline(__always) func column(_ i: Int) -> UnsafeMutablePointer<Float> { data + i * channels }
}

/// One layer's weights per tap (`W[:, :, j]` as a column-major `[out x in]` matrix) and bias.
private final class LayerKernel {
    let inC: Int, outC: Int, kernel: Int, dilation: Int, relu: Bool
    /// `kernel` matrices, each `outC * inC`, column-major (lda = outC).
    let taps: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>

    /// `dilationColumns`: dilation in units of the stream's column stride.
    init(_ l: EncoderLayer, dilationColumns: Int) {
        inC = l.inChannels; outC = l.outChannels; kernel = l.kernel; dilation = dilationColumns
        relu = l.activation == .relu
        taps = alignedFloats(outC * inC * kernel)
        bias = alignedFloats(outC)
        for j in 0..<kernel {
            let t = taps + j * outC * inC
            for i in 0..<inC { for o in 0..<outC { t[o + i * outC] = l.weight[(o * inC + i) * kernel + j] } }
        }
        for o in 0..<outC { bias[o] = l.bias[o] }
    }
    deinit { taps.deallocate(); bias.deallocate() }

    /// `y[:, q] = act(b + sum_j W_j x[:, q - (k-1-j)*dilation])` for `q` in `0 ..< n`, where `x`
    /// points at the input column of `q = 0` (with its history before it) and `y` at the output
    /// column of `q = 0`; both column-major with their channel counts as leading dimension.
    @inline(__always)
    func apply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, n: Int) {
        for j in 0..<kernel {
            let xj = x - (kernel - 1 - j) * dilation * inC
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans,
                        Int32(outC), Int32(n), Int32(inC), 1,
                        taps + j * outC * inC, Int32(outC), xj, Int32(inC), j == 0 ? 0 : 1, y, Int32(outC))
        }
        // Bias and activation in one pass (unconditional stores so it vectorises).
        let b = UnsafePointer(bias)
        if relu {
            for q in 0..<n {
                let yc = y + q * outC
                for o in 0..<outC { let v = yc[o] + b[o]; yc[o] = v > 0 ? v : 0 }
            }
        } else {
            for q in 0..<n {
                let yc = y + q * outC
                for o in 0..<outC { yc[o] += b[o] }
            }
        }
    }
}

/// The encoder run incrementally over one mono stream.
///
/// Push samples in blocks of any size; the encoder computes the STFT column of every frame
/// start on its column lattice (`t % columnStride == columnPhase`) once, runs blocks of up to
/// `maxBlock` new columns through every layer (one SGEMM per kernel tap and layer), and forms
/// the L2-normalised embedding of every window start `s` with `s % windowStride == 0` as soon
/// as its last column is in. The newest `embeddingCapacity` window embeddings are kept.
///
/// Column lattice: all dilations are multiples of `hop`, so positions of different phases
/// `t mod hop` never interact. A stream that needs windows every `windowStride` samples only
/// computes columns with `t ≡ R (mod gcd(windowStride, hop))`: every column for
/// `windowStride = 1` (the right channel), one in 8 for `windowStride = 8` (the left channel).
///
/// After `init` no call allocates.
public final class StreamingEncoder {
    /// The model.
    public let model: EncoderModel
    /// Windows start at multiples of this.
    public let windowStride: Int
    /// Distance in samples between computed columns, `gcd(windowStride, hop)`.
    public let columnStride: Int
    /// Phase of the computed columns, `R mod columnStride`.
    public let columnPhase: Int
    /// Largest number of columns run through the layers at once (GEMM width).
    public let maxBlock: Int
    /// Number of window embeddings kept.
    public let embeddingCapacity: Int
    /// Embedding length.
    public let dim: Int

    /// Samples consumed since creation or `reset()`.
    public private(set) var samplesConsumed: Int64 = 0
    /// One past the newest window start with an embedding (0 when none): every window start
    /// `s` on the stride lattice with `oldestEmbedding <= s < windowsEnd` is available.
    public private(set) var windowsEnd: Int64 = 0

    /// Cumulative nanoseconds spent per layer (GEMMs, bias, activation) and, at index
    /// `layers.count`, in features + pooling; only accumulated when `profile` is true.
    public private(set) var layerNanos: [UInt64]
    /// Columns run through the layers so far.
    public private(set) var columnsProcessed: Int64 = 0
    /// Turn on per-layer timing (adds two clock reads per layer and block).
    public var profile = false

    private let columns: STFTColumns
    private let kernels: [LayerKernel]
    /// Input buffers of every layer; `buffers[L]` holds the last layer's outputs.
    private let buffers: [ColumnBuffer]
    private let embeddings: UnsafeMutablePointer<Float>
    private let R: Int
    private let M: Int
    private let poolStep: Int  // hop / columnStride: buffer columns between pooled outputs
    private let bins: Int
    private let phatBeta: Float
    private let columnNorm: Bool
    private let invM: Float

    /// Creates the encoder for one channel.
    /// - Parameters:
    ///   - windowStride: window starts at multiples of it (1 = every sample).
    ///   - maxBlock: columns per layer GEMM (the block width), at least 1.
    ///   - embeddingCapacity: how many of the newest window embeddings stay readable.
    public init(model: EncoderModel, windowStride: Int = 1, maxBlock: Int = 256,
                embeddingCapacity: Int = 512) {
        precondition(windowStride >= 1 && maxBlock >= 1 && embeddingCapacity >= 1)
        self.model = model
        self.windowStride = windowStride
        self.maxBlock = maxBlock
        self.embeddingCapacity = embeddingCapacity
        var a = windowStride, b = model.hop
        while b != 0 { (a, b) = (b, a % b) }
        columnStride = a
        R = model.receptiveField
        M = model.poolCount
        columnPhase = R % columnStride
        dim = model.embeddingDim
        poolStep = model.hop / columnStride
        bins = model.nFFT / 2
        phatBeta = model.phatBeta
        columnNorm = model.columnNorm
        invM = 1 / Float(M)
        columns = STFTColumns(capacity: maxBlock, nFFT: model.nFFT, stride: columnStride,
                              phase: columnPhase)
        var ks: [LayerKernel] = []
        var bs: [ColumnBuffer] = []
        for l in model.layers {
            let dd = l.dilation / columnStride
            ks.append(LayerKernel(l, dilationColumns: dd))
            bs.append(ColumnBuffer(channels: l.inChannels, history: (l.kernel - 1) * dd, maxBlock: maxBlock))
        }
        bs.append(ColumnBuffer(channels: dim, history: (M - 1) * poolStep, maxBlock: maxBlock))
        kernels = ks
        buffers = bs
        embeddings = alignedFloats(embeddingCapacity * dim)
        layerNanos = [UInt64](repeating: 0, count: model.layers.count + 1)
    }

    deinit { embeddings.deallocate() }

    /// Forgets everything; the next sample is position 0 again.
    public func reset() {
        columns.reset()
        for b in buffers { b.reset() }
        samplesConsumed = 0
        windowsEnd = 0
        columnsProcessed = 0
        for i in layerNanos.indices { layerNanos[i] = 0 }
    }

    /// Oldest window start whose embedding is still kept.
    public var oldestEmbedding: Int64 {
        max(0, windowsEnd - Int64(embeddingCapacity * windowStride))
    }

    /// Whether the embedding of window start `s` is available.
    @inline(__always) public func hasEmbedding(at s: Int64) -> Bool {
        s >= oldestEmbedding && s < windowsEnd && s % Int64(windowStride) == 0
    }

    /// The L2-normalised embedding (`dim` floats) of window start `s`; requires
    /// `hasEmbedding(at: s)`. Valid until the next `push`/`reset`.
    @inline(__always) public func embedding(at s: Int64) -> UnsafePointer<Float> {
        precondition(hasEmbedding(at: s), "embedding of window \(s) is not available")
        return UnsafePointer(embeddings + slot(s))
    }

    @inline(__always) private func slot(_ s: Int64) -> Int {
        Int((s / Int64(windowStride)) % Int64(embeddingCapacity)) * dim
    }

    /// Largest number of new window embeddings one `push` of `n` samples can produce.
    public func maxNewWindows(forBlockLength n: Int) -> Int { n / windowStride + 1 }

    /// Consumes samples; computes all newly complete columns, layers and window embeddings.
    /// Embeddings older than `embeddingCapacity` windows are overwritten, so a consumer that
    /// needs every window must read them between pushes of at most
    /// `embeddingCapacity * windowStride` samples.
    public func push(_ samples: UnsafeBufferPointer<Float>) {
        guard let base = samples.baseAddress else { return }
        let chunk = maxBlock * columnStride
        var i = 0
        while i < samples.count {
            let n = min(chunk, samples.count - i)
            columns.push(UnsafeBufferPointer(start: base + i, count: n))
            samplesConsumed += Int64(n)
            let newCols = Int(columns.columnsComputed - columnsProcessed)
            if newCols > 0 { runBlock(newCols) }
            i += n
        }
    }

    /// Array convenience for `push(_:)`.
    public func push(_ samples: [Float]) { samples.withUnsafeBufferPointer { push($0) } }

    @inline(__always) private func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private func runBlock(_ n: Int) {
        let t0 = profile ? now() : 0
        for b in buffers { b.reserve(n) }
        // Features of the new columns straight into layer 0's input.
        let in0 = buffers[0]
        for q in 0..<n {
            let t = Int64(columnPhase) + (columnsProcessed + Int64(q)) * Int64(columnStride)
            EncoderFeatures.compute(re: columns.real(at: t), im: columns.imag(at: t), bins: bins,
                                    phatBeta: phatBeta, columnNorm: columnNorm,
                                    out: in0.column(in0.end + q))
        }
        var tPrev = profile ? now() : 0
        if profile { layerNanos[kernels.count] &+= tPrev &- t0 }
        for (l, k) in kernels.enumerated() {
            let xin = buffers[l], yout = buffers[l + 1]
            k.apply(x: xin.column(xin.end), y: yout.column(yout.end), n: n)
            if profile { let t = now(); layerNanos[l] &+= t &- tPrev; tPrev = t }
        }
        for b in buffers { b.end += n }
        // Pool window embeddings from the cached last-layer outputs.
        let out = buffers[kernels.count]
        let firstNew = out.end - n
        let span = Int64(R + model.hop * (M - 1))
        for q in 0..<n {
            let t = Int64(columnPhase) + (columnsProcessed + Int64(q)) * Int64(columnStride)
            let s = t - span
            guard s >= 0, s % Int64(windowStride) == 0 else { continue }
            pool(newest: out.column(firstNew + q), into: embeddings + slot(s))
            windowsEnd = s + 1
        }
        columnsProcessed += Int64(n)
        if profile { layerNanos[kernels.count] &+= now() &- tPrev }
    }

    /// Mean of the `M` outputs ending at `newest` (stride `poolStep` columns), L2-normalised.
    @inline(__always) private func pool(newest: UnsafePointer<Float>, into e: UnsafeMutablePointer<Float>) {
        let D = dim
        let step = poolStep * D
        e.update(from: newest - (M - 1) * step, count: D)
        var p = newest - (M - 2) * step
        for _ in 1..<max(M, 1) {
            for c in 0..<D { e[c] += p[c] }
            p += step
        }
        var ss: Float = 0
        for c in 0..<D { e[c] *= invM; ss += e[c] * e[c] }
        let g = 1 / max(ss.squareRoot(), 1e-12)
        for c in 0..<D { e[c] *= g }
    }

    // MARK: - From-scratch reference

    /// The embedding of the window starting at `start` in `samples`, computed from scratch
    /// (its own FFTs and one layer pass over the window's columns, nothing cached or shared).
    /// Used by tests to check the incremental path; allocates.
    public static func windowEmbeddingFromScratch(model: EncoderModel, samples: UnsafeBufferPointer<Float>,
                                                  start: Int) -> [Float] {
        precondition(start >= 0 && start + model.window <= samples.count)
        let hop = model.hop, nF = model.nFFT, bins = nF / 2
        // Only the phase of `start` matters: columns t = start + hop*q.
        let Q = (model.window - nF) / hop + 1
        let fft = ForwardRealFFT(size: nF)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: nF)
        defer { w.deallocate() }
        STFTColumns.fillPeriodicHann(w, count: nF)
        var h = [Float](repeating: 0, count: Q * nF)
        var re = [Float](repeating: 0, count: bins), im = re
        for q in 0..<Q {
            let f = samples.baseAddress! + start + hop * q
            for j in 0..<nF { fft.input[j] = f[j] * w[j] }
            fft.execute()
            for b in 0..<bins { re[b] = fft.output[2 * b]; im[b] = fft.output[2 * b + 1] }
            h.withUnsafeMutableBufferPointer { hp in
                EncoderFeatures.compute(re: re, im: im, bins: bins, phatBeta: model.phatBeta,
                                        columnNorm: model.columnNorm, out: hp.baseAddress! + q * nF)
            }
        }
        // Valid convolutions in the phase domain (dilation d / hop).
        var cur = h, curC = nF, len = Q
        for l in model.layers {
            let dd = l.dilation / hop
            let outLen = len - (l.kernel - 1) * dd
            precondition(outLen >= 1)
            var y = [Float](repeating: 0, count: outLen * l.outChannels)
            for q in 0..<outLen { for o in 0..<l.outChannels { y[q * l.outChannels + o] = l.bias[o] } }
            for j in 0..<l.kernel {
                var wj = [Float](repeating: 0, count: l.outChannels * curC)
                for i in 0..<curC { for o in 0..<l.outChannels { wj[o + i * l.outChannels] = l.w(o, i, j) } }
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(l.outChannels), Int32(outLen),
                            Int32(curC), 1, wj, Int32(l.outChannels),
                            Array(cur[(j * dd * curC)...]), Int32(curC), 1, &y, Int32(l.outChannels))
            }
            if l.activation == .relu { for i in y.indices where y[i] < 0 { y[i] = 0 } }
            cur = y; curC = l.outChannels; len = outLen
        }
        // Output index 0 <-> position start + R; pool M of them.
        let M = model.poolCount, D = curC
        precondition(len >= M)
        var e = [Double](repeating: 0, count: D)
        for m in 0..<M { for c in 0..<D { e[c] += Double(cur[m * D + c]) } }
        var ss = 0.0
        for c in 0..<D { e[c] /= Double(M); ss += e[c] * e[c] }
        let g = 1 / max(ss.squareRoot(), 1e-12)
        return e.map { Float($0 * g) }
    }
}

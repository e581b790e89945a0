// FromScratchEncoder.swift: the learned encoder as the spec reads, one window at a time; the
// reference `StreamingEncoder` is tested against. Test support only: not part of Engine.
import COpenBLAS
import Engine

extension StreamingEncoder {
    /// The embedding of the window starting at `start` in `samples`, computed from scratch
    /// (its own FFTs and one layer pass over the window's columns, nothing cached or shared).
    /// Allocates. See `FromScratchEncoder` to evaluate many windows of one model.
    public static func windowEmbeddingFromScratch(model: EncoderModel, samples: UnsafeBufferPointer<Float>,
                                                  start: Int) -> [Float] {
        FromScratchEncoder(model: model).embedding(samples: samples, start: start)
    }
}

/// Window embeddings computed one window at a time from scratch, exactly as the spec reads:
/// the window's own STFT columns (on the phase of its start), every layer as a valid dilated
/// convolution over them, the mean of the `M` last-layer outputs, L2 normalisation. Shares no
/// state between windows; the test reference for `StreamingEncoder`. Allocates.
public final class FromScratchEncoder {
    /// The model.
    public let model: EncoderModel
    /// Per layer, per tap: `W[:, :, j]` column-major `[out x in]`.
    private let taps: [[[Float]]]

    /// Prepares the per-tap weight matrices once.
    public init(model: EncoderModel) {
        self.model = model
        taps = model.layers.map { l in
            (0..<l.kernel).map { j in
                var wj = [Float](repeating: 0, count: l.outChannels * l.inChannels)
                for i in 0..<l.inChannels { for o in 0..<l.outChannels { wj[o + i * l.outChannels] = l.w(o, i, j) } }
                return wj
            }
        }
    }

    /// The L2-normalised embedding of the window `[start, start + window)` of `samples`.
    public func embedding(samples: UnsafeBufferPointer<Float>, start: Int) -> [Float] {
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
        for (li, l) in model.layers.enumerated() {
            let dd = l.dilation / hop
            let outLen = len - (l.kernel - 1) * dd
            precondition(outLen >= 1)
            var y = [Float](repeating: 0, count: outLen * l.outChannels)
            for q in 0..<outLen { for o in 0..<l.outChannels { y[q * l.outChannels + o] = l.bias[o] } }
            cur.withUnsafeBufferPointer { cp in
                for j in 0..<l.kernel {
                    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(l.outChannels), Int32(outLen),
                                Int32(curC), 1, taps[li][j], Int32(l.outChannels),
                                cp.baseAddress! + j * dd * curC, Int32(curC), 1, &y, Int32(l.outChannels))
                }
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

// EncoderFeatures.swift: the learned encoder's input features of one STFT column
// (docs/encoder-spec.md, "Signal and columns").
import Foundation

/// Feature vector of one STFT column (spec "Signal and columns"): partial PHAT, optional
/// column RMS normalisation, then `[Re Y_0 ..< Re Y_{B-1}, Im Y_0 ..< Im Y_{B-1}]`.
public enum EncoderFeatures {
    /// Writes `2 * bins` features for the column (`re`, `im`: `bins` values each) into `out`.
    /// Vectorised 8 bins at a time (explicit SIMD: the Engine builds for baseline x86-64).
    @inline(__always)
    public static func compute(re: UnsafePointer<Float>, im: UnsafePointer<Float>, bins: Int,
                               phatBeta: Float, columnNorm: Bool, out: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        let oRe = out, oIm = out + bins
        let rr = UnsafeRawPointer(re), ri = UnsafeRawPointer(im)
        let wr = UnsafeMutableRawPointer(oRe), wi = UnsafeMutableRawPointer(oIm)
        let nv = bins / 8
        let eps = V(repeating: 1e-6)
        @inline(__always) func gain(_ a: Float, _ b: Float) -> Float {
            let mag = (a * a + b * b).squareRoot() + 1e-6
            if phatBeta == 0.5 { return 1 / mag.squareRoot() }
            if phatBeta == 1 { return 1 / mag }
            return Float(exp(-Double(phatBeta) * log(Double(mag))))
        }
        if phatBeta == 0 {
            oRe.update(from: re, count: bins)
            oIm.update(from: im, count: bins)
        } else if phatBeta == 0.5 || phatBeta == 1 {
            let half = phatBeta == 0.5
            for v in 0..<nv {
                let a = rr.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let b = ri.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let mag = (a * a + b * b).squareRoot() + eps
                let g = 1 / (half ? mag.squareRoot() : mag)
                wr.storeBytes(of: a * g, toByteOffset: 32 * v, as: V.self)
                wi.storeBytes(of: b * g, toByteOffset: 32 * v, as: V.self)
            }
            for k in (8 * nv)..<bins {
                let g = gain(re[k], im[k])
                oRe[k] = re[k] * g; oIm[k] = im[k] * g
            }
        } else {
            for k in 0..<bins {
                let g = gain(re[k], im[k])
                oRe[k] = re[k] * g; oIm[k] = im[k] * g
            }
        }
        if columnNorm {
            var acc = V(repeating: 0)
            for v in 0..<nv {
                let a = wr.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                let b = wi.loadUnaligned(fromByteOffset: 32 * v, as: V.self)
                acc += a * a + b * b
            }
            var p = acc.sum()
            for k in (8 * nv)..<bins { p += oRe[k] * oRe[k] + oIm[k] * oIm[k] }
            let g = 1 / (p / Float(bins) + 1e-8).squareRoot()
            let gv = V(repeating: g)
            for v in 0..<nv {
                wr.storeBytes(of: wr.loadUnaligned(fromByteOffset: 32 * v, as: V.self) * gv, toByteOffset: 32 * v, as: V.self)
                wi.storeBytes(of: wi.loadUnaligned(fromByteOffset: 32 * v, as: V.self) * gv, toByteOffset: 32 * v, as: V.self)
            }
            for k in (8 * nv)..<bins { oRe[k] *= g; oIm[k] *= g }
        }
    }
}

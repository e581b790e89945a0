"""Streaming encoder, exactly as docs/encoder-spec.md describes it.

Two evaluation paths share one set of weights:

* ``StreamEncoder.window_embeddings`` -- the efficient training path.  Because every dilation is
  a multiple of ``hop`` (8), positions ``t`` with the same phase ``t mod hop`` only ever see each
  other, so the columns of one phase are an ordinary sequence and the sample-space dilated conv
  becomes a plain ``conv1d`` with dilation ``d / hop``.  Only the phases the requested windows
  need are computed (stride-4 training windows need 2 of the 8 phases).
* ``reference_window_embedding`` -- a literal, window-by-window evaluation of the spec formulas
  (columns of the window, each layer evaluated at every sample position with an explicit tap
  sum, pooling at ``t_m = s + R + hop*m``).  Slow; used for fixtures and to test the fast path.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LayerSpec:
    in_ch: int
    out_ch: int
    kernel: int
    dilation: int  # in samples, a multiple of hop
    activation: str  # "relu" | "none"

    def to_json(self) -> dict:
        return {"in": self.in_ch, "out": self.out_ch, "kernel": self.kernel,
                "dilation": self.dilation, "activation": self.activation}

    @staticmethod
    def from_json(d: dict) -> "LayerSpec":
        return LayerSpec(int(d["in"]), int(d["out"]), int(d["kernel"]), int(d["dilation"]),
                         str(d["activation"]))


def pooled_layers() -> List[LayerSpec]:
    """The first design (R = 48, M = 91 pooled outputs, 215k MACs/column).  Kept for the `tiny`
    parity fixture (it exercises the pooling path); it cannot learn sharp matches because windows
    8 samples apart share 90 of their 91 pooled columns -- see train/README.md."""
    return [LayerSpec(256, 160, 1, 8, "relu"),
            LayerSpec(160, 160, 3, 8, "relu"),
            LayerSpec(160, 160, 3, 16, "relu"),
            LayerSpec(160, 128, 1, 8, "none")]


def v1_layers(width: int = 128, emb: int = 128) -> List[LayerSpec]:
    """The shipped design: a dilated causal TCN whose receptive field is the whole window
    (R = 2*(8+24+72+216) + 128 = 768, so M = 1: the window embedding is the last layer's output
    at t = s + 768, a function of all 1024 samples).  278,528 MACs/column at width 128."""
    layers = [LayerSpec(256, width, 1, 8, "relu")]
    for d in (8, 24, 72, 216):
        layers.append(LayerSpec(width, width, 3, d, "relu"))
    layers.append(LayerSpec(width, width, 2, 128, "relu"))
    layers.append(LayerSpec(width, emb, 1, 8, "none"))
    return layers


def default_layers() -> List[LayerSpec]:
    return v1_layers()


def small_layers() -> List[LayerSpec]:
    """A narrow version of v1 for fast tests."""
    return v1_layers(width=48, emb=32)


@dataclass
class EncoderConfig:
    sample_rate: int = 16000
    n_fft: int = 256
    hop: int = 8
    window: int = 1024
    tau: float = 0.05
    max_delay: int = 24
    phat_beta: float = 0.5
    column_norm: bool = True
    layers: List[LayerSpec] = field(default_factory=default_layers)
    batchnorm: bool = False  # training-time only; folded away at export

    def __post_init__(self):
        assert self.layers, "need at least one layer"
        assert self.layers[0].in_ch == self.n_fft, "first layer input = 2 * (n_fft/2) = n_fft"
        for a, b in zip(self.layers, self.layers[1:]):
            assert a.out_ch == b.in_ch, "layer widths must chain"
        for l in self.layers:
            assert l.dilation % self.hop == 0 and l.dilation > 0, "dilation must be k*hop"
            assert l.activation in ("relu", "none")
        assert self.layers[-1].activation == "none", "last layer has no activation"
        assert 0.0 <= self.phat_beta <= 1.0
        assert self.M >= 1, "receptive field too large for the window"

    @property
    def R(self) -> int:
        return sum((l.kernel - 1) * l.dilation for l in self.layers)

    @property
    def M(self) -> int:
        return (self.window - self.n_fft - self.R) // self.hop + 1

    @property
    def embedding_dim(self) -> int:
        return self.layers[-1].out_ch

    def macs_per_column(self) -> int:
        return sum(l.in_ch * l.out_ch * l.kernel for l in self.layers)

    def header(self, objective: str = "stereocrw", training: Optional[dict] = None) -> dict:
        return {"format": "tded-stream-encoder", "version": 1,
                "sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop": self.hop,
                "window": self.window, "tau": self.tau, "max_delay": self.max_delay,
                "phat_beta": self.phat_beta, "column_norm": self.column_norm,
                "layers": [l.to_json() for l in self.layers],
                "embedding_dim": self.embedding_dim, "objective": objective,
                "training": training or {}}

    @staticmethod
    def from_header(h: dict) -> "EncoderConfig":
        assert h["format"] == "tded-stream-encoder" and int(h["version"]) == 1
        return EncoderConfig(sample_rate=int(h["sample_rate"]), n_fft=int(h["n_fft"]),
                             hop=int(h["hop"]), window=int(h["window"]), tau=float(h["tau"]),
                             max_delay=int(h["max_delay"]), phat_beta=float(h["phat_beta"]),
                             column_norm=bool(h["column_norm"]),
                             layers=[LayerSpec.from_json(d) for d in h["layers"]],
                             batchnorm=False)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return d

    @staticmethod
    def from_dict(d: dict) -> "EncoderConfig":
        d = dict(d)
        d["layers"] = [LayerSpec(**l) for l in d["layers"]]
        return EncoderConfig(**d)


def hann(n_fft: int, dtype=torch.float32, device=None) -> torch.Tensor:
    n = torch.arange(n_fft, dtype=torch.float64, device=device)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)).to(dtype)


def frames_to_features(frames: torch.Tensor, cfg: EncoderConfig) -> torch.Tensor:
    """frames [..., n_fft] (raw samples) -> features [..., n_fft] per the spec."""
    w = hann(cfg.n_fft, frames.dtype, frames.device)
    X = torch.fft.rfft(frames * w, dim=-1)[..., : cfg.n_fft // 2]
    if cfg.phat_beta > 0:
        X = X / (X.abs() + 1e-6) ** cfg.phat_beta
    if cfg.column_norm:
        p = (X.real ** 2 + X.imag ** 2).mean(dim=-1, keepdim=True)
        X = X / torch.sqrt(p + 1e-8)
    return torch.cat([X.real, X.imag], dim=-1)


def columns(x: torch.Tensor, cfg: EncoderConfig, start: int = 0, step: int = 1) -> torch.Tensor:
    """Feature columns of x [..., N] at positions start, start+step, ... -> [..., 256, T]."""
    fr = x[..., start:].unfold(-1, cfg.n_fft, step)  # [..., T, n_fft]
    return frames_to_features(fr, cfg).transpose(-1, -2)


class StreamEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        # Conv1d weights are [out, in, k]; in the phase domain the dilation is d/hop.  PyTorch's
        # conv1d is a cross-correlation: y[q] = sum_j W[..., j] x[q + j*dl] (valid), so output q
        # is at the input index of its newest tap (j=k-1) minus (k-1)*dl -- i.e. tap j=k-1 is
        # the newest input, as the spec says.
        self.convs = nn.ModuleList(
            nn.Conv1d(l.in_ch, l.out_ch, l.kernel, dilation=l.dilation // cfg.hop)
            for l in cfg.layers)
        self.bns = nn.ModuleList(
            (nn.BatchNorm1d(l.out_ch) if (cfg.batchnorm and i < len(cfg.layers) - 1)
             else nn.Identity())
            for i, l in enumerate(cfg.layers))

    # ---- fast (training) path -------------------------------------------------------------
    def stack(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [B, 256, Q] (one phase) -> last-layer outputs [B, D, Q - R/hop] (valid)."""
        h = feats
        for conv, bn, l in zip(self.convs, self.bns, self.cfg.layers):
            h = bn(conv(h))
            if l.activation == "relu":
                h = F.relu(h)
        return h

    def window_embeddings(self, x: torch.Tensor, stride: int = 1,
                          starts: Optional[Sequence[int]] = None,
                          normalize: bool = True) -> torch.Tensor:
        """x [B, N] -> embeddings [B, W, D] for window starts 0, stride, ... (or `starts`)."""
        cfg = self.cfg
        N = x.shape[-1]
        if starts is None:
            starts = list(range(0, N - cfg.window + 1, stride))
        starts = list(starts)
        assert starts and min(starts) >= 0 and max(starts) + cfg.window <= N
        hop, Rq, M = cfg.hop, cfg.R // cfg.hop, cfg.M
        phases = sorted({s % hop for s in starts})
        pooled = {}
        for p in phases:
            f = columns(x, cfg, start=p, step=hop)  # positions p + hop*q
            out = self.stack(f)  # index o <-> position p + hop*(o + Rq)
            # mean over M consecutive outputs starting at each o0 (cumsum trick)
            cs = torch.cumsum(F.pad(out, (1, 0)), dim=-1)
            pooled[p] = (cs[..., M:] - cs[..., :-M]) / M  # [B, D, O-M+1], index o0
        embs = []
        for s in starts:
            p = s % hop
            o0 = (s - p) // hop  # position s + R  <->  o = (s + R - p)/hop - Rq
            embs.append(pooled[p][..., o0])
        e = torch.stack(embs, dim=1)  # [B, W, D]
        if normalize:
            e = e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return e

    def forward(self, x, stride: int = 1):
        return self.window_embeddings(x, stride=stride)

    # ---- folding / parameters in spec form --------------------------------------------------
    def folded_layers(self) -> List[tuple]:
        """[(weight [out,in,k], bias [out])] with eval-mode BatchNorm folded in."""
        res = []
        for conv, bn in zip(self.convs, self.bns):
            W = conv.weight.detach().clone()
            b = conv.bias.detach().clone()
            if isinstance(bn, nn.BatchNorm1d):
                g = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
                W = W * g[:, None, None]
                b = (b - bn.running_mean) * g + bn.bias.detach()
            res.append((W, b))
        return res


# ---- reference path (literal spec) ----------------------------------------------------------
def reference_window_embedding(cfg: EncoderConfig, layers: List[tuple], x: torch.Tensor,
                               s: int) -> torch.Tensor:
    """Literal spec evaluation for one window start s.  x [N] 1-D; layers = folded (W, b).
    Returns the L2-normalised embedding [D]."""
    seg = x[s: s + cfg.window]
    assert seg.shape[0] == cfg.window
    T = cfg.window - cfg.n_fft + 1  # columns at positions t = s + 0 .. s + T-1
    frames = torch.stack([seg[t: t + cfg.n_fft] for t in range(T)])
    h = frames_to_features(frames, cfg).T  # [256, T], index = t - s
    valid_from = 0  # first index of h that is fully defined
    for (W, b), l in zip(layers, cfg.layers):
        W = W.to(h.dtype)
        b = b.to(h.dtype)
        lo = valid_from + (l.kernel - 1) * l.dilation
        y = torch.zeros(l.out_ch, T, dtype=h.dtype)
        # y[:, t] = b + sum_j W[:, :, j] @ h[:, t - (k-1-j)*dilation], for all t in [lo, T) at once
        acc = b[:, None].expand(l.out_ch, T - lo).clone()
        for j in range(l.kernel):
            back = (l.kernel - 1 - j) * l.dilation
            acc = acc + W[:, :, j] @ h[:, lo - back: T - back]
        y[:, lo:] = acc
        if l.activation == "relu":
            y = torch.relu(y)
        h, valid_from = y, lo
    assert valid_from == cfg.R
    ts = [cfg.R + cfg.hop * m for m in range(cfg.M)]
    assert ts[-1] <= T - 1
    e = h[:, ts].mean(dim=1)
    return e / e.norm().clamp_min(1e-12)


def band_affinity(eL: torch.Tensor, eR: torch.Tensor, tau: float, max_delay: int) -> torch.Tensor:
    """eL, eR [W, D] (window starts 0..W-1 at step 1) -> [W, 2*max_delay+1], A(i, i+d), NaN
    outside."""
    W = eL.shape[0]
    full = eL @ eR.T / tau
    out = torch.full((W, 2 * max_delay + 1), float("nan"), dtype=full.dtype)
    for i in range(W):
        for k, d in enumerate(range(-max_delay, max_delay + 1)):
            j = i + d
            if 0 <= j < W:
                out[i, k] = full[i, j]
    return out


def band_delay(aff: torch.Tensor, max_delay: int) -> torch.Tensor:
    """Expectation vote per row of a band affinity; NaN where the band is incomplete."""
    d = torch.arange(-max_delay, max_delay + 1, dtype=aff.dtype)
    out = torch.full((aff.shape[0],), float("nan"), dtype=aff.dtype)
    ok = ~torch.isnan(aff).any(dim=1)
    if ok.any():
        p = torch.softmax(aff[ok], dim=1)
        out[ok] = (p * d).sum(dim=1)
    return out

"""Learned pooled GCC (``tded analyze --whole --pooling learned``): a per-bin weighting of the
pooled cross-power spectrum learned on simulated rooms, plus a small head over the weighted
cross-correlation. Contract: docs/gccmask-spec.md.

The classical whole-clip default weights the pooled cross spectrum ``G = sum conj(L) R`` (1024-sample
rectangular windows at step 16, FFT 2048) by ``|G|^-0.7`` times a hand-made noise-floor gain. Here the
gain is a 1-D CNN over frequency that sees each bin's levels (``log10`` magnitudes of the two
auto spectra and of ``G``, relative to the clip's lower-quartile level) and the bin's frequency; the
PHAT exponent beta is learned too. The weighted spectrum's correlation on a 1/4-sample grid
(+-24 samples) is scaled by a learned temperature and a second small CNN over the lag axis adds a
correction (it sees the correlation, the search range and the lag), giving logits over the grid;
training minimises the cross-entropy to the true fractional delay (two-bin soft target).

Labels are free: examples are rendered from the RIR bank (``rirbank``) with the pools of
``pools`` by ``supervised.SupSampler`` (other rooms, voices and noise than the evaluation).

    python3 -m tded_train.gccmask data --bank ../data/rirbank/train.npz --n 30000 --seed 21 --out runs/gccmask/train21.npz
    python3 -m tded_train.gccmask data --bank ../data/rirbank/val.npz --val --n 4000 --seed 777 \
        --speech ../data/pools/val_speech.npz --music ../data/pools/val_music.npz \
        --noise ../data/pools/val_noise.npz --out runs/gccmask/val.npz
    python3 -m tded_train.gccmask train --data runs/gccmask/train21.npz runs/gccmask/train22.npz \
        --val runs/gccmask/val.npz --out runs/gccmask
    python3 -m tded_train.gccmask export runs/gccmask/best.pt ../models/tded-gccmask-v1.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .lowfreq import DEFAULT_HIGHPASS_HZ, add_rumble, highpass, highpass_power_gain

WINDOW, STEP, NFFT = 1024, 16, 2048
BINS = NFFT // 2 + 1
MAX_LAG = 24
GRID_STEP = 0.25
GRID = np.arange(-MAX_LAG / GRID_STEP, MAX_LAG / GRID_STEP + 1) * GRID_STEP  # 193 lags
C_SOUND = 343.0
FORMAT = "tded-gccmask"
VERSION = 1
SET_VERSION = 4  # a model set: several networks, each for pooled spans from its min_span on;
# version 4 adds each member's optional `decode` (version 3: argmax throughout; both are read)
SET_VERSIONS = (3, 4)
MAX_MEMBERS = 8  # the engine's limit (GccMaskModel.maxMembers)


# ---- features (numpy, the engine's pooled evidence) -------------------------------------------
TAPERS = ("rectangular", "hann")


def pooled_spectra(x: np.ndarray, taper: str = "rectangular", memory_s: float = 0.0) -> np.ndarray:
    """[2, N] audio -> [4, BINS] float32: Re G, Im G, G_LL, G_RR summed over 1024-sample
    windows at step 16: rectangular and equally weighted (what ``tded analyze --whole`` pools),
    or periodic-Hann with weights exp(-age / memory_s) up to the last window (what the daemon's
    per-update estimate pools with ``memory_s``; the engine decays per update hop)."""
    L, R = np.asarray(x[0], np.float64), np.asarray(x[1], np.float64)
    starts = np.arange(0, len(L) - WINDOW + 1, STEP)
    if memory_s > 0:
        starts = starts[starts >= starts[-1] - int(5 * memory_s * 16000)]
    idx = starts[:, None] + np.arange(WINDOW)[None, :]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW) if taper == "hann" else np.ones(WINDOW)
    FL = np.fft.rfft(L[idx] * win, NFFT, axis=1)
    FR = np.fft.rfft(R[idx] * win, NFFT, axis=1)
    a = np.exp(-(starts[-1] - starts) / (memory_s * 16000))[:, None] if memory_s > 0 else np.ones((len(starts), 1))
    G = (a * np.conj(FL) * FR).sum(0)
    G.imag[0] = 0
    G.imag[-1] = 0
    return np.stack([G.real, G.imag, (a * np.abs(FL) ** 2).sum(0), (a * np.abs(FR) ** 2).sum(0)]).astype(np.float32)


def pooled_windows(x: np.ndarray) -> int:
    """How many windows (WINDOW samples at step STEP) `pooled_spectra` pools from [2, N] audio."""
    return (np.asarray(x).shape[1] - WINDOW) // STEP + 1


def block_spectra(x: np.ndarray, block_windows: int) -> np.ndarray:
    """[2, N] audio -> [blocks, 4, BINS] float32: `pooled_spectra`'s windows (rectangular, step
    16) in consecutive groups of `block_windows` by window index (window i in block
    i // block_windows), each group summed; their sum is the whole clip's pooled spectra. What
    the engine keeps beside the whole sum for ``--whole`` when a model set's dominant-source
    check uses the spread over blocks (docs/gccmask-spec.md, step 7). The last block may be
    partial; every block is returned (`spread_blocks` drops short ones)."""
    n = pooled_windows(x)
    if n < 1:
        return np.zeros((0, 4, BINS), np.float32)
    out = []
    for b0 in range(0, n, block_windows):
        b1 = min(n, b0 + block_windows)
        out.append(pooled_spectra(np.asarray(x)[:, b0 * STEP:(b1 - 1) * STEP + WINDOW]))
    return np.stack(out)


def block_window_counts(windows: int, block_windows: int) -> list[int]:
    """How many of `windows` pooled windows each block of `block_spectra` holds."""
    return [min(block_windows, windows - b0) for b0 in range(0, windows, block_windows)]


def window_overlap(tau: torch.Tensor, taper: str) -> torch.Tensor:
    """The window's normalised autocorrelation at lag tau (the engine's ``overlap``): pooled
    correlations are divided by it."""
    a = tau.abs()
    if taper == "hann":
        x = (a / WINDOW).clamp(max=1)
        v = ((1 - x) * (2 + torch.cos(2 * np.pi * x)) + 3 * torch.sin(2 * np.pi * x) / (2 * np.pi)) / 3
        return v.clamp_min(1e-6)
    return (1 - a / WINDOW).clamp_min(1e-6)


def max_lag(mic_distance: float, rate: int = 16000, c: float = C_SOUND) -> int:
    """The engine's automatic search range in whole samples (``max_delay_ms = "auto"``)."""
    return int(np.floor(mic_distance / c * 1.1 * rate + 1 + 1e-9))


# ---- model -------------------------------------------------------------------------------------
_K = torch.arange(BINS, dtype=torch.float64)
_WK = torch.where((_K == 0) | (_K == BINS - 1), 1.0, 2.0).double()
_G = torch.tensor(GRID, dtype=torch.float64)
_ANG = 2 * np.pi * _K[:, None] * _G[None, :] / NFFT
_COS = torch.cos(_ANG) * _WK[:, None]
_SIN = torch.sin(_ANG) * _WK[:, None]


def _conv_stack(cin: int, ch: int, k: int, n: int) -> nn.Sequential:
    layers, c = [], cin
    for _ in range(n):
        layers += [nn.Conv1d(c, ch, k, padding=k // 2), nn.ReLU()]
        c = ch
    layers.append(nn.Conv1d(c, 1, k, padding=k // 2))
    return nn.Sequential(*layers)


def mask_inputs(S: torch.Tensor, coherence: bool = False):
    """[B, 4, BINS] spectra -> mask features [B, 4 (5), BINS] (float64) and the pieces the
    weighting needs. Levels are half log10 of powers, relative to the lower quartile (sorted
    index 256 of 1025) of the mean of the two channels' levels; with ``coherence`` also the
    magnitude-squared coherence |G|^2 / (G_LL G_RR) (clamped to [0, 1]; informative only when
    many windows are pooled, i.e. live)."""
    S = S.double()
    gr, gi, pl, pr = S[:, 0], S[:, 1], S[:, 2], S[:, 3]
    m2 = gr * gr + gi * gi
    ok = m2 > m2.amax(1, keepdim=True) * 1e-20
    lg = 0.5 * torch.log10(m2.clamp_min(1e-30))
    ll = 0.5 * torch.log10(pl.clamp_min(1e-30))
    lr = 0.5 * torch.log10(pr.clamp_min(1e-30))
    ref = torch.sort(0.5 * (ll + lr), dim=1).values[:, BINS // 4: BINS // 4 + 1]
    feats = [ll - ref, lr - ref, lg - ref, (_K / BINS).expand_as(gr)]
    if coherence:
        feats.append((m2 / (pl * pr).clamp_min(1e-300)).clamp(0, 1))
    x = torch.stack(feats, 1)
    return x, gr, gi, m2.sqrt().clamp_min(1e-30), ok


class GccMask(nn.Module):
    def __init__(self, ch: int = 16, mask_kernel: int = 5, mask_layers: int = 3,
                 head_ch: int = 16, head_kernel: int = 9, head_layers: int = 2,
                 use_mask: bool = True, use_head: bool = True, taper: str = "rectangular",
                 coherence: bool = False, bands: tuple = ()):
        """``use_mask=False`` (ablation): the classical noise-floor gain (kappa 4, floor 0.1)
        and PHAT-beta 0.7 instead of the learned weights; ``use_head=False``: no lag CNN.
        ``bands``: inner band edges (bins) that split the weighted spectrum into sub-bands whose
        correlations (each normalised on its own) the head sees besides the full one: the direct
        path's peak agrees across bands, a reflection's or a noise peak's mostly does not."""
        super().__init__()
        self.use_mask, self.use_head = use_mask, use_head
        self.taper = taper
        self.register_buffer("ov", window_overlap(_G, taper), persistent=False)
        self.bands = tuple(int(b) for b in bands)
        self.arch = dict(ch=ch, mask_kernel=mask_kernel, mask_layers=mask_layers, head_ch=head_ch,
                         head_kernel=head_kernel, head_layers=head_layers, taper=taper,
                         coherence=coherence, bands=self.bands)
        self.coherence = coherence
        self.mask = _conv_stack(5 if coherence else 4, ch, mask_kernel, mask_layers)
        self.head = _conv_stack(3 + (len(self.bands) + 1 if self.bands else 0), head_ch, head_kernel, head_layers)
        self.beta = nn.Parameter(torch.tensor(0.7))
        self.temp = nn.Parameter(torch.tensor(3.0))

    def correlation(self, S: torch.Tensor, parts: bool = False):
        """Weighted, normalised cross-correlation on GRID [B, 193] and the bin weights (with
        ``parts``, also the sub-band correlations [B, len(bands) + 1, 193])."""
        x, gr, gi, mag, ok = mask_inputs(S, self.coherence)
        if self.use_mask:
            # both channel orders, averaged: swapping the channels negates the delay exactly
            xs = x[:, [1, 0] + list(range(2, x.shape[1]))]
            w = 0.5 * (torch.sigmoid(self.mask(x.float())[:, 0]) + torch.sigmoid(self.mask(xs.float())[:, 0]))
            w = w.double() * ok
            g = w * mag.pow(-self.beta.double())
        else:
            lvl = (S[:, 2].double() * S[:, 3].double()).clamp_min(0).sqrt()
            noise = torch.sort(lvl, dim=1).values[:, BINS // 4: BINS // 4 + 1]
            if self.taper == "hann":  # the daemon's phat+coh
                w = (mag * mag / (S[:, 2].double() * S[:, 3].double()).clamp_min(1e-300)).clamp(max=1) * ok
                g = w / mag
            else:  # --whole: phat-beta=0.7+snr
                w = (1 - 4 * noise / lvl.clamp_min(1e-300)).clamp_min(0.1) * ok
                g = w * mag.pow(-0.7)
        pr, pi = gr * g, gi * g
        amp = _WK * (pr * pr + pi * pi + 1e-60).sqrt()
        norm = amp.sum(1, keepdim=True).clamp_min(1e-30)
        c = (pr @ _COS - pi @ _SIN) / self.ov / norm
        if not parts:
            return c.float(), w
        edges = (0,) + self.bands + (BINS,)
        cb = [(pr[:, a:b] @ _COS[a:b] - pi[:, a:b] @ _SIN[a:b]) / self.ov
              / amp[:, a:b].sum(1, keepdim=True).clamp_min(1e-30) for a, b in zip(edges[:-1], edges[1:])]
        return c.float(), w, torch.stack(cb, 1).float()

    def forward(self, S: torch.Tensor, in_range: torch.Tensor) -> torch.Tensor:
        """Logits over GRID (-1e4 outside the search range)."""
        if self.bands and self.use_head:
            c, _, cb = self.correlation(S, parts=True)
        else:
            c, _ = self.correlation(S)
        m = in_range.float()
        lag = (_G.float() / MAX_LAG).expand_as(c)
        logits = c * torch.exp(self.temp)
        if self.use_head:
            # the head on the correlation and on its mirror image (the swapped channels' view),
            # the latter mirrored back, averaged: the logits of swapped channels are the mirror
            # image of these, and identical channels give a symmetric correction
            X = torch.stack([c * m, m, lag], 1)
            Xs = torch.stack([(c * m).flip(-1), m.flip(-1), lag], 1)
            if self.bands:
                X = torch.cat([X, cb * m[:, None]], 1)
                Xs = torch.cat([Xs, (cb * m[:, None]).flip(-1)], 1)
            logits = logits + 0.5 * (self.head(X)[:, 0] + self.head(Xs)[:, 0].flip(-1))
        return logits.masked_fill(~in_range, -1e4)


def in_range_mask(lags) -> torch.Tensor:
    lags = torch.as_tensor(np.asarray(lags, np.float64)).clamp(max=MAX_LAG)
    return _G.abs()[None, :] <= lags[:, None] + 1e-9


DECODE_RULES = ("argmax", "median")


def decode(logits: torch.Tensor, in_range: torch.Tensor, rule: str = "argmax",
           temperature: float = 1.0) -> torch.Tensor:
    """Delays (samples) from logits over the grid, by `rule`:
    - "argmax": the largest logit, then a parabola through it and its neighbours when both are
      in range (the engine does the same);
    - "median": the median of the posterior softmax(logits / temperature) over the search
      range, each grid point's mass spread evenly over its cell (+-GRID_STEP / 2), clamped to
      the range. It minimises the expected absolute error; with a broad posterior (short or
      noisy clips) it is the better answer, with two separate peaks it lies between them
      (docs/gccmask-spec.md, "Decoding")."""
    if rule == "median":
        return decode_median(logits, in_range, temperature)
    if rule != "argmax":
        raise ValueError(f"decoding rule {rule!r}, expected one of {DECODE_RULES}")
    return refine(logits, logits.argmax(1), in_range)


def refine(logits: torch.Tensor, j: torch.Tensor, in_range: torch.Tensor) -> torch.Tensor:
    """Grid point j's lag plus a parabola through it and its neighbours when both are in range
    and the parabola opens downward (offset clamped to +-0.5 grid steps)."""
    n = logits.shape[1]
    jm, jp = (j - 1).clamp(0, n - 1), (j + 1).clamp(0, n - 1)
    a, b, c = logits.gather(1, jm[:, None])[:, 0], logits.gather(1, j[:, None])[:, 0], logits.gather(1, jp[:, None])[:, 0]
    both = (j > 0) & (j < n - 1) & in_range.gather(1, jm[:, None])[:, 0] & in_range.gather(1, jp[:, None])[:, 0]
    den = a - 2 * b + c
    off = torch.where(both & (den < 0), 0.5 * (a - c) / torch.where(den < 0, den, -torch.ones_like(den)),
                      torch.zeros_like(den)).clamp(-0.5, 0.5)
    return _G.float()[j] + off * GRID_STEP


def decode_median(logits: torch.Tensor, in_range: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The posterior median (see `decode`), in float64."""
    z = (logits.double() / temperature).masked_fill(~in_range, -math.inf)
    p = torch.softmax(z, 1)
    cdf = p.cumsum(1)
    g = _G.double()
    n = len(g)
    j = (cdf < 0.5 * cdf[:, -1:]).sum(1).clamp(max=n - 1)  # the first point where the CDF reaches half
    c0 = torch.where(j > 0, cdf.gather(1, (j - 1).clamp(min=0)[:, None])[:, 0], torch.zeros_like(cdf[:, 0]))
    pj = p.gather(1, j[:, None])[:, 0]
    frac = ((0.5 * cdf[:, -1] - c0) / pj.clamp_min(1e-300)).clamp(0, 1)
    d = g[j] - GRID_STEP / 2 + GRID_STEP * frac
    lo = torch.where(in_range, g[None, :], torch.full_like(p, math.inf)).min(1).values
    hi = torch.where(in_range, g[None, :], torch.full_like(p, -math.inf)).max(1).values
    return torch.minimum(torch.maximum(d, lo), hi).float()


def decode_net(net, logits: torch.Tensor, in_range: torch.Tensor, S: torch.Tensor | None = None,
               blocks: list | None = None) -> torch.Tensor:
    """`decode` with the rule a network or ensemble carries (`.decoding`, from a model set's
    header; argmax when absent), then, when it carries a dominant-source check (`.dominant`) and
    the pooled spectra `S` are given, `louder_peak` (with each clip's `block_spectra` and window
    count, `(blocks, windows)`, for the check's spread rule; without them that rule is off)."""
    rule, temperature = getattr(net, "decoding", ("argmax", 1.0))
    d = decode(logits, in_range, rule, temperature)
    dominant = getattr(net, "dominant", None)
    if dominant is not None and S is not None:
        d = louder_peak(S, logits, in_range, d, *dominant, blocks=blocks)
    return d


DOMINANT_MIN_SEPARATION = 2.0  # samples between the two peaks the dominant-source check compares
DOMINANT_FIRST_BIN = 7         # its power sums start here (55 Hz at 16 kHz, NFFT 2048)
MAX_SPREAD_BLOCKS = 480        # the engine keeps at most this many blocks (TDEPipeline.maxWholeBlocks)


_DOMINANT_BINS = np.arange(DOMINANT_FIRST_BIN, BINS - 1)
_DOMINANT_W = 2 * np.pi * _DOMINANT_BINS / NFFT


def null_residual(S: np.ndarray, t: float) -> np.ndarray:
    """Per bin k = DOMINANT_FIRST_BIN ... BINS - 2, the power of the pooled spectra `S` ([4, BINS]:
    Re G, Im G, P_L, P_R) left after cancelling a source at delay t (samples):
    P_L + P_R - 2 Re(e^{i w_k t} G_k), w_k = 2 pi k / NFFT (float64)."""
    k, w = _DOMINANT_BINS, _DOMINANT_W
    gr, gi = S[0, k].astype(np.float64), S[1, k].astype(np.float64)
    return S[2, k].astype(np.float64) + S[3, k] - 2 * (gr * np.cos(w * t) - gi * np.sin(w * t))


def null_power(S: np.ndarray, t: float) -> float:
    """`null_residual` summed over its bins: the power left after cancelling a source at t."""
    return float(np.sum(null_residual(S, t)))


def demixed_log_ratio(S: np.ndarray, t1: float, t2: float, epsilon: float) -> float:
    """log(D(t2) / D(t1)) of pooled spectra `S` ([4, BINS]): D(t_a) = sum_k N_k(t_b) / (c_k + 4
    epsilon), the power of a source at t_a estimated by cancelling the one at t_b and dividing
    out the comb filter c_k = 4 sin^2(w_k (t1 - t2) / 2) that cancelling leaves on it (N_k the
    `null_residual`); nan when either is not positive."""
    n1, n2 = null_residual(S, t1), null_residual(S, t2)
    c = 4 * np.sin(_DOMINANT_W * (t1 - t2) / 2) ** 2 + 4 * epsilon
    d1, d2 = float(np.sum(n2 / c)), float(np.sum(n1 / c))
    return math.log(d2 / d1) if d1 > 0 and d2 > 0 else math.nan


def spread_blocks(blocks: np.ndarray, windows: int, block_windows: int) -> np.ndarray:
    """The blocks the spread rule counts: those holding at least a quarter of `block_windows`;
    none when the clip has more than MAX_SPREAD_BLOCKS blocks (the engine drops them)."""
    counts = block_window_counts(windows, block_windows)
    kept = [b for b, c in zip(blocks, counts) if 4 * c >= block_windows] if len(counts) <= MAX_SPREAD_BLOCKS else []
    return np.stack(kept) if kept else np.zeros((0, 4, BINS))


def louder_peak(S: torch.Tensor, logits: torch.Tensor, in_range: torch.Tensor, delays: torch.Tensor,
                max_gap: float, min_ratio: float, spread: tuple | None = None,
                blocks: list | None = None) -> torch.Tensor:
    """The dominant-source check (docs/gccmask-spec.md, "Decoding"): let the second peak be the
    logits' best local maximum other than the argmax (at least DOMINANT_MIN_SEPARATION samples
    from it). Its peak (refined by the parabola) becomes the answer when
    - (null rule) it is within `max_gap` of the argmax and cancelling the argmax's source leaves
      more than `min_ratio` times the power that cancelling the other leaves (the two nulls see
      the same comb filter, so the ratio compares the sources' power at the microphones, which
      PHAT-type weightings, counting bins, do not); or
    - (spread rule; `spread` = (max_gap, epsilon, min_ratio, min_spread, block_windows), and
      `blocks[i]` = (block_spectra, windows) of clip i) it is within that max_gap, its source's
      comb-corrected power (`demixed_log_ratio`) is more than min_ratio times the argmax's, and
      that log ratio, computed per block of the clip, has a population standard deviation above
      min_spread over at least two blocks: two independent talkers' powers vary apart over
      time, while a reflection or a head's shadow of one talker follows it."""
    out = delays.clone().double()
    lg = logits.double().numpy()
    M = in_range.numpy()
    sep = int(round(DOMINANT_MIN_SEPARATION / GRID_STEP))
    for i in range(lg.shape[0]):
        l, m = lg[i], M[i]
        j1 = int(np.argmax(np.where(m, l, -np.inf)))
        j2 = None
        for j in range(1, len(l) - 1):
            if m[j] and l[j] >= l[j - 1] and l[j] >= l[j + 1] and abs(j - j1) >= sep and (j2 is None or l[j] > l[j2]):
                j2 = j
        if j2 is None:
            continue
        gap = l[j1] - l[j2]
        Si = S[i].numpy()
        switch = gap <= max_gap and null_power(Si, GRID[j1]) > min_ratio * null_power(Si, GRID[j2])
        if not switch and spread is not None and blocks is not None and blocks[i] is not None and gap <= spread[0]:
            _, eps, ratio, min_spread, bw = spread
            B = spread_blocks(blocks[i][0], blocks[i][1], int(bw))
            whole = demixed_log_ratio(Si, GRID[j1], GRID[j2], eps)
            if len(B) >= 2 and whole > math.log(ratio):
                r = np.array([demixed_log_ratio(b, GRID[j1], GRID[j2], eps) for b in B])
                switch = bool(np.all(np.isfinite(r)) and float(np.std(r)) > min_spread)
        if switch:
            out[i] = refine(logits[i:i + 1], torch.tensor([j2]), in_range[i:i + 1])[0]
    return out.float()


def soft_target(delay: torch.Tensor) -> torch.Tensor:
    pos = (delay.clamp(-MAX_LAG, MAX_LAG) + MAX_LAG) / GRID_STEP
    lo = pos.floor().clamp(0, len(GRID) - 2)
    fr = (pos - lo).float()
    t = torch.zeros(len(delay), len(GRID))
    t.scatter_(1, lo.long()[:, None], (1 - fr)[:, None])
    t.scatter_add_(1, lo.long()[:, None] + 1, fr[:, None])
    return t


# ---- data --------------------------------------------------------------------------------------
def make_set(bank_path, speech, music, noise, n: int, seed: int, snr=(-15.0, 30.0), p_mix: float = 0.3,
             length: int = 1151, taper: str = "rectangular", memory_s: float = 0.0,
             highpass_hz: float = DEFAULT_HIGHPASS_HZ, p_rumble: float = 0.0, p_jump: float = 0.0,
             jump_age=(0.15, 0.5), p_head: float = 0.0, mix_range=(0.1, 0.8)) -> dict:
    """Pooled spectra of n rendered examples, high-passed as the engine does (``highpass_hz``,
    0 = off); a share ``p_rumble`` of them first get low-frequency rumble and DC offsets
    (``lowfreq.add_rumble``, from their own random stream: the renderings do not change); a share
    ``p_jump`` have the source jump to another position ``jump_age`` s before the end
    (``supervised.SupSampler``; for live training), a share ``p_head`` have the microphones on a
    rigid sphere (``supervised.SupSampler``, ``head.py``; HEAD = its radius, 0 = free field).
    A distractor's RMS is U(``mix_range``) times the target's."""
    from .pools import Pool
    from .supervised import SupConfig, SupSampler
    rumble_rng = np.random.default_rng([seed, 0x52554D42])
    bank = dict(np.load(bank_path))
    s = SupSampler(bank, [Pool.load(speech)], [Pool.load(music)] if music else [],
                   Pool.load(noise) if noise else None,
                   SupConfig(snr_range=tuple(snr), p_mix=p_mix, p_jump=p_jump, jump_age=tuple(jump_age),
                             p_head=p_head, mix_range=tuple(mix_range)),
                   seed=seed, length=length)
    S = np.zeros((n, 4, BINS), np.float32)
    Y, D, SNR, AGE, HEAD = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        x, Y[i] = s.example()
        if p_rumble > 0 and rumble_rng.random() < p_rumble:
            x = add_rumble(np.asarray(x, np.float64), rumble_rng)
        S[i] = pooled_spectra(highpass(x, highpass_hz), taper, memory_s)
        D[i], SNR[i], AGE[i] = s.info["mic_distance"], s.info["snr_db"], s.info["jump_age_s"]
        HEAD[i] = s.info["head_radius_m"]
    return (dict(S=S, Y=Y, D=D, SNR=SNR) | (dict(JUMP_AGE=AGE) if p_jump > 0 else {})
            | (dict(HEAD=HEAD) if p_head > 0 else {}))


def load_set(paths):
    zs = [np.load(p) for p in paths]
    S = torch.from_numpy(np.concatenate([z["S"] for z in zs]))
    Y = torch.from_numpy(np.concatenate([z["Y"] for z in zs])).float()
    D = np.concatenate([z["D"] for z in zs])
    return S, in_range_mask([max_lag(d) for d in D]), Y


# ---- training ----------------------------------------------------------------------------------
def evaluate(net: GccMask, paths) -> float:
    """MAE (ms) of the model on stored spectra sets."""
    S, M, Y = load_set(paths)
    with torch.no_grad():
        return (decode(net(S, M), M) - Y).abs().mean().item() / 16.0


def classical_mae(paths, taper: str = "rectangular") -> float:
    """MAE (ms) of the classical default (--whole: phat-beta=0.7+snr; hann, i.e. live:
    phat+coh; the same grid and decoding) on stored spectra sets: the baseline the learned
    weighting must beat."""
    S, M, Y = load_set(paths)
    net = GccMask(use_mask=False, use_head=False, taper=taper)
    with torch.no_grad():
        c, _ = net.correlation(S)
        return (decode(c.masked_fill(~M, -1e4), M) - Y).abs().mean().item() / 16.0


def train(data, val, out, epochs: int = 10, batch: int = 256, lr: float = 3e-3, seed: int = 0, threads: int = 2,
          use_mask: bool = True, use_head: bool = True, report=(), taper: str = "rectangular",
          coherence: bool = False, bands: tuple = (), head_layers: int = 2, head_kernel: int = 9,
          head_ch: int = 16, init=None, mask_ch: int = 16, mask_layers: int = 3):
    """Train a weighting on stored spectra; ``init``: an exported network (.safetensors) to
    start from (fine-tuning: its architecture replaces the one given here)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    S, M, Y = load_set(data)
    T = soft_target(Y)
    Sv, Mv, Yv = load_set(val)
    if init:
        path, _, member = str(init).rpartition(":")
        if member.isdigit() and path:   # FILE:N = member N of a model set (version 3)
            net = load_members(path)[int(member)][1]
        else:
            net = load_exported(init)
        if net.taper != taper:
            raise SystemExit(f"train: --init {init} pools with {net.taper} windows, the data with {taper}")
    else:
        net = GccMask(use_mask=use_mask, use_head=use_head, taper=taper, coherence=coherence, bands=bands,
                      head_layers=head_layers, head_kernel=head_kernel, head_ch=head_ch,
                      ch=mask_ch, mask_layers=mask_layers)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    steps = epochs * (len(S) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    history, best = [], float("inf")
    t0 = time.time()
    for ep in range(epochs):
        perm = torch.randperm(len(S))
        losses = []
        net.train()
        for i in range(len(S) // batch):
            b = perm[i * batch:(i + 1) * batch]
            loss = -(T[b] * F.log_softmax(net(S[b], M[b]), 1)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            mae = (decode(net(Sv, Mv), Mv) - Yv).abs().mean().item() / 16.0
        history.append(dict(epoch=ep + 1, loss=float(np.mean(losses)), val_mae_ms=mae, beta=net.beta.item(),
                            seconds=time.time() - t0))
        print(json.dumps(history[-1]), flush=True)
        state = dict(model=net.state_dict(), arch=net.arch, epoch=ep + 1, val_mae_ms=mae, use_mask=use_mask, use_head=use_head)
        torch.save(state, out / "last.pt")
        if mae < best:
            best = mae
            torch.save(state, out / "best.pt")
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    if report:
        st = torch.load(out / "best.pt", weights_only=True)
        net.load_state_dict(st["model"])
        net.eval()
        rows = {"val": (st["val_mae_ms"], classical_mae(val, taper))}
        for p in report:
            rows[Path(p).stem] = (evaluate(net, [p]), classical_mae([p], taper))
        (out / "report.json").write_text(json.dumps({"use_mask": use_mask, "use_head": use_head, "best_epoch": st["epoch"],
                                                     "mae_ms": {k: {"learned": a, "classical": b} for k, (a, b) in rows.items()}}, indent=1) + "\n")
        print(json.dumps(rows), flush=True)
    return net, history


# ---- export ------------------------------------------------------------------------------------
def header(net: GccMask, training: dict | None = None) -> dict:
    h = {"format": FORMAT, "version": 2 if net.bands else VERSION, "sample_rate": 16000, "window": WINDOW, "step": STEP,
            "nfft": NFFT, "taper": net.taper, "max_lag": MAX_LAG, "grid_step": GRID_STEP,
            "mask_inputs": 5 if net.coherence else 4, "mask_layers": len(net.mask) // 2 + 1, "mask_kernel": net.arch["mask_kernel"],
            "mask_channels": net.arch["ch"], "head_layers": len(net.head) // 2 + 1,
            "head_kernel": net.arch["head_kernel"], "head_channels": net.arch["head_ch"],
            "training": training or {}}
    if net.bands:  # version 2: the head also sees the sub-band correlations
        h["head_bands"] = list(net.bands)
    return h


def export(net: GccMask, path, training: dict | None = None) -> dict:
    from safetensors.torch import save_file
    from .export import add_checksum
    t = {}
    for name, seq in (("mask", net.mask), ("head", net.head)):
        convs = [m for m in seq if isinstance(m, nn.Conv1d)]
        for i, conv in enumerate(convs):
            t[f"{name}.{i}.weight"] = conv.weight.detach().float().contiguous()
            t[f"{name}.{i}.bias"] = conv.bias.detach().float().contiguous()
    t["beta"] = net.beta.detach().float().reshape(1)
    t["temp"] = net.temp.detach().float().reshape(1)
    h = header(net, training)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path), metadata={"tded_gccmask": json.dumps(h)})
    add_checksum(path)
    return h


def _read_meta(path) -> dict:
    from .export import read_header
    return read_header(path, "tded_gccmask")


def _net_from(h: dict, t: dict, prefix: str = "") -> GccMask:
    net = GccMask(ch=h["mask_channels"], mask_kernel=h["mask_kernel"], mask_layers=h["mask_layers"] - 1,
                  head_ch=h["head_channels"], head_kernel=h["head_kernel"], head_layers=h["head_layers"] - 1,
                  taper=h["taper"], coherence=h.get("mask_inputs", 4) == 5, bands=tuple(h.get("head_bands", ())))
    with torch.no_grad():
        for name, seq in (("mask", net.mask), ("head", net.head)):
            for i, conv in enumerate(m for m in seq if isinstance(m, nn.Conv1d)):
                conv.weight.copy_(t[f"{prefix}{name}.{i}.weight"])
                conv.bias.copy_(t[f"{prefix}{name}.{i}.bias"])
        net.beta.copy_(t[f"{prefix}beta"][0])
        net.temp.copy_(t[f"{prefix}temp"][0])
    return net.eval()


def load_exported(path) -> GccMask:
    """The network of a single-network file (format version 1 or 2); see `load_members`."""
    from safetensors.torch import load_file
    h = _read_meta(path)
    if h["version"] in SET_VERSIONS:
        raise ValueError(f"{path}: a model set of {len(h['members'])} networks: use load_members")
    return _net_from(h, load_file(str(path)))


def load_members(path) -> list[tuple[int, GccMask]]:
    """(min_span, network) of every network in the file, in increasing min_span order: one
    (min_span 0) for versions 1 and 2, each member of a model set (versions 3 and 4); each
    network's `.decoding` is its member's `decode` (rule, temperature), argmax when absent."""
    from safetensors.torch import load_file
    h = _read_meta(path)
    if h["version"] not in SET_VERSIONS:
        return [(0, load_exported(path))]
    t = load_file(str(path))
    out = []
    for i, m in enumerate(h["members"]):
        net = _net_from(m, t, f"m{i}.")
        net.decoding = decoding_of(m.get("decode"))
        net.dominant = dominant_of(m.get("decode"))
        if out and out[-1][0] == m["min_span"] and (out[-1][1].decoding, out[-1][1].dominant) != (net.decoding, net.dominant):
            # (the engine refuses such a set too: an ensemble is decoded by one rule)
            raise ValueError(f"{path}: member {i} is in an ensemble with member {i - 1} (same min_span) but has another decoding")
        out.append((m["min_span"], net))
    return out


def decoding_of(spec: dict | None) -> tuple[str, float]:
    """(rule, temperature) of a member header's `decode` object; argmax when absent."""
    if spec is None:
        return ("argmax", 1.0)
    rule, temperature = spec.get("rule"), float(spec.get("temperature", 1.0 if spec.get("rule") == "argmax" else -1))
    if rule not in DECODE_RULES or not 0.05 <= temperature <= 20:
        raise ValueError(f"decode {spec}: expected a rule of {DECODE_RULES} and a temperature in 0.05...20")
    return (rule, temperature)


def dominant_of(spec: dict | None) -> tuple | None:
    """The dominant-source check of a member header's `decode.dominant` object, or None:
    (max_gap, min_power_ratio), and with its `spread` object (max_gap, epsilon, min_ratio,
    min_spread, block_windows) as a third item."""
    d = (spec or {}).get("dominant")
    if d is None:
        return None
    gap, ratio = float(d.get("max_gap", -1)), float(d.get("min_power_ratio", -1))
    if (spec or {}).get("rule") != "argmax" or not 0 <= gap <= 50 or not 1 <= ratio <= 100:
        raise ValueError(f"decode {spec}: 'dominant' needs the argmax rule, max_gap in 0...50 and min_power_ratio in 1...100")
    sp = d.get("spread")
    if sp is None:
        return (gap, ratio)
    t = (float(sp.get("max_gap", -1)), float(sp.get("epsilon", -1)), float(sp.get("min_ratio", -1)),
         float(sp.get("min_spread", -1)), sp.get("block_windows", -1))
    if not (0 <= t[0] <= 50 and 0 < t[1] <= 1 and 1 <= t[2] <= 100 and 0 < t[3] <= 20
            and isinstance(t[4], int) and 8 <= t[4] <= 100000):
        raise ValueError(f"decode {spec}: 'spread' needs max_gap in 0...50, epsilon in (0, 1], min_ratio in 1...100, "
                         "min_spread in (0, 20] and block_windows an integer in 8...100000")
    return (gap, ratio, t)


class Ensemble(nn.Module):
    """Networks of a model set with the same min_span: their log-probabilities over the grid
    (log-softmax of each one's logits) averaged, -1e4 outside the search range; decoded like one
    network's logits (the engine does the same, docs/gccmask-spec.md)."""

    def __init__(self, nets: list[GccMask]):
        super().__init__()
        if len(nets) < 2:
            raise ValueError("an ensemble needs at least two networks")
        self.nets = nn.ModuleList(nets)
        self.taper = nets[0].taper

    def forward(self, S: torch.Tensor, in_range: torch.Tensor) -> torch.Tensor:
        z = sum(F.log_softmax(n(S, in_range).double(), 1) for n in self.nets) / len(self.nets)
        return z.float().masked_fill(~in_range, -1e4)

    def correlation(self, S: torch.Tensor, parts: bool = False):
        """The first network's correlation and bin weights (the fixture's `weights`)."""
        return self.nets[0].correlation(S, parts)


def member_for(members: list[tuple[int, GccMask]], windows: int) -> GccMask | Ensemble:
    """What the engine uses for `windows` pooled windows (step STEP, window WINDOW): the
    networks with the largest min_span that the span (windows - 1) x STEP + WINDOW reaches; one
    network, or an `Ensemble` of those sharing that min_span."""
    span = (windows - 1) * STEP + WINDOW
    top = [m for m, _ in members if m <= span][-1]
    nets = [net for m, net in members if m == top]
    if len(nets) == 1:
        return nets[0]
    ens = Ensemble(nets)
    ens.decoding = getattr(nets[0], "decoding", ("argmax", 1.0))
    ens.dominant = getattr(nets[0], "dominant", None)
    return ens


def bundle(members: list[tuple[str, int]], out, training: dict | None = None,
           decoding: dict[int, tuple[str, float]] | None = None,
           dominant: dict[int, tuple[float, float]] | None = None) -> dict:
    """A model set (format version 4) from exported single-network files and the shortest pooled
    span (samples) each is for: the engine uses, per estimate, the members with the largest
    min_span the pooled span reaches (e.g. a model trained on short clips from 0, one trained on longer
    clips and mixtures from 4000 = 0.25 s). Members with the same min_span form an ensemble
    (their log-probabilities are averaged; they must share the lag grid). `decoding` maps a
    min_span to the (rule, temperature) its members are decoded with (`decode`); argmax for
    the others. `dominant` maps a min_span (decoded by argmax) to the (max_gap, min_power_ratio)
    of its dominant-source check (`louder_peak`), optionally with a third item, the spread rule's
    (max_gap, epsilon, min_ratio, min_spread, block_windows)."""
    from safetensors.torch import load_file, save_file
    from .export import add_checksum
    spans = [s for _, s in members]
    if not 1 <= len(members) <= MAX_MEMBERS:
        raise ValueError(f"a model set holds 1 to {MAX_MEMBERS} networks, not {len(members)}")
    if spans[0] != 0 or any(a > b for a, b in zip(spans, spans[1:])):
        raise ValueError(f"min_span must start at 0 and never decrease: {spans}")
    decoding, dominant = dict(decoding or {}), dict(dominant or {})
    if unknown := sorted((set(decoding) | set(dominant)) - set(spans)):
        raise ValueError(f"a decoding for min_span {unknown[0]}, which no member has")
    tensors, heads = {}, []
    for i, (path, span) in enumerate(members):
        h = _read_meta(path)
        if h["version"] in SET_VERSIONS:
            raise ValueError(f"{path} is already a model set")
        if heads and (h["window"], h["taper"]) != (heads[0]["window"], heads[0]["taper"]):
            raise ValueError(f"{path}: window/taper differ from the first member's")
        if heads and span == heads[-1]["min_span"] and (h["max_lag"], h["grid_step"]) != (heads[-1]["max_lag"], heads[-1]["grid_step"]):
            raise ValueError(f"{path}: an ensemble's networks (same min_span) need the same lag grid")
        member = {**h, "min_span": span, "source": Path(path).name}
        if span in decoding or span in dominant:
            rule, temperature = decoding.get(span, ("argmax", 1.0))
            member["decode"] = {"rule": rule} | ({"temperature": float(temperature)} if rule == "median" else {})
            if span in dominant:
                dm = dominant[span]
                member["decode"]["dominant"] = {"max_gap": float(dm[0]), "min_power_ratio": float(dm[1])}
                if len(dm) > 2 and dm[2] is not None:
                    g, e, r, sd, bw = dm[2]
                    member["decode"]["dominant"]["spread"] = {"max_gap": float(g), "epsilon": float(e), "min_ratio": float(r),
                                                              "min_spread": float(sd), "block_windows": int(bw)}
            decoding_of(member["decode"]), dominant_of(member["decode"])  # (validate)
        heads.append(member)
        tensors.update({f"m{i}.{k}": v.contiguous() for k, v in load_file(str(path)).items()})
    head = {"format": FORMAT, "version": SET_VERSION, "members": heads, "training": training or {}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"tded_gccmask": json.dumps(head)})
    add_checksum(out)
    return head


def estimate(net: GccMask, x: np.ndarray, mic_distance: float) -> float:
    """One clip [2, N] -> delay in samples (positive: right channel later)."""
    S = torch.from_numpy(pooled_spectra(x))[None]
    M = in_range_mask([max_lag(mic_distance)])
    dominant = getattr(net, "dominant", None)
    blocks = None
    if dominant is not None and len(dominant) > 2:
        bw = int(dominant[2][4])
        blocks = [(block_spectra(x, bw), pooled_windows(x))]
    with torch.no_grad():
        return float(decode_net(net, net(S, M), M, S, blocks)[0])


def fixture_clips(seed: int = 5):
    """Parity clips: white noise with right = left delayed by a fractional amount (windowed-sinc
    interpolation), at several SNRs and spacings, a decaying-noise reverberant pair, a clip at
    -15 dB and a two-source clip."""
    rng = np.random.default_rng(seed)
    clips = []
    for delay, snr, spacing in ((5.0, 30, 0.3), (-3.25, 10, 0.2), (1.6, 0, 0.1), (-7.4, -5, 0.25), (0.3, 20, 0.05)):
        n = 1151 + 64
        s = rng.standard_normal(n)
        t = np.arange(-32, 33)
        h = np.sinc(t - delay) * np.hanning(len(t))
        left = s[32:32 + 1151]
        right = np.convolve(s, h, mode="same")[32:32 + 1151]
        x = np.stack([left, right])
        x = x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x ** 2) / 10 ** (snr / 10))
        clips.append((x * 0.05, delay, spacing))
    ir = rng.standard_normal((2, 2000)) * np.exp(-np.arange(2000) / 300.0)
    ir[0, 0] += 20  # direct paths ~4 dB above the reverberation
    ir[1, 6] += 20
    s = rng.standard_normal(1151 + 2000)
    x = np.stack([np.convolve(s, ir[0])[2000:2000 + 1151], np.convolve(s, ir[1])[2000:2000 + 1151]])
    clips.append((x * 0.02, 6.0, 0.2))
    # two clips with a broad or two-peaked posterior, where the decoding rules disagree: a
    # delay of 2.5 samples at -15 dB, and two sources (+4 and -6 samples, the second at 0.8 of
    # the first's level) at 10 dB
    def delayed(delay, n=1151):
        s = rng.standard_normal(n + 64)
        t = np.arange(-32, 33)
        h = np.sinc(t - delay) * np.hanning(len(t))
        return np.stack([s[32:32 + n], np.convolve(s, h, mode="same")[32:32 + n]])
    x = delayed(2.5)
    clips.append((0.05 * (x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x ** 2) * 10 ** 1.5)), 2.5, 0.3))
    x = delayed(4.0) + 0.8 * delayed(-6.0)
    clips.append((0.05 * (x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x ** 2) / 10)), 4.0, 0.25))
    return clips


def fixture_long_clips(seed: int = 7, n: int = 8000, count: int = 24):
    """Candidate clips for the spread rule's parity: 0.5 s of two white-noise talkers (+5 and
    -4 samples; the second at 1.05-1.4 times the first's level) whose levels vary independently
    over 31-ms stretches, at 20 dB SNR; (audio [2, n], the first talker's delay, spacing 0.2 m)."""
    rng = np.random.default_rng(seed)
    t = np.arange(-32, 33)
    out = []
    for _ in range(count):
        x = np.zeros((2, n))
        for delay, gain in ((5.0, 1.0), (-4.0, rng.uniform(1.05, 1.4))):
            src = rng.standard_normal(n + 64)
            env = np.repeat(rng.uniform(0.05, 1.0, (n + 64) // 500 + 1), 500)[:n + 64]
            src = src * env
            h = np.sinc(t - delay) * np.hanning(len(t))
            x += gain * np.stack([src[32:32 + n], np.convolve(src, h, mode="same")[32:32 + n]])
        x = x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x ** 2) / 100)
        out.append((0.05 * x, 5.0, 0.2))
    return out


def write_fixture(net: GccMask | list, out) -> dict:
    """Spectra of `fixture_clips` (float32, what the engine pools; with the model's taper:
    rectangular and equal weights, or Hann with the live 0.2 s memory), their search ranges, the
    model's bin weights and delays: the Swift parity test feeds the spectra to the engine's
    resolve and compares. For a model set (`load_members`): `delay` and `weights` of what the
    shortest spans use (the first member, or the ensemble it belongs to), `delay.m<i>` of every
    member on its own, and `delay.set<i>` of what the set gives for member i's min_span (its
    ensemble's delay when it has one)."""
    from safetensors.torch import save_file
    members = net if isinstance(net, list) else [(0, net)]
    first = member_for(members, 1)
    clips = fixture_clips()
    memory = 0.2 if first.taper == "hann" else 0.0
    S = torch.from_numpy(np.stack([pooled_spectra(x, first.taper, memory) for x, _, _ in clips]))
    lags = [max_lag(d) for _, _, d in clips]
    M = in_range_mask(lags)
    with torch.no_grad():
        delays = decode_net(first, first(S, M), M, S)
        _, w = first.correlation(S)
    t = {"spectra": S.contiguous(), "max_lag": torch.tensor(lags, dtype=torch.float32),
         "delay": delays.float().contiguous(), "weights": w.float().contiguous(),
         "truth": torch.tensor([d for _, d, _ in clips], dtype=torch.float32)}
    if len(members) > 1:
        with torch.no_grad():
            for i, (span, m) in enumerate(members):
                t[f"delay.m{i}"] = decode_net(m, m(S, M), M, S).float().contiguous()
                windows = 1 + max(0, -(-(span - WINDOW) // STEP))
                group = member_for(members, windows)
                t[f"delay.set{i}"] = decode_net(group, group(S, M), M, S).float().contiguous()
    # a set whose dominant-source check has a spread rule: two of `fixture_long_clips`, one where
    # the rule switches and one where it does not, with their block spectra and audio (the
    # engine's pipeline must pool the same blocks)
    long = member_for(members, 10 ** 6)
    dom = getattr(long, "dominant", None)
    if dom is not None and len(dom) > 2:
        bw = int(dom[2][4])
        picked = {}
        for x, _, d in fixture_long_clips():
            Sx = torch.from_numpy(pooled_spectra(x))[None]
            Mx = in_range_mask([max_lag(d)])
            blocks = block_spectra(x, bw)
            windows = pooled_windows(x)
            with torch.no_grad():
                z = long(Sx, Mx)
                plain = float(decode_net(long, z, Mx, Sx)[0])
                spread = float(decode_net(long, z, Mx, Sx, [(blocks, windows)])[0])
            key = abs(spread - plain) > 1
            picked.setdefault(key, (x, d, Sx[0], blocks, windows, plain, spread))
            if len(picked) == 2:
                break
        if len(picked) < 2:
            raise ValueError("fixture: no candidate clip where the spread rule switches (or none where it does not)")
        rows = [picked[True], picked[False]]
        t["long.audio"] = torch.from_numpy(np.stack([r[0] for r in rows]).astype(np.float32)).contiguous()
        t["long.spectra"] = torch.stack([r[2] for r in rows]).contiguous()
        t["long.blocks"] = torch.from_numpy(np.stack([r[3] for r in rows])).contiguous()
        t["long.block_windows"] = torch.tensor([block_window_counts(r[4], bw) for r in rows], dtype=torch.float32)
        t["long.windows"] = torch.tensor([r[4] for r in rows], dtype=torch.float32)
        t["long.max_lag"] = torch.tensor([max_lag(r[1]) for r in rows], dtype=torch.float32)
        t["long.delay"] = torch.tensor([r[6] for r in rows], dtype=torch.float32)
        t["long.delay_without_blocks"] = torch.tensor([r[5] for r in rows], dtype=torch.float32)
    save_file(t, str(out))
    return ({k: v.tolist() for k, v in t.items() if k.startswith("delay") or k.startswith("long.delay")}
            | {"truth": [d for _, d, _ in clips]})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="render labelled examples and store their pooled spectra")
    d.add_argument("--bank", required=True)
    d.add_argument("--speech", default="../data/pools/train_speech_real.npz")
    d.add_argument("--music", default="../data/pools/train_music.npz")
    d.add_argument("--noise", default="../data/pools/train_noise.npz")
    d.add_argument("--val", action="store_true", help="a validation set: one source, SNR -10..30 dB (pass the validation bank and pools)")
    d.add_argument("--n", type=int, default=30000)
    d.add_argument("--seed", type=int, default=21)
    d.add_argument("--out", required=True)
    d.add_argument("--length", type=int, default=1151, help="samples per example")
    d.add_argument("--taper", choices=TAPERS, default="rectangular")
    d.add_argument("--memory", type=float, default=0.0, help="live pooling: time constant (s) of the window weights")
    d.add_argument("--p-mix", type=float, default=None,
                   help="share of examples with a distractor (default 0.3; 0 with --val)")
    d.add_argument("--highpass", type=float, default=DEFAULT_HIGHPASS_HZ,
                   help="the engine's input high-pass (Hz; engine.highpass_hz), 0 = off")
    d.add_argument("--p-rumble", type=float, default=0.0,
                   help="share of examples given low-frequency rumble and DC offsets before the high-pass")
    d.add_argument("--p-jump", type=float, default=0.0,
                   help="share of examples whose source jumps to another position before the end (live training)")
    d.add_argument("--jump-age", type=float, nargs=2, default=(0.15, 0.5), metavar=("MIN", "MAX"),
                   help="seconds from the jump to the example's end, uniform (default 0.15 0.5)")
    d.add_argument("--p-head", type=float, default=0.0,
                   help="share of examples with the microphones on a rigid sphere (a head or a body)")
    d.add_argument("--mix-range", type=float, nargs=2, default=(0.1, 0.8), metavar=("LO", "HI"),
                   help="a distractor's RMS over the target's, uniform (default 0.1 0.8)")
    hp = sub.add_parser("highpass", help="apply the engine's high-pass to spectra pooled without it "
                        "(|H|^2 per bin; exact for audio without strong low-frequency content)")
    hp.add_argument("spectra")
    hp.add_argument("out")
    hp.add_argument("--highpass", type=float, default=DEFAULT_HIGHPASS_HZ)
    t = sub.add_parser("train")
    t.add_argument("--data", nargs="+", required=True)
    t.add_argument("--val", nargs="+", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--ablate", choices=("mask", "head"), help="train without the learned mask or without the head")
    t.add_argument("--report", nargs="*", default=(), help="more spectra sets to score the best checkpoint on")
    t.add_argument("--taper", choices=TAPERS, default="rectangular", help="the windows the data were pooled with")
    t.add_argument("--coherence", action="store_true", help="give the mask each bin's coherence too (live)")
    t.add_argument("--bands", type=int, nargs="*", default=[], help="inner band edges (bins of the 2048-point FFT): the head also sees each sub-band's correlation")
    t.add_argument("--head-layers", type=int, default=2, help="hidden conv layers of the lag head")
    t.add_argument("--head-kernel", type=int, default=9)
    t.add_argument("--head-channels", type=int, default=16)
    t.add_argument("--mask-channels", type=int, default=16, help="channels of the mask CNN's hidden layers")
    t.add_argument("--mask-layers", type=int, default=3, help="hidden conv layers of the mask CNN")
    t.add_argument("--init", default=None, help="fine-tune: start from this exported network (its architecture); FILE:N = member N of a model set")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("out")
    bd = sub.add_parser("bundle", help="a model set (format version 4): exported networks, each for pooled spans from its MIN_SPAN samples on")
    bd.add_argument("out")
    bd.add_argument("--member", action="append", required=True, metavar="FILE:MIN_SPAN",
                    help="an exported network and the shortest pooled span (samples) it is for; the first 0")
    bd.add_argument("--median", action="append", default=[], metavar="MIN_SPAN:TEMPERATURE",
                    help="decode the members of this min_span by the posterior median at this temperature "
                         "(default: argmax and a parabola)")
    bd.add_argument("--dominant", action="append", default=[], metavar="MIN_SPAN:MAX_GAP:MIN_RATIO",
                    help="after the argmax, the dominant-source check for the members of this min_span: "
                         "switch to the second peak when it is within MAX_GAP nats and carries MIN_RATIO "
                         "times the first's power (null steering on the pooled spectra)")
    bd.add_argument("--spread", action="append", default=[], metavar="MIN_SPAN:MAX_GAP:EPS:MIN_RATIO:MIN_SPREAD:BLOCK",
                    help="with --dominant for the same min_span: also switch when the second peak is within "
                         "MAX_GAP nats, its comb-corrected power is MIN_RATIO times the first's and that log "
                         "ratio varies by more than MIN_SPREAD (standard deviation) over blocks of BLOCK windows")
    bd.add_argument("--note", default="", help="provenance note stored in the header")
    fx = sub.add_parser("fixture", help="write the engine parity fixture of an exported model")
    fx.add_argument("model")
    fx.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "data":
        if a.val:
            z = make_set(a.bank, a.speech, a.music, a.noise, a.n, a.seed, snr=(-10.0, 30.0),
                         p_mix=0.0 if a.p_mix is None else a.p_mix, length=a.length, taper=a.taper, memory_s=a.memory,
                         highpass_hz=a.highpass, p_rumble=a.p_rumble, p_jump=a.p_jump, jump_age=a.jump_age,
                         p_head=a.p_head)
        else:
            z = make_set(a.bank, a.speech, a.music, a.noise, a.n, a.seed, length=a.length, taper=a.taper,
                         memory_s=a.memory, p_mix=0.3 if a.p_mix is None else a.p_mix,
                         highpass_hz=a.highpass, p_rumble=a.p_rumble, p_jump=a.p_jump, jump_age=a.jump_age,
                         p_head=a.p_head, mix_range=a.mix_range)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(a.out, **z)
        print(a.out, z["S"].shape)
    elif a.cmd == "highpass":
        z = dict(np.load(a.spectra))
        z["S"] = z["S"] * highpass_power_gain(a.highpass, BINS, NFFT)[None, None, :]
        np.savez(a.out, **z)
        print(a.out, z["S"].shape)
    elif a.cmd == "train":
        train(a.data, a.val, a.out, epochs=a.epochs, seed=a.seed, threads=a.threads,
              use_mask=a.ablate != "mask", use_head=a.ablate != "head", report=a.report, taper=a.taper,
              coherence=a.coherence, bands=tuple(a.bands), head_layers=a.head_layers, head_kernel=a.head_kernel,
              head_ch=a.head_channels, init=a.init, lr=a.lr, mask_ch=a.mask_channels, mask_layers=a.mask_layers)
    elif a.cmd == "fixture":
        print(json.dumps(write_fixture(load_members(a.model), a.out)))
    elif a.cmd == "bundle":
        members = []
        for m in a.member:
            path, _, span = m.rpartition(":")
            members.append((path, int(span)))
        decoding = {}
        for m in a.median:
            span, _, temperature = m.partition(":")
            decoding[int(span)] = ("median", float(temperature or 1.0))
        dominant = {}
        for m in a.dominant:
            span, gap, ratio = m.split(":")
            dominant[int(span)] = (float(gap), float(ratio))
        for m in a.spread:
            span, gap, eps, ratio, sd, bw = m.split(":")
            if int(span) not in dominant:
                raise SystemExit(f"bundle: --spread {m} needs a --dominant for min_span {span}")
            dominant[int(span)] = dominant[int(span)] + ((float(gap), float(eps), float(ratio), float(sd), int(bw)),)
        print(json.dumps(bundle(members, a.out, training={"note": a.note} if a.note else None,
                                decoding=decoding, dominant=dominant), indent=1))
    else:
        st = torch.load(a.checkpoint, weights_only=True)
        if not (st.get("use_mask", True) and st.get("use_head", True)):
            raise SystemExit("export: only a model with both the mask and the head can be exported (this is an ablation)")
        net = GccMask(**st["arch"])
        net.load_state_dict(st["model"])
        print(json.dumps(export(net, a.out, training={"epoch": st["epoch"], "val_mae_ms": st["val_mae_ms"]}), indent=1))


if __name__ == "__main__":
    main()

"""Supervised stage: stereo rendered on the fly from a precomputed RIR bank (labels are free), and
the losses on the encoder's band distribution.

Rendering (``SupSampler``, numpy + scipy FFT convolution; a few ms per example, against ~0.1-0.3 s
of model time per example on one CPU thread, so the model, not the simulator, is what runs):

* target: a dry mono segment (speech or music pool) convolved with the two RIRs of a random
  (room, position) of the bank, with one RIR length of pre-roll so the reverberation is built up;
  label = the bank's direct-path delay difference (exact, fractional, samples at 16 kHz);
* distractor (p_mix): another source at another position of the same room, RMS ratio
  U(mix_range) to the target (the label stays the dominant source's delay);
* noise at SNR U(snr_range) dB (to the mean reverberant target power), one of:
  ``white`` / ``pink`` (independent per microphone, i.e. sensor noise), ``diffuse`` (pink or white,
  spherically isotropic: inter-microphone coherence sinc(2 f d / c) for the pair's spacing d),
  ``recorded`` (a real recorded noise pool made diffuse the same way) and ``recorded-point`` (a
  recorded noise played from another position of the room, through its RIRs);
* per-microphone gain mismatch U(0.8, 1.25), random level, channel swap (p 0.5, label negated);
* direction jump (p_jump, for live training): the source moves to another position of the room
  ``jump_age`` seconds before the example's end (U(jump_age) s): the part of the dry signal before
  the jump is rendered through the old position's RIRs, the rest through the new one's (so the
  old position's reverberation tail carries on past the jump), and the label is the new
  position's delay. With ages above the daemon's memory time constant times ln 2 the new
  position holds most of the pooled evidence, so the label is the dominant direction, as with
  a distractor.
* body between the microphones (p_head): the microphones sit at opposite ends of a rigid sphere
  of radius U(head_radius) m (``head.py``) instead of in free air. The rendering's right channel
  is advanced by the free-field delay, then both go through the sphere's impulse responses for
  the direction of that delay (the room's reflections too, as if they came from the source: an
  approximation), a distractor through those of its own direction. The label is the sphere
  pair's broadband ITD (``head.broadband_itd``, the convention of eval/kemar.py) and the
  example's spacing the sphere's effective spacing (``head.effective_spacing``).

Losses (``supervised_losses``): the band logits a_k(d) = <e_L(s_k), e_R(s_k + d)> / tau for
d = -24..24 and left windows s_k = 24 + 8k (k = 0..K-1, the live engine's left stride) against
all right windows, then
* ``sup``: cross-entropy of each window's softmax to a soft two-bin target at the true fractional
  delay (weights 1 - frac and frac on floor and floor + 1);
* ``span``: the same cross-entropy on the distribution accumulated over the K windows of the
  example (a span of 8 (K - 1) + 1 samples): ``prob`` = mean of the per-window probabilities,
  ``logp`` = softmax of the sum of per-window log-probabilities;
* ``reg``: Huber (1 sample) of the mean over the span of the per-window expectations (the
  engine's "mean" vote) against the true delay.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import fftconvolve

from . import head as head_mod
from .pools import Pool
from .rirbank import RATE, speed_of_sound

NOISE_KINDS = ("white", "pink", "diffuse", "recorded", "recorded-point")


def example_length(K: int, max_delay: int = 24, window: int = 1024, step: int = 8) -> int:
    return window + 2 * max_delay + step * (K - 1)


@dataclass
class SupConfig:
    K: int = 100  # left windows per example (span = 8*(K-1)+1 samples)
    p_mix: float = 0.3
    mix_range: Tuple[float, float] = (0.1, 0.8)
    snr_range: Tuple[float, float] = (-10.0, 30.0)
    p_swap: float = 0.5
    noise_kinds: Tuple[str, ...] = NOISE_KINDS
    music_frac: float = 0.3
    p_jump: float = 0.0
    jump_age: Tuple[float, float] = (0.15, 0.5)
    p_head: float = 0.0
    head_radius: Tuple[float, float] = (0.05, 0.12)


def _colour(n: int, rng, kind: str) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "white":
        return w
    X = np.fft.rfft(w)
    f = np.arange(len(X), dtype=np.float64)
    X[1:] /= np.sqrt(f[1:])  # pink: 1/f power
    X[0] = 0
    return np.fft.irfft(X, n)


def diffuse_pair(a: np.ndarray, b: np.ndarray, spacing: float, c: float) -> np.ndarray:
    """Two independent signals -> a pair with the spherically-isotropic coherence
    sinc(2 f d / c) (Habets & Gannot's two-channel method with a real coherence)."""
    n = len(a)
    A, B = np.fft.rfft(a), np.fft.rfft(b)
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    g = np.sinc(2 * f * spacing / c)
    X2 = g * A + np.sqrt(np.clip(1 - g * g, 0, None)) * B
    return np.stack([a, np.fft.irfft(X2, n)])


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


class SupSampler:
    """Labelled stereo examples [B, 2, N] rendered from an RIR bank; seeded, resumable."""

    def __init__(self, bank: dict, sources: Sequence[Pool], music: Sequence[Pool] = (),
                 noise: Optional[Pool] = None, cfg: SupConfig = SupConfig(), seed: int = 0,
                 length: int = 0):
        self.rirs = bank["rirs"]
        self.delay = bank["delay"]
        self.meta = bank["meta"]
        self.spacing = bank["meta"][:, 4]
        self.speech, self.music = list(sources), list(music)
        assert self.speech or self.music, "no source pools"
        self.noise = noise
        self.cfg = cfg
        self.N = length or example_length(cfg.K)
        self.info = {}
        self.T = self.rirs.shape[-1]
        self.kinds = [k for k in cfg.noise_kinds if noise is not None or not k.startswith("recorded")]
        self.c = speed_of_sound()
        self.rng = np.random.default_rng(seed)
        self._head_spacings: dict = {}   # head radius -> effective spacing (p_head renderings)

    def _source(self) -> np.ndarray:
        rng = self.rng
        use_music = self.music and (not self.speech or rng.random() < self.cfg.music_frac)
        pools = self.music if use_music else self.speech
        p = pools[int(rng.integers(len(pools)))]
        return p.segment(self.N + self.T, rng, check=self.N)

    def _render(self, src: np.ndarray, h: np.ndarray) -> np.ndarray:
        y = fftconvolve(src[None, :], h.astype(np.float32), axes=-1)
        return y[:, self.T: self.T + self.N]

    def _on_head(self, x: np.ndarray, delay: float, spacing: float, a: float):
        """x rendered for free-field microphones with direct-path delay `delay` (samples) ->
        the same through a rigid sphere of radius a; returns (signal, the sphere pair's ITD)."""
        phi = float(np.arcsin(np.clip(delay / RATE * self.c / spacing, -1.0, 1.0)))
        pair = head_mod.sphere_hrirs(phi, a, RATE, c=self.c)
        N = x.shape[-1]
        n = 1 << (N + 2 * head_mod.TAPS).bit_length()
        X = np.fft.rfft(x, n, axis=-1)
        X[1] *= np.exp(2j * np.pi * np.arange(X.shape[-1]) * delay / n)   # undo the free-field lag
        y = np.fft.irfft(X * np.fft.rfft(pair, n, axis=-1), n, axis=-1)
        return y[:, head_mod.CENTRE: head_mod.CENTRE + N], head_mod.broadband_itd(pair, RATE)

    def _head_spacing(self, a: float) -> float:
        if a not in self._head_spacings:
            self._head_spacings[a] = head_mod.effective_spacing(a, RATE, self.c)
        return self._head_spacings[a]

    def example(self):
        rng, cfg, N = self.rng, self.cfg, self.N
        r = int(rng.integers(self.rirs.shape[0]))
        P = self.rirs.shape[1]
        order = rng.permutation(P)
        k = int(order[0])
        src = self._source()
        jump_age, k_old = 0.0, -1
        # the jump's draws only when jumps are on: renderings without them stay as they were
        if cfg.p_jump > 0 and rng.random() < cfg.p_jump:
            k_old, k_new = k, int(order[min(3, P - 1)])
            jump_age = float(rng.uniform(*cfg.jump_age))
            cut = self.T + max(0, self.N - int(round(jump_age * RATE)))
        if jump_age and _rms(src[cut:]) < 0.5 * _rms(src[self.T:]):
            jump_age = 0.0  # the source is (nearly) silent after the jump: the example stays static
        if jump_age:
            old, new = src.copy(), src.copy()
            old[cut:] = 0
            new[:cut] = 0
            k = k_new
            x = self._render(old, self.rirs[r, k_old]) + self._render(new, self.rirs[r, k])
        else:
            x = self._render(src, self.rirs[r, k])
        delay = float(self.delay[r, k])
        spacing, head_a = float(self.spacing[r]), 0.0
        # the head's draws only when it is on: renderings without it stay as they were
        if cfg.p_head > 0 and rng.random() < cfg.p_head:
            head_a = round(float(rng.uniform(*cfg.head_radius)), 3)
            x, delay = self._on_head(x, delay, spacing, head_a)
        if rng.random() < cfg.p_mix:
            d = self._render(self._source(), self.rirs[r, int(order[1])])
            if head_a:
                d, _ = self._on_head(d, float(self.delay[r, int(order[1])]), spacing, head_a)
            x = x + d * (_rms(x) / _rms(d) * rng.uniform(*cfg.mix_range))
        if head_a:
            spacing = self._head_spacing(head_a)
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind in ("white", "pink"):
            n = np.stack([_colour(N, rng, kind), _colour(N, rng, kind)])
        elif kind == "diffuse":
            ck = "pink" if rng.random() < 0.5 else "white"
            n = diffuse_pair(_colour(N, rng, ck), _colour(N, rng, ck), spacing, self.c)
        elif kind == "recorded":
            n = diffuse_pair(self.noise.segment(N, rng).astype(np.float64),
                             self.noise.segment(N, rng).astype(np.float64), spacing, self.c)
        else:  # recorded-point
            n = self._render(self.noise.segment(N + self.T, rng, check=N), self.rirs[r, int(order[2])])
        snr = rng.uniform(*cfg.snr_range)
        x = x + n * (_rms(x) / max(_rms(n), 1e-9) * 10 ** (-snr / 20))
        x = x * rng.uniform(0.8, 1.25, size=(2, 1))
        x = x / max(_rms(x), 1e-9) * 10 ** rng.uniform(-1.7, -0.7)
        swap = rng.random() < cfg.p_swap
        if swap:
            x, delay = x[::-1], -delay
        self.info = {"room": r, "position": k, "noise": kind, "snr_db": snr, "swap": bool(swap),
                     "rt60_target": float(self.meta[r, 3]), "mic_distance": spacing,
                     "jump_age_s": jump_age, "jump_from": k_old if jump_age else -1,
                     "head_radius_m": head_a}
        return np.clip(x, -1, 1).astype(np.float32), delay

    def batch(self, n: int):
        xs, ds = zip(*(self.example() for _ in range(n)))
        return torch.from_numpy(np.stack(xs)), torch.tensor(ds, dtype=torch.float64)

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, s):
        self.rng.bit_generator.state = s


# ---- model side ------------------------------------------------------------------------------
def all_window_embeddings(model, x: torch.Tensor) -> torch.Tensor:
    """Embeddings of every window start 0..N-window of x [B, N] -> [B, W, D] (L2-normalised),
    vectorised over the 8 phases (same numbers as model.window_embeddings(x, stride=1))."""
    from .model import columns
    cfg = model.cfg
    hop, M = cfg.hop, cfg.M
    N = x.shape[-1]
    W = N - cfg.window + 1
    O = -(-W // hop)
    per = []
    for p in range(hop):
        f = columns(x, cfg, start=p, step=hop)
        out = model.stack(f)
        cs = torch.cumsum(F.pad(out, (1, 0)), dim=-1)
        pooled = (cs[..., M:] - cs[..., :-M]) / M  # [B, D, O_p]
        per.append(F.pad(pooled, (0, O - pooled.shape[-1])))
    e = torch.stack(per, dim=-1).flatten(-2)[..., :W]  # [B, D, W], position = hop*o + p
    e = e.transpose(1, 2)
    return e / e.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def band_logits(model, L: torch.Tensor, R: torch.Tensor, K: int, step: int = 8) -> torch.Tensor:
    """L, R [B, N] with N = example_length(K) -> logits [B, K, 2*max_delay+1] of
    A(L window s_k, R window s_k + d) / tau, s_k = max_delay + step*k."""
    cfg = model.cfg
    D = cfg.max_delay
    starts = [D + step * k for k in range(K)]
    assert starts[-1] + D + cfg.window <= L.shape[-1]
    eL = model.window_embeddings(L, starts=starts)  # [B, K, E]
    eR = all_window_embeddings(model, R)  # [B, W, E]
    idx = torch.tensor(starts)[:, None] + torch.arange(-D, D + 1)[None, :]  # [K, 2D+1]
    band = eR[:, idx]  # [B, K, 2D+1, E]
    return torch.einsum("bke,bkje->bkj", eL, band) / cfg.tau


def soft_target(delay: torch.Tensor, max_delay: int) -> torch.Tensor:
    """Two-bin target at a fractional delay [B] -> [B, 2*max_delay+1] (expectation = delay)."""
    d = delay.clamp(-max_delay, max_delay - 1e-6).double()
    lo = torch.floor(d)
    w = (d - lo).float()
    i = (lo + max_delay).long()
    t = torch.zeros(len(d), 2 * max_delay + 1)
    t[torch.arange(len(d)), i] = 1 - w
    t[torch.arange(len(d)), (i + 1).clamp(max=2 * max_delay)] += w
    return t


def supervised_losses(logits: torch.Tensor, delay: torch.Tensor, span_pool: str = "prob") -> dict:
    """logits [B, K, 2D+1], delay [B] (samples) -> {"sup", "span", "reg"} (scalars)."""
    B, K, J = logits.shape
    D = (J - 1) // 2
    t = soft_target(delay, D).to(logits.device, logits.dtype)  # [B, J]
    logp = F.log_softmax(logits, dim=-1)
    sup = -(t[:, None, :] * logp).sum(-1).mean()
    if span_pool == "prob":
        pooled = torch.log(logp.exp().mean(1) + 1e-12)
    elif span_pool == "logp":
        pooled = F.log_softmax(logp.sum(1), dim=-1)
    else:
        raise ValueError(span_pool)
    span = -(t * pooled).sum(-1).mean()
    d = torch.arange(-D, D + 1, dtype=logits.dtype, device=logits.device)
    expect = (logp.exp() * d).sum(-1).mean(1)  # mean of per-window expectations
    reg = F.huber_loss(expect, delay.to(expect.dtype).to(expect.device), delta=1.0)
    return {"sup": sup, "span": span, "reg": reg}

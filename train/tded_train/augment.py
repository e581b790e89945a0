"""The paper's augmentations (stereocrw-facts.md), batched, each switchable.

Order: channel swap (p=0.5) -> mix in another clip (no delay, RMS ratio U(0.1, 1.0) per channel)
-> per-channel gain U[0.5, 1.5) clipped to +-1 -> reverb (independent per channel) -> white noise
at an integer SNR in [0, 39] dB (independent per channel).

``augment_pair(L, R)`` returns ``(L_aug, R_aug, L_clean)``.  The swap decides which channel is
"left", so it is applied to the clean return node too (the clean node is the clean left channel
after the swap); every other augmentation only touches the augmented copies.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Tuple

import torch

ALL_AUGS = ("swap", "mix", "gain", "reverb", "noise")


@dataclass
class AugConfig:
    swap: bool = True
    mix: bool = True
    gain: bool = True
    reverb: bool = True
    noise: bool = True
    p_swap: float = 0.5
    p_mix: float = 0.5
    p_reverb: float = 0.5
    p_noise: float = 0.5
    mix_ratio: Tuple[float, float] = (0.1, 1.0)
    gain_range: Tuple[float, float] = (0.5, 1.5)
    rt60_range: Tuple[float, float] = (0.1, 0.6)
    snr_db: Tuple[int, int] = (0, 39)
    sample_rate: int = 16000
    max_ir: int = 4096

    @staticmethod
    def only(*names: str, **kw) -> "AugConfig":
        return AugConfig(**{n: (n in names) for n in ALL_AUGS}, **kw)

    @staticmethod
    def none() -> "AugConfig":
        return AugConfig.only()

    @staticmethod
    def parse(spec: str) -> "AugConfig":
        """'all', 'none' or a comma list such as 'swap,gain,noise'."""
        if spec == "all":
            return AugConfig()
        if spec in ("none", ""):
            return AugConfig.none()
        names = [s.strip() for s in spec.split(",")]
        bad = [n for n in names if n not in ALL_AUGS]
        assert not bad, f"unknown augmentations {bad}; choose from {ALL_AUGS}"
        return AugConfig.only(*names)

    def enabled(self):
        return [n for n in ALL_AUGS if getattr(self, n)]


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-12).sqrt()


def _uniform(shape, lo, hi, g):
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def random_irs(n: int, cfg: AugConfig, g: torch.Generator) -> torch.Tensor:
    """n synthetic room impulse responses [n, max_ir]: unit direct path at tap 0 (so no delay is
    added) followed, after a 1-80 sample gap, by exponentially decaying noise with RT60 drawn from
    rt60_range and a random direct-to-reverberant level."""
    L = cfg.max_ir
    t = torch.arange(L, dtype=torch.float32)[None, :]
    rt60 = _uniform((n, 1), *cfg.rt60_range, g)
    decay = torch.exp(-6.9078 * t / (rt60 * cfg.sample_rate))
    gap = torch.randint(1, 81, (n, 1), generator=g)
    tail = torch.randn(n, L, generator=g) * decay * (t >= gap)
    # energy of the tail relative to the direct path: DRR in [-6, +12] dB
    drr_db = _uniform((n, 1), -6.0, 12.0, g)
    tail = tail / tail.pow(2).sum(dim=-1, keepdim=True).clamp_min(1e-12).sqrt()
    tail = tail * 10 ** (-drr_db / 20)
    h = tail
    h[:, 0] = 1.0
    return h


def fft_convolve_causal(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """(x * h)[:N] for rows of x [n, N] and h [n, K]."""
    N, K = x.shape[-1], h.shape[-1]
    nfft = 1
    while nfft < N + K - 1:
        nfft *= 2
    y = torch.fft.irfft(torch.fft.rfft(x, nfft) * torch.fft.rfft(h, nfft), nfft)
    return y[..., :N]


def add_noise(x: torch.Tensor, cfg: AugConfig, g: torch.Generator, p: float) -> torch.Tensor:
    n = x.shape[0]
    snr = torch.randint(cfg.snr_db[0], cfg.snr_db[1] + 1, (n, 1), generator=g).float()
    noise = torch.randn(x.shape, generator=g)
    noise = noise / _rms(noise) * _rms(x) * 10 ** (-snr / 20)
    on = (torch.rand(n, 1, generator=g) < p).float()
    return x + on * noise


def augment_pair(L: torch.Tensor, R: torch.Tensor, cfg: AugConfig,
                 g: Optional[torch.Generator] = None,
                 other: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
    """L, R [B, N] clean stereo.  ``other`` = distractor clips for the mixture (default: the
    batch rolled by one).  Returns (L_aug, R_aug, L_clean)."""
    if g is None:
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
    B, N = L.shape
    if cfg.swap:
        sw = (torch.rand(B, 1, generator=g) < cfg.p_swap)
        L, R = torch.where(sw, R, L), torch.where(sw, L, R)
    L_clean = L
    La, Ra = L.clone(), R.clone()
    if cfg.mix and B > 0:
        oL, oR = other if other is not None else (torch.roll(L, 1, 0), torch.roll(R, 1, 0))
        on = (torch.rand(B, 1, generator=g) < cfg.p_mix).float()
        for x, o in ((La, oL), (Ra, oR)):
            r = _uniform((B, 1), *cfg.mix_ratio, g)
            x += on * o / _rms(o) * _rms(x) * r
    if cfg.gain:
        La = (La * _uniform((B, 1), *cfg.gain_range, g)).clamp(-1, 1)
        Ra = (Ra * _uniform((B, 1), *cfg.gain_range, g)).clamp(-1, 1)
    if cfg.reverb:
        on = (torch.rand(2 * B, 1, generator=g) < cfg.p_reverb)
        x = torch.cat([La, Ra], 0)
        y = fft_convolve_causal(x, random_irs(2 * B, cfg, g))
        y = torch.where(on, y, x)
        La, Ra = y[:B], y[B:]
    if cfg.noise:
        La = add_noise(La, cfg, g, cfg.p_noise)
        Ra = add_noise(Ra, cfg, g, cfg.p_noise)
    return La, Ra, L_clean

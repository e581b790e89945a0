"""The engine's input high-pass and low-frequency rumble for training data.

``tded`` high-passes both channels before any estimator (``HighPassFilter.swift``: a second-order
Butterworth, bilinear transform pre-warped at the cut-off, started in the steady state of the first
sample; ``engine.highpass_hz``, default 100 Hz). Training data must see the same filter. Rumble
(HVAC, traffic, motors, wind, handling) and DC offsets put most of a recording's power below
~150 Hz; ``add_rumble`` adds them so a model learns to ignore what the filter leaves of them.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

RATE = 16000
DEFAULT_HIGHPASS_HZ = 100.0  # PipelineConfig.defaultHighpassHz


def highpass_coefficients(cutoff_hz: float, rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the engine's filter: RBJ high-pass with Q = 1/sqrt 2 (= scipy's butter(2))."""
    if not (0 < cutoff_hz < 0.45 * rate):
        raise ValueError(f"high-pass cut-off must be in (0, {0.45 * rate}) Hz, got {cutoff_hz}")
    w = 2 * math.pi * cutoff_hz / rate
    cw, alpha = math.cos(w), math.sin(w) / math.sqrt(2)
    a0 = 1 + alpha
    b = np.array([(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]) / a0
    a = np.array([1.0, -2 * cw / a0, (1 - alpha) / a0])
    return b, a


def highpass(x: np.ndarray, cutoff_hz: float, rate: int = RATE) -> np.ndarray:
    """[channels, n] -> the engine's high-pass of each channel (steady state of its first
    sample, so a DC offset gives no step); cutoff 0 returns x unchanged."""
    if cutoff_hz == 0:
        return x
    b, a = highpass_coefficients(cutoff_hz, rate)
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        # transposed direct form II state for a constant input x0 (output 0): [-b0 x0, b2 x0]
        zi = np.array([-b[0], b[2]]) * x[c, 0]
        out[c] = lfilter(b, a, x[c], zi=zi)[0]
    return out


def highpass_power_gain(cutoff_hz: float, bins: int, nfft: int, rate: int = RATE) -> np.ndarray:
    """|H(f_k)|^2 at the bins of an nfft-point FFT: what the filter does to a pooled spectrum of
    audio without strong low-frequency content (to re-use spectra pooled without the filter)."""
    b, a = highpass_coefficients(cutoff_hz, rate)
    z = np.exp(-2j * np.pi * np.arange(bins) / nfft)
    h = (b[0] + b[1] * z + b[2] * z * z) / (1 + a[1] * z + a[2] * z * z)
    return (np.abs(h) ** 2).astype(np.float32)


def add_rumble(x: np.ndarray, rng, level_db=(-10.0, 20.0), cutoff=(40.0, 150.0),
               coherence: float = 0.9, dc: float = 0.5) -> np.ndarray:
    """[2, n] -> x plus low-passed noise (4th-order Butterworth at a cut-off drawn from `cutoff`,
    a shared part with `coherence` and an independent part per channel) at a rumble-to-clip power
    ratio drawn from `level_db`, plus a DC offset per channel up to `dc` x the clip's RMS
    (the same recipe as eval/rumble.py)."""
    n = x.shape[1]
    fc = float(rng.uniform(*cutoff))
    lv = float(rng.uniform(*level_db))
    sos = butter(4, fc, "lowpass", fs=RATE, output="sos")
    pre = 4 * RATE // max(1, int(fc))
    shared = sosfilt(sos, rng.standard_normal(n + pre))[pre:]
    own = np.stack([sosfilt(sos, rng.standard_normal(n + pre))[pre:] for _ in range(2)])
    r = math.sqrt(coherence) * shared[None, :] + math.sqrt(max(0.0, 1 - coherence)) * own
    p_clip, p_r = float(np.mean(x ** 2)), float(np.mean(r ** 2))
    if p_clip <= 0 or p_r <= 0:
        return x
    r *= math.sqrt(p_clip * 10 ** (lv / 10) / p_r)
    return x + r + rng.uniform(-dc, dc, (2, 1)) * math.sqrt(p_clip)

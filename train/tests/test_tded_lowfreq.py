"""The engine's input high-pass in Python, and the rumble augmentation (tded_train/lowfreq.py)."""
import numpy as np
import pytest
from scipy.signal import butter

from tded_train import gccmask as gm
from tded_train import lowfreq as lf


def test_coefficients_are_scipys_butterworth():
    for fc in (50.0, 100.0, 1000.0):
        b, a = lf.highpass_coefficients(fc)
        bb, aa = butter(2, fc, "highpass", fs=16000)
        np.testing.assert_allclose(b, bb, atol=1e-12)
        np.testing.assert_allclose(a, aa, atol=1e-12)
    for bad in (0.0, -1.0, 7200.0):
        with pytest.raises(ValueError):
            lf.highpass_coefficients(bad)


def test_highpass_starts_steady_and_keeps_the_band():
    t = np.arange(16000) / 16000
    x = np.stack([0.4 + np.sin(2 * np.pi * 1000 * t), -0.7 + 0.5 * np.sin(2 * np.pi * 1000 * t)])
    y = lf.highpass(x, 100.0)
    # no start-up step from the offsets; the 1-kHz tone passes (gain 1 / sqrt(1 + 0.1^4))
    # the offsets add nothing, not even at the start (a filter at rest would ring from 0.4 / -0.7)
    np.testing.assert_allclose(y, lf.highpass(x - x[:, :1], 100.0), atol=1e-9)
    np.testing.assert_allclose(np.std(y[:, 8000:], axis=1), np.std(x[:, 8000:], axis=1), rtol=1e-3)
    assert abs(np.mean(y[:, 8000:])) < 1e-3
    assert lf.highpass(x, 0) is x
    # the same filter on both channels: a delayed copy stays a delayed copy
    s = np.random.default_rng(0).standard_normal(3000)
    z = lf.highpass(np.stack([np.r_[np.zeros(5), s], np.r_[np.zeros(12), s[:-7]]]), 100.0)
    np.testing.assert_allclose(z[1, 12:], z[0, 5:-7], atol=1e-12)


def test_power_gain_is_the_filter_response():
    g = lf.highpass_power_gain(100.0, gm.BINS, gm.NFFT)
    k = round(100.0 / (16000 / gm.NFFT))  # the bin nearest 100 Hz
    assert abs(g[k] - 0.5) < 0.03
    assert g[0] < 1e-12 and abs(g[-1] - 1) < 1e-9
    assert np.all(np.diff(g) >= 0)


def test_rumble_dominates_low_frequencies_at_the_drawn_level():
    rng = np.random.default_rng(1)
    x = np.random.default_rng(2).standard_normal((2, 1151)) * 0.1
    y = lf.add_rumble(x, rng, level_db=(20.0, 20.0), dc=0.0)
    r = y - x
    assert abs(10 * np.log10(np.mean(r ** 2) / np.mean(x ** 2)) - 20) < 1e-6
    P = np.abs(np.fft.rfft(r, axis=1)) ** 2
    f = np.fft.rfftfreq(1151, 1 / 16000)
    assert P[:, f < 200].sum() / P.sum() > 0.95
    assert np.corrcoef(r[0], r[1])[0, 1] > 0.8  # mostly shared between the mics


def test_highpass_command_scales_stored_spectra(tmp_path):
    S = np.ones((3, 4, gm.BINS), np.float32)
    np.savez(tmp_path / "a.npz", S=S, Y=np.zeros(3), D=np.full(3, 0.1))
    gm.main(["highpass", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])
    z = np.load(tmp_path / "b.npz")
    g = lf.highpass_power_gain(lf.DEFAULT_HIGHPASS_HZ, gm.BINS, gm.NFFT)
    np.testing.assert_allclose(z["S"][2, 3], g, rtol=1e-6)
    np.testing.assert_array_equal(z["Y"], np.zeros(3))

"""The rigid-sphere head model (head.py) and head renderings (SupSampler p_head)."""
import math

import numpy as np
import pytest

from tded_train import head
from tded_train.supervised import SupConfig, SupSampler

from test_tded_supervised import tiny_bank, tiny_pools, upsampled_gcc_phat_delay

C = head.C
A = 0.0875


def phase_delay_ms(pair, f0):
    n = 8192
    f = np.fft.rfftfreq(n, 1 / head.RATE)
    ph = np.unwrap(np.angle(np.fft.rfft(pair[1], n) * np.conj(np.fft.rfft(pair[0], n))))
    k = int(np.argmin(abs(f - f0)))
    return -ph[k] / (2 * math.pi * f[k]) * 1000


def test_the_sphere_is_transparent_at_low_frequencies_and_bright_toward_the_source():
    f = np.array([0.0, 1.0, 4000.0, 7000.0])
    front = head.sphere_response(f, 0.0, A)
    back = head.sphere_response(f, math.radians(150), A)
    assert abs(front[0] - 1) < 1e-12 and abs(front[1] - 1) < 1e-2   # 1 Hz: a 0.002-rad lead
    assert 1.8 < abs(front[3]) <= 2.0          # +6 dB on the facing side at high frequencies
    assert abs(back[2]) < 0.8 and abs(back[3]) < 0.8   # shadowed


@pytest.mark.parametrize("deg", [30, 60, 90])
def test_delays_follow_kuhn_at_low_and_woodworth_at_high_frequencies(deg):
    phi = math.radians(deg)
    pair = head.sphere_hrirs(phi, A)
    kuhn = 3 * A / C * math.sin(phi) * 1000
    woodworth = A / C * (phi + math.sin(phi)) * 1000
    assert phase_delay_ms(pair, 200) == pytest.approx(kuhn, rel=0.04)
    assert phase_delay_ms(pair, 6000) == pytest.approx(woodworth, rel=0.06)
    itd = head.broadband_itd(pair) / head.RATE * 1000
    assert itd == pytest.approx(woodworth, rel=0.06)
    # the microphone facing the source (the left one, phi > 0) leads; mirrored, the right one
    assert np.argmax(abs(pair[0])) < np.argmax(abs(pair[1]))
    assert head.broadband_itd(head.sphere_hrirs(-phi, A)) == pytest.approx(-head.broadband_itd(pair))


def test_effective_spacing_has_the_sides_delay_in_free_field():
    d = head.effective_spacing(A)
    assert d / C * 1000 == pytest.approx(head.broadband_itd(head.sphere_hrirs(math.pi / 2, A)) / 16, abs=1e-9)
    assert 0.22 < d < 0.24 and head.effective_spacing(0.06) < d


def test_head_renderings_carry_the_spheres_itd_and_leave_free_field_ones_as_they_were():
    speech, music, noise = tiny_pools()
    bank = tiny_bank(order=0)
    n = 8000
    base = dict(K=4, p_mix=0.0, snr_range=(80.0, 80.0), noise_kinds=("white",), music_frac=0.0)
    s = SupSampler(bank, [speech], [music], noise, SupConfig(**base, p_head=1.0), seed=2, length=n)
    for _ in range(6):
        x, d = s.example()
        info = s.info
        a = info["head_radius_m"]
        assert 0.05 <= a <= 0.12
        ff = bank["delay"][info["room"], info["position"]] * (-1 if info["swap"] else 1)
        phi = math.asin(max(-1, min(1, ff / 16000 * s.c / bank["meta"][info["room"], 4])))
        assert d == pytest.approx(head.broadband_itd(head.sphere_hrirs(phi, a, c=s.c)))
        assert info["mic_distance"] == pytest.approx(head.effective_spacing(a, c=s.c))
        got = upsampled_gcc_phat_delay(x[0].astype(np.float64), x[1].astype(np.float64))
        assert abs(got - d) <= 0.35, (got, d, ff)
    # without the head: the same examples as a sampler that never heard of it
    a = SupSampler(bank, [speech], [music], noise, SupConfig(**base), seed=2, length=n)
    b = SupSampler(bank, [speech], [music], noise, SupConfig(**base, p_head=0.0), seed=2, length=n)
    for _ in range(3):
        (xa, da), (xb, db) = a.example(), b.example()
        assert da == db and np.array_equal(xa, xb) and b.info["head_radius_m"] == 0.0

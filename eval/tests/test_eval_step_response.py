"""eval/step_response.py: the settling time and the clips of a direction step."""
import numpy as np
import soundfile as sf

import step_response as sr


def test_settle_time_is_the_first_update_that_stays_within_tolerance():
    # updates every 50 ms from t = 2.5 s; the jump is at 3 s to +4 samples
    ts = [2.5 + 0.05 * i for i in range(40)]
    d = [-4.0 if t < 3.2 else 4.0 for t in ts]
    d[ts.index(min(ts, key=lambda t: abs(t - 3.3)))] = 2.0  # a relapse after first reaching it
    sm = list(zip(ts, d))
    assert round(sr.settle_ms(sm, 3.0, 4.0)) == 350
    assert sr.settle_ms([(t, -4.0) for t in ts], 3.0, 4.0) == float("inf")
    # within tolerance from the first update after the jump
    assert round(sr.settle_ms([(t, 3.5) for t in ts], 3.0, 4.0)) == 50


def test_clips_differ_by_piece_and_carry_the_step(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    half = sr.make_clip(a, seed=3, d0=-4, d1=4, seconds=1.0, piece=0)
    sr.make_clip(b, seed=4, d0=4, d1=-4, seconds=1.0, piece=1)
    x, rate = sf.read(a)
    y, _ = sf.read(b)
    assert half == 1.0 and rate == 16000 and x.shape == y.shape == (32000, 2)
    assert not np.allclose(x, y)
    # the right channel lags the left by d0 in the first half, d1 in the second
    def lag(seg):
        c = np.correlate(seg[:, 1], seg[:, 0], "full")
        return int(np.argmax(c)) - (len(seg) - 1)
    assert lag(x[2000:14000]) == -4 and lag(x[18000:30000]) == 4
    assert lag(y[2000:14000]) == 4 and lag(y[18000:30000]) == -4

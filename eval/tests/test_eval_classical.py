"""Classical references (eval/classical.py) and the live scorer (eval/live.py via run.py).

Tolerances measured on these synthetic clips (white noise through an exact fractional delay,
independent noise at 26 dB): whole-clip and Welch GCC-PHAT with a parabola are within 0.12
sample of the true delay (the parabola's bias on a PHAT peak; 0.00 on integer delays);
SRP-PHAT and NormMUSIC within 0.01 sample. A sign error would be off by 2 x the delay
(>= 5 samples here).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import classical as cl
import generate as gen
import run as runner

EVAL = Path(__file__).resolve().parent.parent
FAKE = str(EVAL / "tests" / "fake_tded.py")


def frac_delay(x, d):
    """x delayed by d samples (band-limited, exact for a periodic extension)."""
    n = len(x)
    X = np.fft.rfft(x, 2 * n)
    f = np.fft.rfftfreq(2 * n)
    return np.fft.irfft(X * np.exp(-2j * np.pi * f * d), 2 * n)[:n]


def pair(d, n=4 * 1151, seed=0, noise=0.05):
    """(left, right) with the right channel d samples later (source nearer the left mic)."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(n + 4000)
    left = s[2000:2000 + n] + noise * rng.standard_normal(n)
    right = frac_delay(s, d)[2000:2000 + n] + noise * rng.standard_normal(n)
    return left, right


@pytest.mark.parametrize("d", [-11.0, -7.3, -2.5, 0.0, 1.25, 3.4, 9.0])
def test_numpy_gcc_phat_references_recover_the_delay_with_its_sign(d):
    left, right = pair(d)
    for f in (cl.gcc_phat_whole, cl.gcc_phat_welch):
        got = f(left, right)
        tol = 0.02 if d == int(d) else 0.15
        assert abs(got - d) < tol, (f.__name__, d, got)


def test_gcc_phat_whole_searches_only_the_max_lag():
    left, right = pair(30.0)              # beyond +-24 samples (1.5 ms)
    assert abs(cl.gcc_phat_whole(left, right)) <= cl.max_lag_samples() == 24


@pytest.mark.parametrize("room", list(gen.ROOMS))
@pytest.mark.parametrize("azimuth", [-55.0, 35.0])
def test_srp_and_normmusic_sign_convention(room, azimuth):
    """Far-field delay d sin(az) / c (az > 0 toward the left mic -> right channel later)."""
    r = gen.ROOMS[room]
    d = gen.mic_distance(room) * np.sin(np.radians(azimuth)) / gen.C * gen.RATE
    left, right = pair(d, n=8000, seed=int(abs(azimuth)))
    for algo in ("SRP", "NormMUSIC"):
        got = cl.doa_delay(algo, left, right, r["mic_l"], r["mic_r"])
        assert abs(got - d) < 0.1, (algo, room, azimuth, d, got)


def test_live_reference_tracks_a_delay_step_with_its_time_constant():
    n = 3 * gen.RATE
    rng = np.random.default_rng(5)
    s = rng.standard_normal(n + 4000)
    left = s[2000:2000 + n].copy()
    right = np.concatenate([frac_delay(s, 4.0)[2000:2000 + n // 2],
                            frac_delay(s, -6.0)[2000 + n // 2:2000 + n]])
    live = cl.LiveGccPhat(left, right)
    assert np.isnan(live.delay_at(0.03))                 # before the first full frame
    assert abs(live.delay_at(1.4) - 4.0) < 0.05
    assert abs(live.delay_at(1.55) - 4.0) < 0.05         # 0.05 s after the step: still old
    assert abs(live.delay_at(2.9) - (-6.0)) < 0.05       # 4.7 time constants later: new


def test_activity_marks_silence_and_sound():
    x = np.zeros(32000)
    x[8000:16000] = np.random.default_rng(1).standard_normal(8000)
    a = gen.activity(x, 32000)
    assert len(a) == 40
    assert a[:9] == "0" * 9 and a[10:20] == "1" * 10 and a[22:] == "0" * 18


# ------------------------------------------------------------------ runner integration
@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinyref")
    assert gen.main(["--out", str(d), "--size", "small", "--seed", "3", "--n-single", "6",
                     "--n-mixture", "1"]) == 0
    return d


@pytest.fixture(scope="module")
def live_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    assert gen.main(["--out", str(d), "--size", "small", "--seed", "4", "--n-single", "3",
                     "--n-mixture", "0", "--single-samples", "32000", "--activity"]) == 0
    return d


def run(args, **env):
    e = dict(os.environ)
    e.pop("TDED", None)
    e.update(env)
    return subprocess.run([sys.executable, str(EVAL / "run.py")] + args, capture_output=True,
                          text=True, env=e, timeout=300)


def test_references_are_rows_of_every_table(tiny_set, tmp_path):
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--results", str(tmp_path / "res")],
            FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"), FAKE_TDED_NO_LEARNED="1")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res" / "results.json").read_text())
    assert res["meta"]["reference_labels"] == list(cl.REFERENCES)
    assert res["meta"]["tded_labels"] == ["gcc-phat-mean", "gcc-phat-mode"]
    m = res["meta"]["machine"]
    assert m["numpy"] == np.__version__ and m["cpu_model"] and "git_commit" in m
    for kind in ("single", "mixture"):
        for lab in cl.REFERENCES:
            o = res["sets"][kind]["overall"][lab]
            assert o["n"] == res["sets"][kind]["n"] and np.isfinite(o["mae_ms"])
            for per in res["sets"][kind]["by"].values():
                assert all(lab in d for d in per.values())
    md = (tmp_path / "res" / "results.md").read_text()
    sm = (tmp_path / "res" / "summary.md").read_text()
    for lab in cl.REFERENCES:
        assert md.count(f"| {lab} |") >= 2 and f" {lab} |" in sm.splitlines()[next(
            i for i, ln in enumerate(sm.splitlines()) if ln.startswith("| SNR dB"))]
    assert "not by tded" in md and "OpenBLAS core" in md


def test_reference_failure_is_loud(tiny_set, tmp_path):
    truth = gen.read_truth(tiny_set / "truth.csv")
    d = tmp_path / "mono"
    d.mkdir()
    for row in truth:
        x, sr = sf.read(str(tiny_set / row["file"]))
        sf.write(str(d / row["file"]), x, sr)
    victim = truth[1]["file"]
    x, sr = sf.read(str(d / victim))
    sf.write(str(d / victim), x[:, 0], sr)               # mono: no delay to estimate
    with pytest.raises(runner.EvalError, match=victim):
        runner.compute_references(truth, d, ["ref-gcc-phat-whole"], 1)


def test_reference_cache_is_used_and_invalidated(tiny_set, tmp_path, monkeypatch):
    import shutil
    d = tmp_path / "c"
    shutil.copytree(tiny_set, d)
    (d / runner.REF_CACHE).unlink(missing_ok=True)
    truth = gen.read_truth(d / "truth.csv")
    first, _, n1 = runner.compute_references(truth, d, ["ref-gcc-phat-whole"], 1)
    assert n1 == len(truth)

    def boom(*a, **k):
        raise RuntimeError("recomputed")
    monkeypatch.setattr(runner.classical, "gcc_phat_whole", boom)
    again, _, n2 = runner.compute_references(truth, d, ["ref-gcc-phat-whole"], 1)
    assert n2 == 0 and again == first
    victim = truth[0]["file"]
    x, sr = sf.read(str(d / victim))
    sf.write(str(d / victim), x[::-1], sr)                # a changed clip is recomputed
    with pytest.raises(runner.EvalError, match="recomputed"):
        runner.compute_references(truth, d, ["ref-gcc-phat-whole"], 1)


def active_updates(live_dir):
    n = 0
    for row in gen.read_truth(live_dir / "truth.csv"):
        n += sum(1 for k, c in enumerate(row["active"]) if c == "1" and (k + 1) * 0.05 >= 1.0)
    return n


def test_live_scorer_on_fake_tded(live_set, tmp_path):
    r = run(["--live-only", "--live-data", str(live_set), "--tded", FAKE, "--results",
             str(tmp_path / "res")], FAKE_TDED_TRUTH=str(live_set / "truth.csv"),
            FAKE_TDED_OFFSET_MS="0.04")
    assert r.returncode == 0, r.stderr
    block = json.loads((tmp_path / "res" / "live.json").read_text())
    n = active_updates(live_set)
    assert 10 < n < 3 * 20                                # some but not all lines are scored
    sm = block["overall"]["daemon-gcc-phat (smoothed)"]
    raw = block["overall"]["daemon-gcc-phat (raw)"]
    assert sm["n"] == raw["n"] == n
    assert sm["mae_ms"] == pytest.approx(0.04, abs=1e-9)
    assert raw["mae_ms"] == pytest.approx(0.08, abs=1e-9)
    ref = block["overall"]["ref-live-gcc-phat"]
    assert ref["n"] == n and np.isfinite(ref["mae_ms"])  # read at the same update times
    assert "ref-live-gcc-phat" in (tmp_path / "res" / "live.md").read_text()


def test_live_block_goes_into_the_offline_results(tiny_set, live_set, tmp_path):
    r = run(["--live-only", "--live-data", str(live_set), "--tded", FAKE, "--results",
             str(tmp_path / "live")], FAKE_TDED_TRUTH=str(live_set / "truth.csv"),
            FAKE_TDED_OFFSET_MS="0.02")
    assert r.returncode == 0, r.stderr
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--results", str(tmp_path / "res"),
             "--refs", "ref-gcc-phat-whole", "--live-json", str(tmp_path / "live" / "live.json")],
            FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"), FAKE_TDED_NO_LEARNED="1")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res" / "results.json").read_text())
    assert res["live"]["overall"]["daemon-gcc-phat (smoothed)"]["mae_ms"] == pytest.approx(0.02)
    for f in ("results.md", "summary.md"):
        text = (tmp_path / "res" / f).read_text()
        assert "ref-live-gcc-phat" in text and "daemon-gcc-phat (raw)" in text
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--refs", "none", "--live-json",
             str(tmp_path / "res" / "results.md")], FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"),
            FAKE_TDED_NO_LEARNED="1")
    assert r.returncode != 0 and "--live-json" in r.stderr


@pytest.mark.parametrize("env,msg", [({"FAKE_TDED_NULL_AT": "1.5"}, "no finite delay_ms"),
                                     ({"FAKE_TDED_SKIP_AT": "1.5"}, "no published line"),
                                     ({"FAKE_TDED_RUN_EXIT": "3"}, "exited 3")])
def test_live_scorer_fails_loudly(live_set, tmp_path, env, msg):
    rows = gen.read_truth(live_set / "truth.csv")
    # make sure t = 1.5 s is an active update of some clip, else this test proves nothing
    assert any(r["active"][29] == "1" for r in rows)
    r = run(["--live-only", "--live-data", str(live_set), "--tded", FAKE, "--results",
             str(tmp_path / "res")], FAKE_TDED_TRUTH=str(live_set / "truth.csv"), **env)
    assert r.returncode != 0 and msg in r.stderr, r.stderr
    assert not (tmp_path / "res" / "live.json").exists()


def test_live_variant_args_split_into_flags_and_config():
    import live
    flags, lines = live.parse_variant('--method learned engine.post="mean" engine.span=3200')
    assert flags == ["--method", "learned"]
    text = live.config_text(0.3, lines)
    assert '[engine]' in text and 'post = "mean"' in text and "span = 3200" in text
    assert "mic_distance = 0.300000" in text

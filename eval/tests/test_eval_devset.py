"""Tuning set with recorded sources: the validation pools written as WAVs (devsources.py) and
`devset.py --sources` using them instead of espeak-ng voices."""
import csv

import numpy as np
import soundfile as sf

import devset
import devsources
import generate as gen


def fake_pool(path, n, seconds, seed):
    rng = np.random.default_rng(seed)
    clips = [rng.standard_normal(int(s * 16000)) * 0.1 for s in seconds[:n]]
    offsets = np.cumsum([0] + [len(c) for c in clips])
    np.savez(path, audio=np.concatenate(clips).astype(np.float16), offsets=offsets,
             names=np.array([f"clip{i}" for i in range(n)]))


def test_devsources_writes_long_enough_clips(tmp_path):
    pools = tmp_path / "pools"
    pools.mkdir()
    fake_pool(pools / "val_speech.npz", 3, [3.0, 1.0, 4.0], 1)  # the 1-s clip is too short
    fake_pool(pools / "val_music.npz", 1, [5.0], 2)
    assert devsources.main(["--pools", str(pools), "--out", str(tmp_path / "src")]) == 0
    speech = sorted(p.name for p in (tmp_path / "src" / "speech").glob("*.wav"))
    assert speech == ["clip0.wav", "clip2.wav"]
    x, sr = sf.read(tmp_path / "src" / "speech" / "clip2.wav")
    assert sr == 16000 and len(x) == 4 * 16000
    assert len(list((tmp_path / "src" / "music").glob("*.wav"))) == 1


def recorded_sources(tmp_path, monkeypatch):
    """Fake validation pools written as recorded sources under tmp_path/src (devsources.py)."""
    # devset replaces the generator's rooms with its own: give it a copy to replace
    monkeypatch.setattr(gen, "ROOMS", dict(gen.ROOMS))
    pools = tmp_path / "pools"
    pools.mkdir()
    fake_pool(pools / "val_speech.npz", 2, [3.0, 3.0], 3)
    fake_pool(pools / "val_music.npz", 1, [5.0], 4)
    devsources.main(["--pools", str(pools), "--out", str(tmp_path / "src")])


def test_devset_uses_the_given_sources(tmp_path, monkeypatch):
    recorded_sources(tmp_path, monkeypatch)
    out = tmp_path / "dev"
    assert devset.main(["--out", str(out), "--n-single", "4", "--n-mixture", "0", "--seconds", "0.5",
                        "--rooms", "2", "--seed", "7", "--sources", str(tmp_path / "src")]) == 0
    rows = list(csv.DictReader(open(out / "truth.csv")))
    assert len(rows) == 4
    assert all(r["source"].split("/")[0] in ("speech", "music") for r in rows), rows
    assert all(len(sf.read(out / r["file"])[0]) == 8000 for r in rows)


def test_devset_without_sources_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "ROOMS", dict(gen.ROOMS))
    assert devset.main(["--out", str(tmp_path / "dev"), "--n-single", "1", "--n-mixture", "0",
                        "--sources", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("devset: no source audio under") and err.count("\n") == 1, err


def test_mixture_levels_are_taken_in_turn():
    rooms = devset.random_rooms(3, 5)
    specs = devset.plan(0, 7, 5, 8000, rooms, levels=(0.5, 0.7, 0.9))
    assert [s["level"] for s in specs] == [0.5, 0.7, 0.9, 0.5, 0.7, 0.9, 0.5]
    assert "level" not in devset.plan(1, 0, 5, 8000, rooms)[0]
    assert [s["level"] for s in devset.plan(0, 4, 5, 8000, rooms)] == [0.3, 0.5, 0.7, 0.3]  # the default


def test_mixture_conditions_follow_their_ranges_and_leave_singles_alone():
    rooms = devset.random_rooms(3, 5)
    default = devset.plan(20, 40, 5, 8000, rooms)
    narrow = devset.plan(20, 40, 5, 8000, rooms, mixture_rt60=(0.08, 0.12), mixture_snr=(28.0, 30.0))
    mixed = [(d, n) for d, n in zip(default, narrow) if d["kind"] == "mixture"]
    assert all(0.08 <= n["rt60"] <= 0.12 and 28 <= n["snr"] <= 30 for _, n in mixed)
    assert any(d["rt60"] > 0.3 for d, _ in mixed) and all(15 <= d["snr"] <= 30 for d, _ in mixed)
    # the same draws otherwise: single clips and geometry unchanged
    assert [d for d in default if d["kind"] == "single"] == [n for n in narrow if n["kind"] == "single"]
    assert all((d["azimuth"], d["distance"], d["room"]) == (n["azimuth"], n["distance"], n["room"]) for d, n in mixed)


def test_bad_mixture_ranges_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "ROOMS", dict(gen.ROOMS))
    for flag, value in (("--mixture-rt60", "0.3,0.1"), ("--mixture-rt60", "short"), ("--mixture-snr", "30")):
        assert devset.main(["--out", str(tmp_path / "dev"), "--n-single", "0", "--n-mixture", "1",
                            flag, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"devset: {flag}") and err.count("\n") == 1, err


def test_bad_levels_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "ROOMS", dict(gen.ROOMS))
    assert devset.main(["--out", str(tmp_path / "dev"), "--n-single", "0", "--n-mixture", "1",
                        "--levels", "0.5,loud"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("devset: --levels") and err.count("\n") == 1, err


def test_activity_column_and_active_only_scoring(tmp_path, monkeypatch):
    """devset --activity adds the `active` column without changing the audio; tune.py
    --active-only scores only the lines at active update times and refuses a set without it."""
    import pytest
    import tune
    recorded_sources(tmp_path, monkeypatch)
    args = ["--n-single", "2", "--n-mixture", "0", "--seconds", "1.5", "--rooms", "2", "--seed", "7",
            "--sources", str(tmp_path / "src")]
    assert devset.main(["--out", str(tmp_path / "a"), *args]) == 0
    assert devset.main(["--out", str(tmp_path / "b"), "--activity", *args]) == 0
    plain = list(csv.DictReader(open(tmp_path / "a" / "truth.csv")))
    rows = list(csv.DictReader(open(tmp_path / "b" / "truth.csv")))
    for p, r in zip(plain, rows):
        assert np.array_equal(sf.read(tmp_path / "a" / p["file"])[0], sf.read(tmp_path / "b" / r["file"])[0])
        assert p["active"] == "" and len(r["active"]) == 30 and set(r["active"]) <= {"0", "1"}
    # lines: error 1 ms where the talker is active, 5 ms elsewhere
    for r in rows:
        r["active"] = "0" * 25 + "1" * 5
    lines = {r["file"]: [{"t": (k + 1) / 20, "delay_ms": float(r["delay_ms"]) + (1.0 if k >= 25 else 5.0)}
                         for k in range(30)] for r in rows}
    got, counts = tune.score(rows, lines, True, 1.0, "delay_ms", active_only=True)
    assert got[("single", "all", "")] == pytest.approx(1.0) and counts[("single", "all", "")] == 10
    got, _ = tune.score(rows, lines, True, 1.0, "delay_ms")
    assert got[("single", "all", "")] == pytest.approx((6 * 5 + 5 * 1) / 11)
    with pytest.raises(SystemExit, match="no `active` column"):
        tune.score(plain, lines, True, 1.0, "delay_ms", active_only=True)

"""eval/rumble.py: a tuning set's copy with low-frequency rumble and DC offsets."""
import csv

import numpy as np
import soundfile as sf

import rumble


def make_set(d, n=3):
    d.mkdir()
    rng = np.random.default_rng(0)
    with (d / "truth.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "delay_samples", "kind"])
        w.writeheader()
        for i in range(n):
            sf.write(d / f"one_{i}.wav", (rng.standard_normal((1151, 2)) * 0.05).astype(np.float32), 16000,
                     subtype="FLOAT")
            w.writerow({"file": f"one_{i}.wav", "delay_samples": str(i - 1.5), "kind": "single"})


def test_rumble_copy_keeps_truth_and_adds_low_frequencies(tmp_path):
    make_set(tmp_path / "a")
    assert rumble.main(["--data", str(tmp_path / "a"), "--out", str(tmp_path / "b"), "--level-db", "20", "20"]) == 0
    rows = list(csv.DictReader((tmp_path / "b" / "truth.csv").open()))
    assert [r["delay_samples"] for r in rows] == ["-1.5", "-0.5", "0.5"]
    assert all(r["rumble_db"] == "20.00" for r in rows)
    for r in rows:
        x, _ = sf.read(tmp_path / "a" / r["file"])
        y, sr = sf.read(tmp_path / "b" / r["file"])
        assert sr == 16000 and y.shape == x.shape and np.max(np.abs(y)) <= 0.99 + 1e-6
        P = (np.abs(np.fft.rfft(y - y.mean(0), axis=0)) ** 2).sum(1)
        f = np.fft.rfftfreq(len(y), 1 / 16000)
        assert P[f < 200].sum() / P.sum() > 0.8  # the rumble dominates, offsets aside


def test_rumble_is_reproducible_and_refuses_bad_sets(tmp_path, capsys):
    make_set(tmp_path / "a")
    for out in ("b", "c"):
        assert rumble.main(["--data", str(tmp_path / "a"), "--out", str(tmp_path / out), "--seed", "4"]) == 0
    np.testing.assert_array_equal(sf.read(tmp_path / "b" / "one_1.wav")[0], sf.read(tmp_path / "c" / "one_1.wav")[0])
    assert rumble.main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "d")]) == 2
    assert "no truth.csv" in capsys.readouterr().err
    sf.write(tmp_path / "a" / "one_0.wav", np.zeros(100, np.float32), 16000)  # mono
    assert rumble.main(["--data", str(tmp_path / "a"), "--out", str(tmp_path / "e")]) == 2
    assert "expected 16-kHz stereo" in capsys.readouterr().err

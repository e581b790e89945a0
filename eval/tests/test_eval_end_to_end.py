"""The small set end to end through the real `tded analyze --whole` (regression guard).

Band (GCC-PHAT, seed 7 small set, 30 single clips + 10 mixtures, tded defaults: window 1024,
step 1, +-1.5 ms, no sub-sample refinement): measured single-source MAE 0.177 ms (mean) /
0.163 ms (mode) with recorded speech + music from eval/fetch_sources.sh, and 0.195 / 0.173 ms
with the espeak-ng fallback pool (what CI gets); mixtures 0.137 / 0.061 and 0.145 / 0.108 ms. Guard: single MAE in
[0.08, 0.30] ms, mixture MAE in [0.04, 0.35] ms, left/right accuracy (mean) >= 80 %. An
estimator that always says 0 scores 0.43 / 0.56 ms here; a sign flip scores > 0.6 ms.
This is a regression guard, not a performance claim.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import generate as gen
import run as runner

EVAL = Path(__file__).resolve().parent.parent


def built_tded():
    try:
        tded = runner.find_tded(os.environ.get("TDED"))
    except runner.EvalError as e:
        pytest.skip(f"no tded binary built ({e}); `make test` builds .build/debug/tded first")
    r = subprocess.run([str(tded), "analyze", "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"{tded} has no working `analyze` subcommand yet")
    return tded


def test_small_set_end_to_end_gcc_phat_mae_in_band(tmp_path):
    tded = built_tded()
    data = tmp_path / "small"
    assert gen.main(["--out", str(data), "--size", "small", "--seed", "7"]) == 0
    res_dir = tmp_path / "res"
    r = subprocess.run([sys.executable, str(EVAL / "run.py"), "--data", str(data), "--tded",
                        str(tded), "--methods", "gcc-phat", "--posts", "mean,mode",
                        "--results", str(res_dir)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    res = json.loads((res_dir / "results.json").read_text())
    single = res["sets"]["single"]["overall"]
    mixture = res["sets"]["mixture"]["overall"]
    for post in ("mean", "mode"):
        m = single[f"gcc-phat-{post}"]
        assert m["n"] == 30
        assert 0.08 <= m["mae_ms"] <= 0.30, (post, m)
        assert m["rmse_ms"] >= m["mae_ms"] >= 0 and m["median_ms"] <= m["mae_ms"] * 1.5
        mm = mixture[f"gcc-phat-{post}"]
        assert mm["n"] == 10
        assert 0.04 <= mm["mae_ms"] <= 0.35, (post, mm)
    assert single["gcc-phat-mean"]["lr_acc"] >= 0.8
    # The IID baseline (louder channel = source side), recomputed here from truth.csv and the
    # clips themselves: the scored value must be exactly this fraction.
    truth = gen.read_truth(data / "truth.csv")
    hits = []
    for row in truth:
        if row["kind"] != "single" or abs(float(row["azimuth_deg"])) < runner.LR_MIN_AZIMUTH:
            continue
        x, _ = sf.read(str(data / row["file"]), dtype="float64", always_2d=True)
        left_louder = np.sqrt(np.mean(x[:, 0] ** 2)) > np.sqrt(np.mean(x[:, 1] ** 2))
        hits.append((1.0 if left_louder else -1.0) == np.sign(float(row["delay_ms"])))
    assert len(hits) >= 20, "most single clips are off broadside"
    assert single["iid"]["n"] == 30
    assert single["iid"]["lr_acc"] == pytest.approx(float(np.mean(hits)), abs=1e-12)
    md = (res_dir / "results.md").read_text()
    assert "| gcc-phat-mean |" in md and "by snr_db" in md and "by distractor_level" in md

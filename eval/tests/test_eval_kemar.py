"""eval/kemar.py: the measured-HRIR check's truth, its lateral-bias figure and its plumbing."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kemar
import step_response

EVAL = Path(__file__).resolve().parent.parent
FAKE = str(EVAL / "tests" / "fake_tded.py")


def test_itd_of_a_delayed_pair_has_tdeds_sign_and_sub_sample_precision():
    rate = 44100.0
    x = np.zeros(512)
    x[20] = 1.0
    left = step_response.delayed(x, 0.0)
    right = step_response.delayed(x, 2.5)          # the right ear 2.5 samples later
    assert kemar.itd_ms(left, right, rate) == pytest.approx(2.5 / 44.1, abs=1 / 16 / 44.1)
    assert kemar.itd_ms(right, left, rate) == pytest.approx(-2.5 / 44.1, abs=1 / 16 / 44.1)
    assert kemar.lateral_deg(90, 0) == pytest.approx(90) and kemar.lateral_deg(270, 0) < -89.9
    assert kemar.lateral_deg(30, 60) == pytest.approx(14.48, abs=0.01)


@pytest.mark.skipif(not kemar.DEFAULT_SOFA.is_file(), reason="needs Debian's libmysofa1 "
                    "(scripts/install-deps.sh and .ci/run install it)")
def test_the_kemar_file_gives_the_known_itd_on_the_left_for_left_sources():
    pos, ir, rate = kemar.load_hrirs(kemar.DEFAULT_SOFA)
    dirs = kemar.directions(pos, ir, rate)
    assert len(dirs) == 360 and all(d["hrir"].shape[0] == 2 for d in dirs)
    side = {(d["azimuth"], d["elevation"]): d["itd_ms"] for d in dirs}
    assert side[(90.0, 0.0)] == pytest.approx(0.726, abs=0.01)   # data.md's figure
    assert side[(270.0, 0.0)] == pytest.approx(-side[(90.0, 0.0)], abs=0.01)
    assert abs(side[(0.0, 0.0)]) < 0.01
    off = [d for d in dirs if abs(d["lateral"]) > 5]
    assert all(np.sign(d["itd_ms"]) == np.sign(d["lateral"]) for d in off)


def test_lateral_bias_is_positive_when_a_method_overshoots_to_either_side():
    rows = [{"file": f"c{i}", "delay_ms": d, "lateral": lat, "snr_db": 0.0}
            for i, (d, lat) in enumerate([(0.6, 80.0), (-0.6, -80.0), (0.1, 10.0)])]
    out = {"c0": 0.65, "c1": -0.65, "c2": 0.1}
    s = kemar.summarise(rows, out)
    assert s["lateral_bias_ms"] == pytest.approx(0.05) and s["lateral_mae_ms"] == pytest.approx(0.05)
    assert s["mae_ms"] == pytest.approx(0.1 / 3) and s["by_snr"] == {"0": pytest.approx(0.1 / 3)}
    s = kemar.summarise(rows, {"c0": 0.55, "c1": -0.55, "c2": 0.1})
    assert s["lateral_bias_ms"] == pytest.approx(-0.05)


def _fake_sofa(path: Path, shift: int = 8):
    """Three directions (front, left, right) whose 'HRIRs' are pure delays at 44.1 kHz."""
    h5py = pytest.importorskip("h5py")
    ir = np.zeros((3, 2, 256))
    for i, d in enumerate((0, shift, -shift)):        # right ear later for the left source
        ir[i, 0, 40] = 1.0
        ir[i, 1, 40 + d] = 1.0
    with h5py.File(str(path), "w") as f:
        f["SourcePosition"] = np.array([[0.0, 0.0, 1.4], [90.0, 0.0, 1.4], [270.0, 0.0, 1.4]])
        f["Data.IR"] = ir
        f["Data.SamplingRate"] = np.array([44100.0])
        f["ReceiverPosition"] = np.array([[[0.0], [0.09], [0.0]], [[0.0], [-0.09], [0.0]]])


def test_the_check_scores_tded_and_the_references_against_the_truth(tmp_path):
    sofa = tmp_path / "fake.sofa"
    _fake_sofa(sofa)
    out = tmp_path / "clips"
    env = dict(os.environ, FAKE_TDED_TRUTH=str(out / "truth.csv"), FAKE_TDED_OFFSET_MS="0.02")
    r = subprocess.run([sys.executable, str(EVAL / "kemar.py"), "--sofa", str(sofa), "--tded",
                        FAKE, "--seconds", "0.5", "--n", "6", "--snr", "30", "--live",
                        "--live-n", "3", "--out", str(out), "--json", str(tmp_path / "k.json")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    truth = list(csv.DictReader(open(out / "truth.csv")))
    assert len(truth) == 9 and {round(float(t["delay_ms"]), 3) for t in truth} == {
        0.0, round(8 / 44.1, 3), round(-8 / 44.1, 3)}
    rep = json.loads((tmp_path / "k.json").read_text())
    whole = rep["whole-0.5s"]
    # the fake prints truth + 0.02 ms for every variant; numpy GCC-PHAT finds the pure delay
    assert whole["default"]["mae_ms"] == pytest.approx(0.02, abs=1e-6)
    assert whole["classical"]["lateral_bias_ms"] == pytest.approx(0.0, abs=1e-6)
    assert whole["ref-gcc-phat-geo"]["mae_ms"] < 0.01
    assert rep["live"]["default"]["mae_ms"] == pytest.approx(0.02, abs=1e-6)
    assert rep["live"]["ref-live-gcc-phat"]["mae_ms"] < 0.01
    assert "| default | 6 | 0.0200 |" in r.stdout


def test_a_missing_sofa_file_is_one_clear_line(tmp_path):
    r = subprocess.run([sys.executable, str(EVAL / "kemar.py"), "--sofa",
                        str(tmp_path / "none.sofa"), "--tded", FAKE],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().startswith("kemar: no SOFA file at")
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_sphere_stand_in_has_the_same_grid_and_woodworths_delays():
    dirs = kemar.sphere_directions(0.0875)
    assert len(dirs) == 360
    side = max(dirs, key=lambda d: d["lateral"])
    assert side["lateral"] == pytest.approx(90) and side["itd_ms"] == pytest.approx(
        0.0875 / 343 * (np.pi / 2 + 1) * 1000, rel=0.03)
    assert all(np.sign(d["itd_ms"]) == np.sign(d["lateral"]) for d in dirs if abs(d["lateral"]) > 5)

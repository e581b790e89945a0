"""Runner: fails loudly (non-zero exit, clear message) instead of scoring missing output."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import generate as gen

EVAL = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(EVAL / "run.py")]
FAKE = str(EVAL / "tests" / "fake_tded.py")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    assert gen.main(["--out", str(d), "--size", "small", "--seed", "3", "--n-single", "6",
                     "--n-mixture", "1"]) == 0
    return d


def run(args, **env):
    e = dict(os.environ)
    e.pop("TDED", None)
    e.update(env)
    return subprocess.run(RUN + args, capture_output=True, text=True, env=e, timeout=300)


def copy_set(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_fake_tded_plumbing_scores_the_known_offset(tiny_set, tmp_path):
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--results", str(tmp_path / "res")],
            FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"), FAKE_TDED_OFFSET_MS="0.05",
            FAKE_TDED_NO_LEARNED="1")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res" / "results.json").read_text())
    for kind in ("single", "mixture"):
        m = res["sets"][kind]["overall"]["gcc-phat-mean"]
        assert m["mae_ms"] == pytest.approx(0.05, abs=1e-9)
        assert m["rmse_ms"] == pytest.approx(0.05, abs=1e-9)
    assert "learned-mean" not in res["methods"]  # skipped: not built in this tded
    assert (tmp_path / "res" / "results.md").read_text().count("gcc-phat-mode") > 3
    for png in ("mae_vs_snr.png", "mae_vs_rt60.png", "mae_vs_distractor.png"):
        assert (tmp_path / "res" / png).stat().st_size > 1000


def test_missing_tded_fails_loudly(tiny_set, tmp_path):
    r = run(["--data", str(tiny_set), "--tded", str(tmp_path / "nope" / "tded")])
    assert r.returncode != 0
    assert "tded not found" in r.stderr
    r = run(["--data", str(tiny_set)], TDED=str(tmp_path / "nope"))
    assert r.returncode != 0 and "tded not found" in r.stderr


def test_unreadable_clip_fails_loudly(tiny_set, tmp_path):
    d = copy_set(tiny_set, tmp_path / "broken")
    victim = gen.read_truth(d / "truth.csv")[2]["file"]
    (d / victim).write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    r = run(["--data", str(d), "--tded", FAKE, "--results", str(tmp_path / "res")],
            FAKE_TDED_TRUTH=str(d / "truth.csv"))
    assert r.returncode != 0
    assert "clip unreadable" in r.stderr and victim in r.stderr
    assert not (tmp_path / "res" / "results.json").exists()


def test_missing_clip_file_fails_loudly(tiny_set, tmp_path):
    d = copy_set(tiny_set, tmp_path / "gone")
    victim = gen.read_truth(d / "truth.csv")[0]["file"]
    (d / victim).unlink()
    r = run(["--data", str(d), "--tded", FAKE], FAKE_TDED_TRUTH=str(d / "truth.csv"))
    assert r.returncode != 0 and "clip unreadable" in r.stderr


def test_method_without_estimate_for_a_clip_fails_loudly(tiny_set, tmp_path):
    victim = gen.read_truth(tiny_set / "truth.csv")[4]["file"]
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--results", str(tmp_path / "res")],
            FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"), FAKE_TDED_DROP=victim,
            FAKE_TDED_NO_LEARNED="1")
    assert r.returncode != 0
    assert "no estimate" in r.stderr and victim in r.stderr
    assert not (tmp_path / "res" / "results.json").exists()


def test_explicitly_requested_method_that_fails_is_an_error(tiny_set):
    r = run(["--data", str(tiny_set), "--tded", FAKE, "--methods", "gcc-phat,learned"],
            FAKE_TDED_TRUTH=str(tiny_set / "truth.csv"), FAKE_TDED_NO_LEARNED="1")
    assert r.returncode != 0 and "learned" in r.stderr


def test_tded_error_exit_fails_loudly(tiny_set, tmp_path):
    script = tmp_path / "bad_tded"
    script.write_text("#!/bin/sh\necho 'error: cannot read x.wav' >&2\nexit 1\n")
    script.chmod(0o755)
    r = run(["--data", str(tiny_set), "--tded", str(script)])
    assert r.returncode != 0 and "error" in r.stderr

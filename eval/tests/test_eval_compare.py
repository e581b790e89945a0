"""eval/compare.py: paired MAE ratios with bootstrap intervals from an eval run's estimates.csv."""
import numpy as np

import compare

COLS = "file,kind,room,rt60,snr_db,distractor_level,source_kind,source,truth_ms,iid"


def write(d, methods, n=1600, seed=0):
    """estimates.csv with methods {label: (error scale single, error scale mixtures)}."""
    rng = np.random.default_rng(seed)
    d.mkdir()
    lines = [COLS + "," + ",".join(methods)]
    for i in range(n):
        kind = "single" if i % 4 else "mixture"
        truth = rng.uniform(-0.8, 0.8)
        snr = ("-10", "30")[i % 2]
        est = []
        for s_single, s_mix in methods.values():
            s = s_single if kind == "single" else s_mix
            est.append(f"{truth + rng.normal(0, s * (3 if snr == '-10' else 1)):.5f}")
        level = "" if kind == "single" else ("0.5", "0.9")[(i // 4) % 2]
        lines.append(f"c{i}.wav,{kind},room1,0.3,{snr},{level},speech,s.wav,{truth:.6f},1," + ",".join(est))
    (d / "estimates.csv").write_text("\n".join(lines) + "\n")
    return d


def test_ratio_and_interval_follow_the_errors(tmp_path, capsys):
    d = write(tmp_path / "r", {"good": (0.05, 0.2), "bad": (0.1, 0.1), "worse": (0.2, 0.3)})
    assert compare.main([str(d), "--a", "good", "--b", "bad,worse", "--by", "snr_db", "--bar", "0.8", "--boot", "500"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split("|") for ln in out.splitlines() if ln.startswith("| all") or ln.startswith("| snr_db")]
    assert len(rows) == 3
    for r in rows:
        best, ratio, (lo, hi) = r[3].strip(), float(r[6]), map(float, r[7].split("-"))
        assert best == "bad"                      # the best reference, per group
        assert 0.4 < ratio < 0.6 and lo < ratio < hi  # errors half as large
        assert r[8].strip() == "yes"              # the whole interval below 0.8


def test_mixtures_by_level_and_a_method_that_loses(tmp_path, capsys):
    d = write(tmp_path / "r", {"good": (0.05, 0.2), "bad": (0.1, 0.1)})
    assert compare.main([str(d / "estimates.csv"), "--a", "good", "--b", "bad", "--kind", "mixture",
                         "--levels", "0.9", "--bar", "0.8", "--boot", "300"]) == 0
    out = capsys.readouterr().out
    row = [ln.split("|") for ln in out.splitlines() if ln.startswith("| all")][0]
    assert int(row[2]) == 200  # 400 mixtures, half at level 0.9
    assert float(row[5]) > 1.5 and row[7].strip() == "no"  # errors twice as large


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    d = write(tmp_path / "r", {"good": (0.05, 0.2), "bad": (0.1, 0.1)})
    assert compare.main([str(d), "--a", "good", "--b", "nope"]) == 2
    assert "no method 'nope'" in capsys.readouterr().err
    assert compare.main([str(tmp_path / "missing"), "--a", "good", "--b", "bad"]) == 2
    assert "no such file" in capsys.readouterr().err
    text = (d / "estimates.csv").read_text().splitlines()
    text[1] = text[1].rsplit(",", 1)[0] + ",nan"
    (d / "estimates.csv").write_text("\n".join(text) + "\n")
    assert compare.main([str(d), "--a", "good", "--b", "bad", "--kind", "all"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without a finite estimate" in err

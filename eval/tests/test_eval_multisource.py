"""eval/multisource.py: the scoring of found sources against truth.csv and of the scene."""
import numpy as np

import multisource as ms


def row(file, kind, d1, d2="", level=""):
    return {"file": file, "kind": kind, "delay_samples": str(d1), "distractor_delay_samples": str(d2),
            "distractor_level": level}


def test_score_recall_and_false_sources():
    truth = [row("one_0.wav", "single", 3.0), row("one_1.wav", "single", -2.0),
             row("mix_0.wav", "mixture", 5.0, -6.0, "0.5"), row("mix_1.wav", "mixture", 5.0, -6.0, "0.5"),
             row("mix_2.wav", "mixture", 1.0, 9.0, "0.3")]
    found = {"one_0.wav": [(3.1, 1.0)], "one_1.wav": [(-2.0, 0.7), (7.0, 0.3)],
             "mix_0.wav": [(5.2, 0.6), (-6.5, 0.4)],          # both within 1
             "mix_1.wav": [(5.0, 0.7), (-7.5, 0.3)],          # distractor within 2 only
             "mix_2.wav": [(1.0, 1.0)]}                       # distractor missed
    r = ms.score(truth, found)
    assert r["single_clips"] == 2 and r["false_source_rate"] == 0.5
    lv = r["levels"]["0.5"]
    assert lv["clips"] == 2 and lv["both_within_1"] == 0.5 and lv["both_within_2"] == 1.0
    assert r["levels"]["0.3"]["both_within_2"] == 0.0 and r["levels"]["0.3"]["dominant_within_1"] == 1.0
    assert "| 0.5 | 2 | 50.0% | 100.0% |" in ms.table(r)


def test_score_scene_counts_id_changes_and_swaps():
    # B passes A (+6) at t = 4.92 s; lines every 0.5 s outside the crossing zone
    lines = []
    for t in np.arange(1.0, 8.01, 0.5):
        b = ms.scene_b(t)
        lines.append({"t": float(t), "sources": [{"id": 1, "delay_ms": ms.SCENE_A / 16},
                                                 {"id": 2 if t < 5 else 3, "delay_ms": b / 16}]})
    r = ms.score_scene(lines)
    assert r["A_id_changes"] == 0 and r["B_id_changes"] == 1 and not r["ids_shared"]
    assert r["A_reported"] == 1.0 and r["B_reported"] == 1.0
    # a swap: after the crossing A's id follows B
    for x in lines:
        if x["t"] > 5:
            x["sources"] = [{"id": 2, "delay_ms": ms.SCENE_A / 16}, {"id": 1, "delay_ms": ms.scene_b(x["t"]) / 16}]
    r = ms.score_scene(lines)
    assert r["ids_shared"] and r["A_id_changes"] == 1


def test_fractional_delay_matches_an_integer_shift():
    x = np.random.default_rng(1).standard_normal(400)
    y = ms.fractional_delay(x, np.full(400, 3.0))
    assert np.allclose(y[40:360], x[37:357], atol=1e-9)

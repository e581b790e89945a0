"""Multi-source figures of `tded analyze --whole --max-sources N` on a generated data set.

Per distractor level of the mixtures (truth.csv has both delays): the share of clips where
both true delays have a reported source within 1 and within 2 samples ("recall of both"),
and each source's recall alone; on the single-source clips, the false-source rate (clips
reporting more than one source). Clips are analysed per file with the whole file's votes,
grouped by mic_distance so each call gets its array's spacing.

    python3 eval/multisource.py --data /path/to/data [--tded PATH] [--json OUT]
    python3 eval/multisource.py --scene [--tded PATH]

--scene: id stability on a scripted scene: two synthetic talkers on a 0.3 m array, A still at
+6 samples, B walking from -12 to +14 samples across A in 8 s; `tded analyze --max-sources 2`
per update (the daemon's lines). Prints how often each talker is reported (within 2 samples,
while they are more than 4 samples apart) and how many times each talker's id changed.

Tune on the tuning set (eval/devset.py), then measure once on the evaluation set.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as run_mod  # noqa: E402

RATE = 16000


def analyze(tded: Path, clips: list[Path], mic_distance: float, max_sources: int,
            extra: list[str]) -> dict:
    """file name -> list of sources (delay in samples, share) from one tded call per chunk."""
    out = {}
    for i in range(0, len(clips), 200):
        chunk = clips[i:i + 200]
        cmd = [str(tded), "analyze", "--whole", "--max-sources", str(max_sources),
               "--mic-distance", f"{mic_distance:.6f}"] + extra + [str(c) for c in chunk]
        r = run_mod._run(cmd)
        if r.returncode not in (0, 1):
            raise run_mod.EvalError(f"tded analyze failed (exit {r.returncode}): {r.stderr.strip()[:300]}")
        for line in r.stdout.splitlines():
            obj = json.loads(line)
            srcs = [(s["delay_ms"] * RATE / 1000, s["share"]) for s in obj.get("sources", [])]
            out[Path(obj["file"]).name] = srcs
    return out


def score(truth: list[dict], found: dict) -> dict:
    """The figures (see the module docstring) from truth rows and found sources."""
    per_level = defaultdict(lambda: {"n": 0, "both1": 0, "both2": 0, "dom1": 0, "dis1": 0,
                                     "dom2": 0, "dis2": 0, "close": 0, "reported2": 0})
    single = {"n": 0, "false": 0}
    for row in truth:
        srcs = found.get(row["file"])
        if srcs is None:
            continue
        if row["kind"] == "single":
            single["n"] += 1
            single["false"] += len(srcs) > 1
            continue
        lv = per_level[row["distractor_level"]]
        lv["n"] += 1
        d1, d2 = float(row["delay_samples"]), float(row["distractor_delay_samples"])
        lv["close"] += abs(d1 - d2) < 3
        lv["reported2"] += len(srcs) > 1
        for tol in (1, 2):
            hit1 = any(abs(s - d1) <= tol for s, _ in srcs)
            hit2 = any(abs(s - d2) <= tol for s, _ in srcs)
            lv[f"dom{tol}"] += hit1
            lv[f"dis{tol}"] += hit2
            lv[f"both{tol}"] += hit1 and hit2
    levels = {}
    for k in sorted(per_level, key=float):
        v = per_level[k]
        n = max(1, v["n"])
        levels[k] = {"clips": v["n"], "both_within_1": v["both1"] / n, "both_within_2": v["both2"] / n,
                     "dominant_within_1": v["dom1"] / n, "distractor_within_1": v["dis1"] / n,
                     "dominant_within_2": v["dom2"] / n, "distractor_within_2": v["dis2"] / n,
                     "two_reported": v["reported2"] / n, "closer_than_3": v["close"]}
    return {"levels": levels, "single_clips": single["n"],
            "false_source_rate": single["false"] / max(1, single["n"])}


def table(res: dict) -> str:
    lines = ["| distractor level | clips | both within 1 | both within 2 | distractor within 1 | distractor within 2 | 2 reported | truths < 3 apart |",
             "|---|---|---|---|---|---|---|---|"]
    for k, v in res["levels"].items():
        lines.append(f"| {k} | {v['clips']} | {v['both_within_1']:.1%} | {v['both_within_2']:.1%} | "
                     f"{v['distractor_within_1']:.1%} | {v['distractor_within_2']:.1%} | "
                     f"{v['two_reported']:.1%} | {v['closer_than_3']} |")
    lines.append(f"\nfalse-source rate on {res['single_clips']} single-source clips: "
                 f"{res['false_source_rate']:.1%}")
    return "\n".join(lines)


SCENE_A = 6.0


def scene_b(t):
    """B's delay (samples) at time t (s)."""
    return -12.0 + 26.0 * t / 8.0


def fractional_delay(x: "np.ndarray", delay: "np.ndarray") -> "np.ndarray":
    """y[i] = x(i - delay[i]) by a Blackman-windowed sinc (64 taps)."""
    import numpy as np
    n = len(delay)
    pos = np.arange(n) - delay
    base = np.floor(pos).astype(int)
    frac = pos - base
    y = np.zeros(n)
    for k in range(-31, 33):
        idx = base + k
        d = frac - k
        w = 0.42 + 0.5 * np.cos(np.pi * d / 32) + 0.08 * np.cos(2 * np.pi * d / 32)
        ok = (idx >= 0) & (idx < len(x)) & (np.abs(d) < 32)
        y[ok] += x[idx[ok]] * np.sinc(d[ok]) * w[ok]
    return y


def make_scene(path: Path, seconds: float = 8.0) -> None:
    import numpy as np
    import soundfile as sf
    import sources as src_mod
    pool = [p for p in src_mod.load_pool(None, ("synthetic",)) if p.kind != "music"]
    if len(pool) < 2:
        raise run_mod.EvalError("no synthetic speech for the scene (is espeak-ng installed?)")
    n = int(seconds * RATE)

    def talker(start):
        parts, k = [], start
        while sum(len(p) for p in parts) < n:
            a = pool[k % len(pool)].audio.astype(float)
            parts.append(a / (np.sqrt(np.mean(a ** 2)) + 1e-12))
            k += 2
        return np.concatenate(parts)[:n]
    a, b = talker(0), talker(1)
    t = np.arange(n) / RATE
    left = a + b
    right = fractional_delay(a, np.full(n, SCENE_A)) + fractional_delay(b, scene_b(t))
    rng = np.random.default_rng(16)
    st = np.stack([left, right], axis=1) + 0.003 * rng.standard_normal((n, 2))
    sf.write(str(path), (0.3 * st / np.max(np.abs(st))).astype(np.float32), RATE, subtype="FLOAT")


def score_scene(lines: list[dict]) -> dict:
    """Per-talker reports and id changes from per-update lines of the scene."""
    found = {"A": 0, "B": 0}
    ids = {"A": [], "B": []}
    n = 0
    for obj in lines:
        t = obj["t"]
        b = scene_b(t)
        if t < 1.0 or abs(b - SCENE_A) <= 4:
            continue
        n += 1
        srcs = [(s["delay_ms"] * RATE / 1000, s["id"]) for s in obj.get("sources", [])]
        for name, truth in (("A", SCENE_A), ("B", b)):
            near = [i for d, i in srcs if abs(d - truth) <= 2]
            if near:
                found[name] += 1
                ids[name].append(near[0])
    changes = {k: sum(1 for x, y in zip(v, v[1:]) if x != y) for k, v in ids.items()}
    swapped = bool(set(ids["A"]) & set(ids["B"]))
    return {"updates": n, "A_reported": found["A"] / max(1, n), "B_reported": found["B"] / max(1, n),
            "A_id_changes": changes["A"], "B_id_changes": changes["B"],
            "ids_A": sorted(set(ids["A"])), "ids_B": sorted(set(ids["B"])), "ids_shared": swapped}


def run_scene(tded: Path, max_sources: int, extra: list[str]) -> dict:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "scene.wav"
        make_scene(p)
        r = run_mod._run([str(tded), "analyze", "--max-sources", str(max_sources), "--mic-distance", "0.3"]
                         + extra + [str(p)])
        if r.returncode != 0:
            raise run_mod.EvalError(f"tded analyze failed (exit {r.returncode}): {r.stderr.strip()[:300]}")
        return score_scene([json.loads(x) for x in r.stdout.splitlines()])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="directory with truth.csv and the clips")
    ap.add_argument("--scene", action="store_true", help="the scripted crossing scene instead (see above)")
    ap.add_argument("--tded", default=None)
    ap.add_argument("--max-sources", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--arg", action="append", default=[],
                    help="extra tded analyze argument (repeat), e.g. --arg=--source-search=min-share=0.2")
    a = ap.parse_args(argv)
    if not a.scene and not a.data:
        ap.error("give --data DIR or --scene")
    try:
        tded = run_mod.find_tded(a.tded)
        if a.scene:
            res = run_scene(tded, a.max_sources, a.arg)
            print(f"scene: {res['updates']} updates with the talkers > 4 samples apart; A reported in "
                  f"{res['A_reported']:.1%}, B in {res['B_reported']:.1%} (within 2 samples); id changes: "
                  f"A {res['A_id_changes']}, B {res['B_id_changes']}; ids A {res['ids_A']}, B {res['ids_B']}; "
                  f"shared (swap): {res['ids_shared']}")
            if a.json:
                Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
            return 0
        data = Path(a.data)
        truth = list(csv.DictReader(open(data / "truth.csv")))
        by_d = defaultdict(list)
        for row in truth:
            by_d[float(row["mic_distance"])].append(data / row["file"])
        found = {}
        for d, clips in sorted(by_d.items()):
            found.update(analyze(tded, clips, d, a.max_sources, a.arg))
    except (run_mod.EvalError, OSError) as e:
        print(f"multisource: {e}", file=sys.stderr)
        return 2
    res = score(truth, found)
    print(table(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

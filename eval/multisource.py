"""Multi-source figures of `tded analyze --whole --max-sources N` on a generated data set.

Per distractor level of the mixtures (truth.csv has both delays): the share of clips where
both true delays have a reported source within 1 and within 2 samples ("recall of both"),
and each source's recall alone; on the single-source clips, the false-source rate (clips
reporting more than one source). Clips are analysed per file with the whole file's votes,
grouped by mic_distance so each call gets its array's spacing.

    python3 eval/multisource.py --data /path/to/data [--tded PATH] [--json OUT]

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory with truth.csv and the clips")
    ap.add_argument("--tded", default=None)
    ap.add_argument("--max-sources", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--arg", action="append", default=[],
                    help="extra tded analyze argument (repeat), e.g. --arg=--source-search=min-share=0.2")
    a = ap.parse_args(argv)
    try:
        tded = run_mod.find_tded(a.tded)
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

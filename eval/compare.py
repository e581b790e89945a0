#!/usr/bin/env python3
"""Paired comparison of two methods of one eval run: MAE ratio with a bootstrap interval.

`eval/run.py` writes `estimates.csv` (one row per clip, one column per method) beside
`results.md`. Issue 11 states its bar as a ratio ("single-source MAE <= 0.80x the best classical
row"); a ratio from one set of clips has sampling noise, and the two methods' errors on the same
clips are correlated, so the interval comes from resampling *clips* (both methods together):

    python3 eval/compare.py eval/out/results-full --a gcc-learned-v7 \\
        --b classical-whole,phat-coh,ref-gcc-phat-geo --kind single --by snr_db --bar 0.8

`--b` with several labels compares, in each group, with the best of them on that group's clips
(the issue's "best classical row", and "no band where a classical row wins"; chosen on the same
clips, which favours B slightly). Prints a markdown table: group, clips, MAE of A and B (ms), A/B
and its 95 % interval, and with `--bar` whether the whole interval is below the bar (yes), above
it (no) or neither (undecided). Exits 2 with one line on a bad file or label.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

KINDS = ("single", "mixture", "all")


def load(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of estimates.csv and its method labels (the columns after `iid`)."""
    f = path / "estimates.csv" if path.is_dir() else path
    if not f.is_file():
        raise ValueError(f"{f}: no such file (eval/run.py writes estimates.csv into its --results folder)")
    with open(f, newline="") as fh:
        rd = csv.DictReader(fh)
        cols = rd.fieldnames or []
        rows = list(rd)
    if "truth_ms" not in cols or "iid" not in cols:
        raise ValueError(f"{f}: not an eval/run.py estimates.csv (no truth_ms / iid columns)")
    return rows, cols[cols.index("iid") + 1:]


def select(rows: list[dict], kind: str, levels: set[str] | None) -> list[dict]:
    out = [r for r in rows if kind == "all" or r["kind"] == kind]
    if levels is not None:
        out = [r for r in out if r["distractor_level"] in levels]
    return out


def errors(rows: list[dict], label: str) -> np.ndarray:
    """|estimate - truth| in ms. A clip without a finite estimate is an error, not skipped:
    skipping it would flatter the method that failed there."""
    e = np.array([float(r[label] or "nan") - float(r["truth_ms"]) for r in rows])
    if not np.all(np.isfinite(e)):
        raise ValueError(f"method {label}: {int((~np.isfinite(e)).sum())} clip(s) without a finite estimate")
    return np.abs(e)


def ratio_ci(ea: np.ndarray, eb: np.ndarray, boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """MAE(a) / MAE(b) and the 2.5 / 97.5 percentiles of its paired bootstrap over clips."""
    r = ea.mean() / eb.mean() if eb.mean() > 0 else float("inf")
    n = len(ea)
    idx = rng.integers(0, n, size=(boot, n))
    sa, sb = ea[idx].mean(1), eb[idx].mean(1)
    rs = np.where(sb > 0, sa / np.where(sb > 0, sb, 1), np.inf)
    lo, hi = np.percentile(rs, [2.5, 97.5])
    return float(r), float(lo), float(hi)


def compare(rows: list[dict], a: str, bs: list[str], by: str | None, boot: int, seed: int,
            bar: float | None) -> list[str]:
    ea = errors(rows, a)
    eb_all = {b: errors(rows, b) for b in bs}
    rng = np.random.default_rng(seed)
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(rows), bool))]
    if by:
        vals = sorted({r[by] for r in rows}, key=lambda v: (float(v) if _num(v) else float("inf"), v))
        groups += [(f"{by}={v}", np.array([r[by] == v for r in rows])) for v in vals]
    many = len(bs) > 1
    head = f"A = {a}; B = " + (f"the best of {', '.join(bs)} on each group's clips (its label in the B column)" if many else bs[0])
    lines = [head, "", "| group | clips |" + (" B |" if many else "") + " MAE A (ms) | MAE B (ms) | A/B | 95 % interval |"
             + (" below bar |" if bar else ""),
             "|---|---|" + ("---|" if many else "") + "---|---|---|---|" + ("---|" if bar else "")]
    for name, m in groups:
        best = min(bs, key=lambda b: eb_all[b][m].mean())
        eb = eb_all[best]
        r, lo, hi = ratio_ci(ea[m], eb[m], boot, rng)
        cell = f" {'yes' if hi <= bar else ('no' if lo > bar else 'undecided')} |" if bar else ""
        lines.append(f"| {name} | {int(m.sum())} |" + (f" {best} |" if many else "")
                     + f" {ea[m].mean():.4f} | {eb[m].mean():.4f} | {r:.3f} | {lo:.3f}-{hi:.3f} |" + cell)
    return lines


def _num(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="an eval/run.py --results folder, or its estimates.csv")
    ap.add_argument("--a", required=True, help="the method label to judge")
    ap.add_argument("--b", required=True, help="the reference label, or several separated by commas (the best of them)")
    ap.add_argument("--kind", choices=KINDS, default="single")
    ap.add_argument("--levels", help="mixtures only: distractor levels to keep, e.g. 0.5,0.7,0.9")
    ap.add_argument("--by", help="also per value of this column (room, rt60, snr_db, source_kind, distractor_level)")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bar", type=float, help="a ratio to test against, e.g. 0.8")
    a = ap.parse_args(argv)
    try:
        rows, labels = load(Path(a.results))
        bs = [b for b in a.b.split(",") if b]
        for lab in [a.a] + bs:
            if lab not in labels:
                raise ValueError(f"no method '{lab}' in the estimates (have: {', '.join(labels)})")
        if not bs:
            raise ValueError("--b names no method")
        if a.boot < 100:
            raise ValueError(f"--boot {a.boot}: use at least 100 resamples")
        levels = set(a.levels.split(",")) if a.levels else None
        sel = select(rows, a.kind, levels)
        if not sel:
            raise ValueError(f"no clips of kind {a.kind}" + (f" at levels {a.levels}" if levels else ""))
        if a.by and a.by not in sel[0]:
            raise ValueError(f"--by {a.by}: no such column")
        print("\n".join(compare(sel, a.a, bs, a.by, a.boot, a.seed, a.bar)))
    except ValueError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

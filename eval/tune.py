#!/usr/bin/env python3
"""Compare tded configurations on the tuning set (eval/devset.py), never on the evaluation set.

    python3 eval/tune.py --data eval/out/dev --variant 'pooled=--post pooled' --variant 'mode=--post mode'
    python3 eval/tune.py --data eval/out/dev-long --live --variant 'tau0.3=engine.post=pooled engine.memory_s=0.3'

Default (offline): one `tded analyze --whole` estimate per clip (variant = analyze options).
`--live`: the daemon itself replays each clip unpaced (`tded run --input CLIP --echo`; variant
= config settings `section.key=VALUE`), and every published line with t >= --from seconds is
scored, the smoothed `delay_ms` and the raw `raw_delay_ms` separately; with `--active-only` only
the lines at which the source is active (the set's `active` column, `devset.py --activity`), as
the evaluation's live metric scores. Prints MAE (ms) overall, by SNR band, by RT60 band, by
microphone spacing and by distractor level.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate as gen  # noqa: E402

RATE = 16000


def run_live(tded: str, data: Path, rows: list[dict], settings: list[str],
             jobs: int) -> dict[str, list[dict]]:
    """file -> the daemon's published lines (`tded run --input CLIP --echo`, unpaced), with
    `settings` (`section.key=value`, TOML values) written to a temporary config file."""
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="tded-tune-"))
    out = {}

    def one(r):
        sections = defaultdict(list)
        sections["engine"].append(f"mic_distance = {float(r['mic_distance'])}")
        for kv in settings:
            k, _, v = kv.partition("=")
            sec, _, key = k.partition(".")
            try:
                float(v)
            except ValueError:
                if not (v.startswith(("\"", "[")) or v in ("true", "false")):
                    v = json.dumps(v)
            sections[sec].append(f"{key} = {v}")
        name = r["file"]
        cfg = tmp / (name + ".toml")
        cfg.write_text("".join(f"[{sec}]\n" + "\n".join(v) + "\n" for sec, v in sections.items()))
        cmd = [tded, "run", "--config", str(cfg), "--input", str(data / name), "--echo",
               "--socket", str(tmp / (name + ".sock")), "--log-level", "error"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise SystemExit(f"tded run failed ({p.returncode}): {p.stderr.strip()[:300]}")
        return name, [json.loads(x) for x in p.stdout.splitlines()]
    with ThreadPoolExecutor(jobs) as ex:
        for name, lines in ex.map(one, rows):
            out[name] = lines
    return out


def run_variant(tded: str, data: Path, rows: list[dict], args: list[str], live: bool,
                jobs: int) -> dict[str, list[dict]]:
    """file -> list of JSON lines of tded analyze."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["mic_distance"]].append(r["file"])
    calls = []
    for d, files in groups.items():
        for i in range(0, len(files), 40):
            cmd = [tded, "analyze", "--mic-distance", d, *args]
            if not live:
                cmd.append("--whole")
            calls.append(cmd + [str(data / f) for f in files[i:i + 40]])

    def one(cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"tded failed ({p.returncode}): {p.stderr.strip()[:300]}\n{shlex.join(cmd[:8])} ...")
        return p.stdout
    out = defaultdict(list)
    with ThreadPoolExecutor(jobs) as ex:
        for text in ex.map(one, calls):
            for line in text.splitlines():
                j = json.loads(line)
                out[Path(j["file"]).name].append(j)
    return out


def band(r: dict) -> dict[str, str]:
    snr, rt = float(r["snr_db"]), float(r["rt60"])
    b = {"snr": "<5 dB" if snr < 5 else ("5-15 dB" if snr < 15 else ">=15 dB"),
         "rt60": "<0.35 s" if rt < 0.35 else ("0.35-0.6 s" if rt < 0.6 else ">=0.6 s"),
         "spacing": f"{float(r['mic_distance']):.2f} m"}
    if r["kind"] == "mixture":
        b["level"] = f"{float(r['distractor_level']):.1f}"
    return b


def score(rows, lines, live: bool, t_from: float, field: str, active_only: bool = False):
    from live import active_at
    errs = defaultdict(list)
    for r in rows:
        truth = float(r["delay_ms"])
        ls = lines.get(r["file"], [])
        if live:
            ls = [j for j in ls if j["t"] >= t_from]
        if active_only:
            if not r.get("active"):
                raise SystemExit(f"--active-only: {r['file']} has no `active` column (make the set with devset.py --activity)")
            ls = [j for j in ls if active_at(r["active"], j["t"])]
        if not ls:
            if active_only:  # (the source is never active from t_from on)
                continue
            raise SystemExit(f"no estimate for {r['file']}")
        for j in ls:
            v = j[field]
            if v is None:
                raise SystemExit(f"null {field} for {r['file']}")
            e = abs(v - truth)
            kind = r["kind"]
            errs[(kind, "all", "")].append(e)
            for k, b in band(r).items():
                errs[(kind, k, b)].append(e)
    return {k: sum(v) / len(v) for k, v in errs.items()}, {k: len(v) for k, v in errs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--tded", default=str(HERE.parent / ".build" / "release" / "tded"))
    ap.add_argument("--variant", action="append", required=True, help="LABEL=tded analyze args")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--from", dest="t_from", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--active-only", action="store_true", help="--live: score only lines where the source is active")
    a = ap.parse_args(argv)
    data = Path(a.data)
    rows = gen.read_truth(data / "truth.csv")
    results = {}
    for v in a.variant:
        label, _, args = v.partition("=")
        t0 = time.time()
        if a.live:
            lines = run_live(a.tded, data, rows, shlex.split(args), a.jobs)
            results[label + " (smoothed)"], counts = score(rows, lines, True, a.t_from, "delay_ms", a.active_only)
            results[label + " (raw)"], counts = score(rows, lines, True, a.t_from, "raw_delay_ms", a.active_only)
        else:
            lines = run_variant(a.tded, data, rows, shlex.split(args), False, a.jobs)
            results[label], counts = score(rows, lines, False, a.t_from, "delay_ms")
        print(f"[{label}] {time.time() - t0:.1f} s", file=sys.stderr)
    keys = sorted({k for r in results.values() for k in r}, key=lambda k: (k[0], k[1] != "all", k[1], k[2]))
    labels = list(results)
    print("| kind | group | n | " + " | ".join(labels) + " |")
    print("|---|---|---|" + "---|" * len(labels))
    for k in keys:
        vals = [results[l].get(k) for l in labels]
        best = min(v for v in vals if v is not None)
        cells = [("**%.4f**" if v == best else "%.4f") % v if v is not None else "-" for v in vals]
        print(f"| {k[0]} | {k[1]} {k[2]} | {counts.get(k, 0)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

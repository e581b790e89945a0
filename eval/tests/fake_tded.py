#!/usr/bin/env python3
"""Stand-in for `tded analyze --whole` in the runner's failure tests. Not an estimator: it
prints the TRUE delay from $FAKE_TDED_TRUTH (a truth.csv), plus $FAKE_TDED_OFFSET_MS, so the
runner's plumbing can be tested without the Swift build.

$FAKE_TDED_DROP=NAME  omit the line for clip NAME (a method that gives no estimate)
$FAKE_TDED_NO_LEARNED=1  `--method learned` exits 64 with an error (method not built)

`run --input CLIP --echo ...` (the live metric): one JSON line per 50 ms of the clip, t = k/20 s,
with delay_ms = truth + $FAKE_TDED_OFFSET_MS and raw_delay_ms = truth + 2 x the offset.
$FAKE_TDED_NULL_AT=T  the line at t = T has "delay_ms": null
$FAKE_TDED_SKIP_AT=T  no line at t = T
$FAKE_TDED_RUN_EXIT=N  exit N after the lines
"""
import csv
import json
import os
import sys
from pathlib import Path

args = sys.argv[1:]
if args and args[0] == "run":
    import soundfile as sf
    clip = args[args.index("--input") + 1]
    assert "--echo" in args and "--config" in args and "--socket" in args, args
    truth = {r["file"]: r for r in csv.DictReader(open(os.environ["FAKE_TDED_TRUTH"]))}
    d = float(truth[Path(clip).name]["delay_ms"])
    off = float(os.environ.get("FAKE_TDED_OFFSET_MS", "0"))
    null_at = os.environ.get("FAKE_TDED_NULL_AT")
    skip_at = os.environ.get("FAKE_TDED_SKIP_AT")
    n = sf.info(clip).frames
    for k in range(1, n // 800 + 1):
        t = round(k * 0.05, 3)
        if skip_at is not None and abs(t - float(skip_at)) < 1e-6:
            continue
        sm = None if (null_at is not None and abs(t - float(null_at)) < 1e-6) else d + off
        print(json.dumps({"v": 1, "t": t, "delay_ms": sm, "azimuth_deg": 0.0,
                          "confidence": 1.0, "level_db": -20.0, "method": "gcc-phat",
                          "seq": k, "raw_delay_ms": d + 2 * off, "raw_azimuth_deg": 0.0,
                          "votes": 577, "flags": []}))
    sys.exit(int(os.environ.get("FAKE_TDED_RUN_EXIT", "0")))
if not args or args[0] != "analyze":
    print("usage: tded analyze --whole FILE...", file=sys.stderr)
    sys.exit(64)
opts, files, i = {}, [], 1
while i < len(args):
    a = args[i]
    if a == "--whole":
        i += 1
    elif a.startswith("--"):
        opts[a] = args[i + 1]
        i += 2
    else:
        files.append(a)
        i += 1
method = opts.get("--method", "gcc-phat")
if method == "learned" and os.environ.get("FAKE_TDED_NO_LEARNED"):
    print("error: unknown method 'learned'", file=sys.stderr)
    sys.exit(64)
truth = {r["file"]: r for r in csv.DictReader(open(os.environ["FAKE_TDED_TRUTH"]))}
off = float(os.environ.get("FAKE_TDED_OFFSET_MS", "0"))
drop = os.environ.get("FAKE_TDED_DROP")
for f in files:
    name = Path(f).name
    if name == drop:
        continue
    d = float(truth[name]["delay_ms"]) + off
    print(json.dumps({"file": f, "t": 0.0, "delay_ms": d, "delay_samples": d * 16,
                      "azimuth_deg": 0.0, "confidence": 1.0, "votes": 128, "method": method}))

#!/usr/bin/env python3
"""Stand-in for `tded analyze --whole` in the runner's failure tests. Not an estimator: it
prints the TRUE delay from $FAKE_TDED_TRUTH (a truth.csv), plus $FAKE_TDED_OFFSET_MS, so the
runner's plumbing can be tested without the Swift build.

$FAKE_TDED_DROP=NAME  omit the line for clip NAME (a method that gives no estimate)
$FAKE_TDED_NO_LEARNED=1  `--method learned` exits 64 with an error (method not built)
"""
import csv
import json
import os
import sys
from pathlib import Path

args = sys.argv[1:]
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

#!/usr/bin/env bash
# Resident memory over an accelerated replay: runs the release tded on examples/demo.wav looped
# LOOPS times (default 225 x 8 s = 30 minutes of audio) as fast as the engine goes, sampling
# VmRSS from /proc every second. Prints "elapsed_s audio_s rss_kb" lines, then a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
LOOPS=${LOOPS:-225}
SOCK=${TMPDIR:-/tmp}/tded-rss-$$.sock
.build/release/tded run --config config/tded.toml --input examples/demo.wav --loop "$LOOPS" \
  --socket "$SOCK" --log-level warning &
PID=$!
# a client that reads everything, so the publisher path is exercised too
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
nc -U "$SOCK" > /dev/null &
NC=$!
t=0
while kill -0 "$PID" 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status 2>/dev/null || true)
  audio=$(.build/release/tded status --json --socket "$SOCK" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["audio_s"])' 2>/dev/null || echo "?")
  [ -n "$rss" ] && echo "$t $audio $rss"
  sleep 1; t=$((t+1))
done
wait "$PID" || true
kill "$NC" 2>/dev/null || true

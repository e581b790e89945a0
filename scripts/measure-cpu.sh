#!/usr/bin/env bash
# Daemon CPU use in real time: the release tded replays examples/demo.wav in real time (16 kHz
# stereo, GCC-PHAT step 1 from config/tded.toml) with one nc client, for MEASURE_SECONDS (default 60)
# after a 5 s warm-up. Prints process CPU % of one core (utime+stime from /proc) and the
# engine thread's load (CPU seconds per second of audio) from `tded status`.
# Extra arguments go to `tded run`, e.g. `scripts/measure-cpu.sh --method learned`.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_MEASURE=${MEASURE_SECONDS:-60}
SOCK=${TMPDIR:-/tmp}/tded-cpu-$$.sock
.build/release/tded run --config config/tded.toml --input examples/demo.wav --realtime --loop 0 \
  --socket "$SOCK" --log-level warning "$@" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
nc -U "$SOCK" > /dev/null &
sleep 5
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$SECONDS_TO_MEASURE"
c1=$(cpu); t1=$(date +%s.%N)
python3 - "$c0" "$c1" "$t0" "$t1" "$TCK" <<'PY'
import sys
c0, c1, t0, t1, tck = map(float, sys.argv[1:])
print(f"process CPU: {(c1 - c0) / tck / (t1 - t0) * 100:.1f} % of one core over {t1 - t0:.0f} s")
PY
.build/release/tded status --socket "$SOCK" | grep -E "engine_load|engine_cpu_s|audio_s|overruns|dropped_frames"

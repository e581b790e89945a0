#!/usr/bin/env bash
# `make run`: runs the release tded on the shipped defaults (config/tded.toml) and shows the
# published lines by connecting a real client (nc -U) to the socket.
#  - With an ALSA capture device (the `default` PCM opens), it captures live until Ctrl-C.
#  - Without one (containers, CI), it replays examples/demo.wav in real time (speech 30 deg to
#    the left: expect azimuth_deg near +25..+30) and exits at the end of the file.
# The socket is /run/tded.sock when writable (the documented default), else a temp path.
# Set TDED_SECONDS to stop a live capture after that many seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/tded
[ -x "$BIN" ] || swift build -c release
CONFIG=config/tded.toml
SOCK=/run/tded.sock
# Use the documented path unless /run is not writable, or a daemon (e.g. the systemd service)
# is already serving it; then a temporary socket.
if ! { [ -w /run ] && { [ ! -e "$SOCK" ] || { [ -S "$SOCK" ] && ! "$BIN" status --socket "$SOCK" >/dev/null 2>&1; }; }; }; then
  SOCK="${TMPDIR:-/tmp}/tded-$$.sock"
fi

has_capture_device() {
  # `default` must open for capture; arecord exits non-zero when it cannot.
  command -v arecord >/dev/null 2>&1 || return 1
  timeout 3 arecord -q -D default -f S16_LE -c 2 -r 16000 -d 1 -t raw /dev/null >/dev/null 2>&1
}

ARGS=(run --config "$CONFIG" --socket "$SOCK")
if has_capture_device; then
  echo "tded: capturing from the ALSA default device; socket $SOCK (Ctrl-C to stop)" >&2
else
  echo "tded: no ALSA capture device; replaying examples/demo.wav in real time; socket $SOCK" >&2
  ARGS+=(--input examples/demo.wav --realtime)
fi

"$BIN" "${ARGS[@]}" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq 100); do [ -S "$SOCK" ] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
if [ ! -S "$SOCK" ]; then echo "tded did not start (see the messages above)" >&2; exit 1; fi
# Show the stream as a client sees it. nc exits when the daemon closes the socket.
if [ -n "${TDED_SECONDS:-}" ]; then
  timeout "$TDED_SECONDS" nc -U "$SOCK" || true
else
  nc -U "$SOCK" </dev/null || true
fi

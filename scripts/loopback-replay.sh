#!/usr/bin/env bash
# loopback-replay.sh FILE [tded run options]
#
# Replays a recording through a real sound server into the live daemon, as a desktop would:
# starts a private PulseAudio (no system service, its own runtime directory) with a 48 kHz
# stereo null sink, starts `tded run` capturing the sink's monitor through ALSA's `pulse` PCM
# (libasound2-plugins) at the device's own rate (capture.rate 48000, resampled to engine.rate
# by tded), plays FILE into the sink at real-time pace (paplay), prints the socket lines as
# `nc -U` would, and cleans everything up when the file has ended.
#
# Needs: pulseaudio, pulseaudio-utils (pactl, paplay), libasound2-plugins, netcat-openbsd,
# and tded (TDED_BIN, else .build/release/tded, else .build/debug/tded). AAC/M4A files are
# decoded with ffmpeg first when it is installed.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
file=$1; shift
[[ -f "$file" ]] || { echo "loopback-replay: $file: no such file" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
tded=${TDED_BIN:-}
if [[ -z "$tded" ]]; then
  for c in "$root/.build/release/tded" "$root/.build/debug/tded"; do [[ -x "$c" ]] && { tded=$c; break; }; done
fi
[[ -n "$tded" && -x "$tded" ]] || { echo "loopback-replay: tded not built (swift build -c release) and TDED_BIN not set" >&2; exit 1; }
for t in pulseaudio pactl paplay nc; do
  command -v "$t" >/dev/null || { echo "loopback-replay: $t not installed (apt install pulseaudio pulseaudio-utils libasound2-plugins netcat-openbsd)" >&2; exit 1; }
done
ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1 \
  || { echo "loopback-replay: ALSA's pulse plugin missing (apt install libasound2-plugins)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/tded-loopback.XXXXXX)
pa_pid="" tded_pid="" nc_pid=""
cleanup() {
  for p in $nc_pid $tded_pid $pa_pid; do kill "$p" 2>/dev/null || true; done
  for p in $nc_pid $tded_pid $pa_pid; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export XDG_RUNTIME_DIR=$tmp/run PULSE_RUNTIME_PATH=$tmp/run/pulse HOME=$tmp
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
unset PULSE_SERVER
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disable-shm=yes --log-target=file:"$tmp/pulse.log" \
  -L module-native-protocol-unix -L "module-null-sink sink_name=tdesink rate=48000 channels=2" \
  2>/dev/null &
pa_pid=$!
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl info >/dev/null 2>&1 || { echo "loopback-replay: PulseAudio did not start (see its log: $(tail -1 "$tmp/pulse.log" 2>/dev/null))" >&2; exit 1; }

# AAC/M4A/3GP: paplay cannot read them; decode once with ffmpeg.
play=$file
if head -c 12 "$file" | tail -c 8 | grep -q '^ftyp'; then
  command -v ffmpeg >/dev/null || { echo "loopback-replay: $file is AAC/M4A: install ffmpeg or convert it (ffmpeg -i $file out.wav)" >&2; exit 1; }
  ffmpeg -nostdin -v error -i "$file" -vn -c:a pcm_s16le "$tmp/play.wav"
  play=$tmp/play.wav
fi

cat > "$tmp/asound.conf" <<EOF
</usr/share/alsa/alsa.conf>
pcm.tdemonitor {
    type pulse
    device "tdesink.monitor"
}
EOF
cat > "$tmp/tded.toml" <<EOF
[capture]
device = "tdemonitor"
rate = 48000
retry_max_seconds = 0.5
EOF
sock=$tmp/tded.sock
ALSA_CONFIG_PATH=$tmp/asound.conf "$tded" run --config "$tmp/tded.toml" --socket "$sock" "$@" 2>"$tmp/tded.log" &
tded_pid=$!
for _ in $(seq 100); do [[ -S "$sock" ]] && break; kill -0 "$tded_pid" 2>/dev/null || break; sleep 0.1; done
[[ -S "$sock" ]] || { echo "loopback-replay: tded did not start: $(grep -m1 -E 'critical|error' "$tmp/tded.log" || tail -1 "$tmp/tded.log")" >&2; exit 1; }
# play only once the capture stream is open (a first connection may be retried)
for _ in $(seq 150); do grep -q "capturing from tdemonitor" "$tmp/tded.log" && break; sleep 0.1; done
grep -q "capturing from tdemonitor" "$tmp/tded.log" \
  || { echo "loopback-replay: tded could not open the monitor: $(grep -m1 -E 'unavailable|lost' "$tmp/tded.log")" >&2; exit 1; }
nc -U "$sock" </dev/null &
nc_pid=$!
sleep 0.3   # nc is connected before the first sample plays
paplay --device=tdesink "$play"
sleep 0.5   # the capture-side latency (resampler, pulse buffers) drains

#!/usr/bin/env bash
# Installs what LiveTDE needs and is missing: system libraries (Debian/Ubuntu) and, unless
# --no-python is given, the Python packages used by train/ and eval/.
set -euo pipefail
pkgs=(libfftw3-dev libopenblas-dev libasound2-dev libsoxr-dev libsndfile1-dev alsa-utils netcat-openbsd sox ffmpeg pulseaudio pulseaudio-utils libasound2-plugins espeak-ng chromium libmysofa1)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ "${1:-}" != "--no-python" ]; then
  python3 -m pip install -q -r "$(dirname "$0")/../requirements.txt"
fi

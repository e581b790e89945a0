#!/usr/bin/env bash
# Builds the real-stereo training set from Debian music packages (see
# /work/shared/reference/data.md). Nothing here is committed: output goes to data/ (gitignored).
#   train/fetch_data.sh [OUTDIR] [PKG ...]
# default OUTDIR = <repo>/data/music, default packages below. Needs apt-get (download only,
# nothing is installed), dpkg-deb and sox. Mono files are skipped with a note; everything else
# is decoded to 16 kHz stereo FLAC. Tracks shorter than 20 s are skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../data/music}"
shift || true
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(wesnoth-1.16-music drascula-music singularity-music)
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for pkg in "${pkgs[@]}"; do
  dest="$out/$pkg"
  if [ -f "$dest/.done" ]; then echo "$pkg: already done"; continue; fi
  mkdir -p "$dest"
  (cd "$work" && apt-get download "$pkg" >/dev/null)
  deb="$(ls "$work"/"${pkg}"_*.deb | head -1)"
  dpkg-deb -x "$deb" "$work/x-$pkg"
  n=0; skipped=0
  while IFS= read -r -d '' f; do
    ch="$(soxi -c "$f" 2>/dev/null || echo 0)"
    dur="$(soxi -D "$f" 2>/dev/null || echo 0)"
    if [ "$ch" != "2" ]; then echo "  note: skipping non-stereo ($ch ch) $f"; skipped=$((skipped+1)); continue; fi
    if awk "BEGIN{exit !($dur < 20)}"; then skipped=$((skipped+1)); continue; fi
    name="$(basename "${f%.*}")"
    nice -n 10 sox -q "$f" -r 16000 -b 16 "$dest/$name.flac" rate -v
    n=$((n+1))
  done < <(find "$work/x-$pkg" -type f \( -name '*.ogg' -o -name '*.opus' -o -name '*.flac' -o -name '*.wav' \) -print0)
  rm -rf "$work/x-$pkg" "$deb"
  echo "$pkg: $n stereo tracks -> $dest ($skipped skipped)"
  touch "$dest/.done"
done

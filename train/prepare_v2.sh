#!/usr/bin/env bash
# Data for the v2 (semi-supervised) training: source / noise pools, RIR banks, validation clips.
# Everything goes under data/ (gitignored, never committed). Needs apt-get (download only,
# nothing installed), dpkg-deb, pyroomacoustics. Run train/fetch_data.sh first (stereo music).
#   train/prepare_v2.sh            ~150 MB of downloads; ~10 min on 2 idle cores
set -euo pipefail
cd "$(dirname "$0")"
D=../data/debs P=../data/pools B=../data/rirbank
mkdir -p "$D" "$P" "$B"
for pkg in ktuberling-data klettres-data colobot-common-sounds; do
  if [ ! -d "$D/x_$pkg" ]; then
    (cd "$D" && apt-get download "$pkg" >/dev/null)
    dpkg-deb -x "$(ls "$D/${pkg}"_*.deb | head -1)" "$D/x_$pkg"
  fi
done
export OMP_NUM_THREADS=1
py() { nice -n 15 python3 -m "$@"; }
# training sources: ktuberling words (~20 languages), wesnoth music (mono fold-down)
py tded_train.pools --out $P/train_speech_real.npz $D/x_ktuberling-data/usr/share/ktuberling/sounds
py tded_train.pools --out $P/train_music.npz ../data/music/wesnoth-1.16-music --max-seconds 60
# validation sources: klettres letters/syllables, colobot music (neither used by training or eval)
py tded_train.pools --out $P/val_speech.npz $D/x_klettres-data/usr/share/klettres
py tded_train.pools --out $P/val_music.npz $D/x_colobot-common-sounds/usr/share/games/colobot/music --max-seconds 60
# recorded noise (colobot sound effects), split by file-name hash
py tded_train.pools --out $P/train_noise.npz --split train $D/x_colobot-common-sounds/usr/share/games/colobot/sounds
py tded_train.pools --out $P/val_noise.npz --split val $D/x_colobot-common-sounds/usr/share/games/colobot/sounds
# RIR banks: training rooms (seed 1) and validation rooms (seed 90001)
[ -f $B/train.npz ] || py tded_train.rirbank --out $B/train.npz --rooms 600 --seed 1
[ -f $B/val.npz ] || py tded_train.rirbank --out $B/val.npz --rooms 60 --seed 90001
# 200 validation clips
py tded_train.valset --out ../data/val_v2 --bank $B/val.npz --speech $P/val_speech.npz \
   --music $P/val_music.npz --noise $P/val_noise.npz --n 200 --seed 7

#!/usr/bin/env bash
# The v2 semi-supervised run (issue 11), exactly as started: fine-tunes the shipped v1 with
# StereoCRW on unlabeled music + the supervised losses on RIR-bank renderings, validating on
# data/val_v2. Needs train/fetch_data.sh and train/prepare_v2.sh first. Extra args are passed on
# (e.g. --resume). Writes runs/v2-semi/ (gitignored) and copies last.pt to checkpoints/v2-semi/.
#   cd train && nohup ./run-v2-semi.sh --resume >> runs/v2-semi/log.txt 2>&1 &
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p runs/v2-semi
OMP_NUM_THREADS=1 exec nice -n 15 python3 -m tded_train.train --out runs/v2-semi \
  --init ../models/tded-stream-v1.safetensors --objective stereocrw --aug all \
  --music ../data/music/wesnoth-1.16-music ../data/music/drascula-music --sim "" --batch 8 \
  --w-ssl 1 --w-sup 1 --w-span 1 --w-reg 0.1 --span-pool prob --span-windows 200 --sup-batch 8 \
  --sup-bank ../data/rirbank/train.npz --sup-speech ../data/pools/train_speech_real.npz \
  --sup-music ../data/pools/train_music.npz --sup-noise ../data/pools/train_noise.npz \
  --lr 3e-4 --warmup 100 --epochs 100 --epoch-steps 50 --ckpt-every 10 \
  --publish checkpoints/v2-semi --val-clips ../data/val_v2 --threads 1 --log-every 5 --seed 0 "$@"

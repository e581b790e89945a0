#!/usr/bin/env bash
# The learned pooled-GCC weighting (issue 11) exactly as shipped in models/tded-gccmask-v1:
# labelled examples rendered from the training RIR bank (2 x 30000, seeds 21 and 22, SNR -15..30
# dB, 30 % with a distractor), validation on 4000 renderings from the validation bank and pools
# (other rooms, spacings, voices, noise), 10 epochs, export of the best validation epoch and the
# engine's parity fixture. Needs train/fetch_data.sh and train/prepare_v2.sh first.
# ~25 min on 2 idle cores (data 12, training 10). Writes runs/gccmask/ (gitignored).
#   train/run-gccmask.sh            # then: git diff --stat ../models ../Tests/EngineTests/Fixtures
set -euo pipefail
cd "$(dirname "$0")"
R=runs/gccmask B=../data/rirbank P=../data/pools
mkdir -p $R
for s in 21 22; do
  [ -f $R/train$s.npz ] || python3 -m tded_train.gccmask data --bank $B/train.npz --speech $P/train_speech_real.npz \
      --music $P/train_music.npz --noise $P/train_noise.npz --n 30000 --seed $s --out $R/train$s.npz &
done
[ -f $R/val.npz ] || python3 -m tded_train.gccmask data --val --bank $B/val.npz --n 4000 --seed 777 \
    --speech $P/val_speech.npz --music $P/val_music.npz --noise $P/val_noise.npz --out $R/val.npz
wait
python3 -m tded_train.gccmask train --data $R/train21.npz $R/train22.npz --val $R/val.npz --out $R --epochs 10 "$@"
python3 -m tded_train.gccmask export $R/best.pt ../models/tded-gccmask-v1.safetensors
python3 -m tded_train.gccmask fixture ../models/tded-gccmask-v1.safetensors ../Tests/EngineTests/Fixtures/gccmask_fixture.safetensors

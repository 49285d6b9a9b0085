#!/usr/bin/env bash
# Real-data run of the Rainio 2023 slice methods (results in README.md next to this file).
# Usage: bash experiments/slices_sts/run.sh WORKDIR   (WORKDIR receives the large outputs)
set -euo pipefail
WORK=${1:?give a work folder}
DATA="$(cd "$(dirname "$0")/../../.." && pwd)/shared/data/sts-pet"
mkdir -p "$WORK"
# 34 real sarcoma FDG-PET studies, physician GTVs (RTSTRUCT), native pixels in a 64 px box
petseg slices build "$DATA" --out "$WORK/sts_slices.npz" --crop bbox:64 --size 64
petseg slices experiment "$WORK/sts_slices.npz" --out "$WORK/sts_out" --folds 6 --seed 0 --threads 1
# Phantom: 12 synthetic whole-body patients (4 mm), 128 px box downscaled 2x2 to 64 px
petseg phantom --out "$WORK/phantom" --n 12 --seed 7 --no-progress
petseg slices build "$WORK/phantom" --out "$WORK/phantom_slices.npz" --crop bbox:128 --size 64
petseg slices experiment "$WORK/phantom_slices.npz" --out "$WORK/phantom_out" --folds 6 --seed 0 --threads 1

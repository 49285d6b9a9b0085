#!/usr/bin/env bash
# NOT RUN YET: no GPU was lent to this work (docs/network.md, "GPU path").
#
# Proves the GPU path of both engines within about 8 minutes of GPU time (after ~3 min
# of phantom generation on the CPUs) and measures
#   - built-in engine: training iterations/s (from the folds' log.jsonl) and whole-body
#     inference time per study (petseg predict --device cuda, 5-fold ensemble);
#   - nnU-Net engine: training iterations/s (wall time / iterations of one fold) and
#     inference time per study (petseg predict --engine nnunet --device cuda).
# The built-in model it trains (fine-tuned from the shipped one, the recipe of
# docs/network.md, 64³ patches) is evaluated on the held-out phantom cohort, so it can
# replace src/petseg/data/demo_model if it is better (scripts/train_demo_model.py packs it).
#
# Usage (repository root, on the GPU machine):
#   WHEELS=/path/to/wheels OUT=gpu-run bash experiments/nn_recipe/gpu.sh
# WHEELS: optional folder of wheels for what the machine lacks (e.g. built here with
#   pip wheel -w wheels -c constraints.txt ".[nnunet]"); the machine has no network.
set -euo pipefail
OUT=${OUT:-gpu-run}
mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ]; then
  python -m pip install --no-index --find-links "$WHEELS" -c constraints.txt -e ".[nnunet]"
fi
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
export PYTHONPATH=$PWD/src:${PYTHONPATH:-}
T=experiments/nn_recipe/train_cohort.py
# 0. the training and held-out phantom cohorts, generated side by side (CPU, ~3 min)
for part in train:TRAIN heldout:HELD_OUT; do
  python -c "import sys; sys.path.insert(0, 'experiments/nn_recipe'); from pathlib import Path; import train_cohort as t; t.cohort(Path('$OUT') / '${part%%:*}', t.${part##*:})" &
done
wait
until=$(date -u -d '+5 min' +%H:%M)

# 1. built-in engine: 5 folds in turns for 5 minutes, then held-out evaluation
python "$T" train --work "$OUT" --until "$until" --device cuda --patch 64 \
  --epochs 40 --iterations 50 --val-patches 16 \
  --recipe '{"foreground_sampling": "lesion", "init_from": "src/petseg/data/demo_model", "warmup_iterations": 50, "schedule": "cosine"}' \
  | tee "$OUT/train_builtin.log"
python - "$OUT" <<'PY'
import sys
sys.path.insert(0, "experiments/nn_recipe")
from pathlib import Path
from train_cohort import logged
done = logged(Path(sys.argv[1]) / "model")
rate = done["iterations"] / (done["wall_hours"] * 3600)
print(f"built-in training: {done['iterations']} iterations, {rate:.2f} it/s (validation included)")
PY
start=$(date +%s.%N)
petseg predict "$OUT/heldout/phantom_0000" --model "$OUT/model" --out "$OUT/pred_builtin" --device cuda --force
echo "built-in 5-fold inference, one whole-body study: $(echo "$(date +%s.%N) - $start" | bc) s (start-up included)"
python "$T" evaluate --work "$OUT" --name gpu | tee "$OUT/heldout_gpu.txt"

# 2. nnU-Net engine: one fold, 2 epochs x 50 iterations, then inference on one study
start=$(date +%s.%N)
petseg train "$OUT/train" --out "$OUT/nnunet" --engine nnunet --device cuda --fold 0 \
  --epochs 2 --iterations 50 --force
echo "nnU-Net training: 100 iterations in $(echo "$(date +%s.%N) - $start" | bc) s (planning and preprocessing included)"
start=$(date +%s.%N)
petseg predict "$OUT/heldout/phantom_0000" --model "$OUT/nnunet" --engine nnunet --folds 0 \
  --out "$OUT/pred_nnunet" --device cuda --force
echo "nnU-Net inference, one fold, one whole-body study: $(echo "$(date +%s.%N) - $start" | bc) s"

"""Reproduce the shipped demonstration model ``src/petseg/data/demo_model/``.

SYNTHETIC TRAINING DATA, DEMONSTRATION ONLY. Generates a phantom training cohort and a
separate held-out phantom test cohort, trains the ``cpu-small`` plan with 5 folds on CPU,
measures the folds and the ensemble on the test cohort, and writes the model folder
(plan.json, folds.json, training.json, fold_<k>/model.pt in float16, per-fold log and
curve) with a MODEL_CARD.md.

Run: ``python scripts/train_demo_model.py [--work DIR] [--epochs E] [--iterations I]``
(defaults are the settings of the shipped model; the run is CPU-only and deterministic).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments" / "nn_phantom"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("demo-model-work"))
    parser.add_argument("--train-cases", type=int, default=8)
    parser.add_argument("--train-negatives", type=int, default=2)
    parser.add_argument("--test-cases", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--dest", type=Path, default=ROOT / "src" / "petseg" / "data" / "demo_model"
    )
    args = parser.parse_args()

    import torch
    from common import evaluate, table

    from petseg.nn.train import TrainConfig, train
    from petseg.phantom import write_dataset

    torch.set_num_threads(args.threads)
    work = args.work
    train_set = work / "train"
    test_set = work / "test"
    if not train_set.exists():
        write_dataset(
            train_set, n=args.train_cases, seed=2022, negatives=args.train_negatives, progress=False
        )
    if not test_set.exists():
        write_dataset(test_set, n=args.test_cases, seed=4041, negatives=1, progress=False)
    config = TrainConfig(
        epochs=args.epochs, iterations_per_epoch=args.iterations, device="cpu", threads=args.threads
    )
    t0 = time.perf_counter()
    model = work / "model"
    todo = [f for f in range(5) if not (model / f"fold_{f}" / "model.pt").exists()]
    if todo:
        train(train_set, model, n_folds=5, folds=todo, budget="cpu-small", config=config)
    train_seconds = time.perf_counter() - t0
    result = evaluate(test_set, model)
    (work / "test_metrics.json").write_text(json.dumps(result, indent=2, default=float))
    dest = args.dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("plan.json", "folds.json", "training.json"):
        shutil.copy(model / name, dest / name)
    for f in range(5):
        (dest / f"fold_{f}").mkdir()
        for name in ("model.pt", "log.jsonl"):
            shutil.copy(model / f"fold_{f}" / name, dest / f"fold_{f}" / name)
    card = f"""# petseg demonstration network — SYNTHETIC TRAINING DATA, DEMONSTRATION ONLY

This model was trained on **synthetic phantoms** (`petseg.phantom`), never on patient
images. It shows the AI path of petseg (`petseg predict`, `petseg demo`) without
training; it is **not** a clinical model and must not be used on patient data.

- Made by: `python scripts/train_demo_model.py --epochs {args.epochs} --iterations {args.iterations} --threads {args.threads}`
  (petseg `train` with the `cpu-small` budget: DynUNet, 4 stages, 8–64 filters,
  4 mm grid; 5 patient-level folds; SGD 0.01 poly; Dice + CE; batch 2).
- Training data: phantom cohort seed 2022, {args.train_cases} patients with lesions +
  {args.train_negatives} negative controls, 4 mm voxels.
- Training: {args.epochs} epochs × {args.iterations} iterations per fold on a shared 2-core CPU,
  {train_seconds / 60:.1f} min for the folds trained in this run (nnU-Net trains 1000 × 250).
- Held-out test: phantom cohort seed 4041 ({args.test_cases} patients + 1 negative control),
  mean (SD) over lesion cases; each fold, the ensemble (mean of fold probabilities) and
  the liver-threshold method on the same cases:

{table(result["summary"])}

Check the table before shipping: a model trained for a few iterations over-segments.

Weights are float16 (cast back to float32 on loading).
"""
    (dest / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())

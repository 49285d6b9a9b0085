"""Reproduce the shipped demonstration model ``src/petseg/data/demo_model/``.

SYNTHETIC TRAINING DATA, DEMONSTRATION ONLY. Runs the phantom network experiment
(``experiments/nn_phantom/run_experiment.py``: 40 + 4 training phantoms, 5 folds, a
separate 10 + 5 test cohort; resumable) and packages its model — plan.json, folds.json,
training.json, fold_<k>/model.pt in float16, per-fold log — with a MODEL_CARD.md that
carries the experiment's test table.

Run: ``python scripts/train_demo_model.py [--work DIR] [--epochs E] [--iterations I]``
(defaults are the settings of the shipped model).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments" / "nn_phantom"))


def main() -> int:
    from common import table
    from run_experiment import Settings, run_experiment

    d = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("demo-model-work"))
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--iterations", type=int, default=d.iterations)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument(
        "--dest", type=Path, default=ROOT / "src" / "petseg" / "data" / "demo_model"
    )
    args = parser.parse_args()

    settings = Settings(
        epochs=args.epochs, iterations=args.iterations, threads=args.threads, device="cpu"
    )
    result = run_experiment(args.work, settings)
    model = args.work / "model"
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
    s = settings
    minutes = result["seconds"]["train_logged"] / 60
    card = f"""# petseg demonstration network — SYNTHETIC TRAINING DATA, DEMONSTRATION ONLY

This model was trained on **synthetic phantoms** (`petseg.phantom`), never on patient
images. It shows the AI path of petseg (`petseg predict`, `petseg demo --ai`) without
training; it is **not** a clinical model and must not be used on patient data.

- Made by: `python scripts/train_demo_model.py --epochs {s.epochs} --iterations {s.iterations} --threads {s.threads}`
  (the phantom experiment of `experiments/nn_phantom/`; petseg `train` with the
  `{s.budget}` budget: DynUNet, 4 stages, 8–64 filters, 4 mm grid; 5 patient-level folds;
  {s.optimizer} with poly decay; Dice (lesion channel) + CE; batch 2).
- Settings: {asdict(s)}
- Training data: phantom cohort seed 1, {s.cases} patients with lesions +
  {s.negatives} negative controls, 4 mm voxels.
- Training: {s.epochs} epochs × {s.iterations} iterations per fold on 2 CPU cores,
  {minutes:.1f} min for the 5 folds (nnU-Net trains 1000 × 250 per fold on a GPU).
- Held-out test: phantom cohort seed 2 ({s.test_cases} patients + {s.test_negatives}
  negative controls), mean (SD) over lesion cases; each fold, the ensemble (mean of
  fold probabilities) and the liver-threshold method on the same cases:

{table(result["summary"])}

`liver_threshold` is the automatic part of the semi-automatic method (every component
above 1.5 × SUVmean + 2 × SD of the liver), before a physician removes physiological
uptake; see `experiments/nn_phantom/README.md` for how to read the table.

Weights are float16 (cast back to float32 on loading).
"""
    (dest / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce the shipped demonstration model ``src/petseg/data/demo_model/``.

SYNTHETIC TRAINING DATA, DEMONSTRATION ONLY. LONG (about an hour on 2 CPU cores), not run
in CI; resumable (run the same command again). Every step is a library call:

1. cohorts: :func:`petseg.phantom.write_dataset`, training seed 1 (40 patients + 4 negative
   controls), held-out test seed 2 (10 + 5);
2. training: the built-in engine (:class:`petseg.nn.engine.BuiltinEngine`), 5 folds;
3. held-out evaluation: :func:`petseg.engine.predict_dataset` for each fold and for the
   ensemble, the liver-threshold method (:func:`petseg.workflows.segment_to_folder`, the
   phantom's liver reference sphere), then :func:`petseg.evaluate.evaluate_cohort`
   (``WORK/evaluation/``: per-case rows, summary, report);
4. packaging into ``--dest``: plan.json, folds.json, training.json, fold_<k>/model.pt in
   float16 and its log, and a MODEL_CARD.md carrying the test table.

Run: ``python scripts/train_demo_model.py --work WORK [--epochs E] [--iterations I]
[--no-package]`` (defaults are the settings of the shipped model).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SEED = 1
TEST_SEED = 2


@dataclass(frozen=True)
class Settings:
    """What is trained and tested; recorded in the model card."""

    cases: int = 40
    negatives: int = 4
    test_cases: int = 10
    test_negatives: int = 5
    epochs: int = 24
    iterations: int = 25
    optimizer: str = "adamw"
    budget: str = "cpu-small"
    threads: int = 2


def train_and_evaluate(work: Path, s: Settings) -> dict[str, Any]:
    """Cohorts (once), the missing folds, predictions and the evaluation report."""
    from petseg.engine import get_engine, predict_dataset
    from petseg.evaluate import evaluate_cohort
    from petseg.nn.engine import BuiltinTraining
    from petseg.nn.train import TrainConfig
    from petseg.phantom import write_dataset

    train, test, model = work / "train", work / "test", work / "model"
    if not train.exists():
        write_dataset(train, n=s.cases, seed=TRAIN_SEED, negatives=s.negatives)
    if not test.exists():
        write_dataset(test, n=s.test_cases, seed=TEST_SEED, negatives=s.test_negatives)
    engine = get_engine("builtin")
    todo = [f for f in range(5) if not (model / f"fold_{f}" / "model.pt").exists()]
    if todo:
        config = TrainConfig(
            epochs=s.epochs,
            iterations_per_epoch=s.iterations,
            optimizer=s.optimizer,
            threads=s.threads,
            device="cpu",
        )
        engine.train(train, model, BuiltinTraining(s.budget, config), folds=todo)
    predictions = {}
    for name, folds in [(f"fold_{f}", str(f)) for f in range(5)] + [("ensemble", "all")]:
        predictions[name] = work / "predictions" / name
        if not predictions[name].exists():
            predict_dataset(engine, test, model, predictions[name], folds=folds)
    predictions["liver_threshold"] = _liver_threshold(test, work / "predictions" / "liver")
    return evaluate_cohort(predictions, test, work / "evaluation", force=True)


def _liver_threshold(test: Path, out: Path) -> Path:
    """The liver-threshold method on every test case, reference sphere from truth.json."""
    from petseg.io import load_study
    from petseg.io.dataset import list_cases
    from petseg.pipeline import SegmentParams
    from petseg.workflows import segment_to_folder

    for case in list_cases(test, labelled=True):
        if (out / case).exists():
            continue
        liver = json.loads((test / case / "truth.json").read_text())["reference"]["liver"]
        params = SegmentParams(method="liver", ref_sphere=(*liver["centre_mm"], liver["radius_mm"]))
        segment_to_folder(load_study(test / case), params, out / case, rtstruct=False)
    return out


def _cell(mean: float | None, sd: float | None) -> str:
    """``mean (SD)``; the report writes undefined values (one case, no case) as null."""
    if mean is None:
        return "–"
    return f"{mean:.3f}" if sd is None else f"{mean:.3f} ({sd:.3f})"


def table(summary: dict[str, Any]) -> str:
    """Markdown: mean (SD) over the lesion cases per model (Carlsen Table 3 layout), then
    the negative controls."""
    from petseg.metrics import CASE_METRICS

    models = summary["models"]
    lines = ["| metric | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for metric, _, _ in CASE_METRICS[:6]:  # pixel- and lesion-wise Dice, precision, sensitivity
        cells = [summary["metrics"][metric][m] for m in models]
        lines.append(f"| {metric} | " + " | ".join(_cell(c["mean"], c["sd"]) for c in cells) + " |")
    negatives = summary["negative_controls"]
    lines.append("")
    lines.append(
        "Negative controls, median segmented volume (mL): "
        + ", ".join(f"{m} {negatives[m]['median_volume_ml']:.2f}" for m in models)
    )
    return "\n".join(lines)


def package(work: Path, dest: Path, s: Settings, summary: dict[str, Any]) -> str:
    """Copy the model into ``dest`` with its card; return the card."""
    model = work / "model"
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
images. It shows the AI path of petseg (`petseg predict`, `petseg demo --ai`) without
training; it is **not** a clinical model and must not be used on patient data.

- Made by: `python scripts/train_demo_model.py --epochs {s.epochs} --iterations {s.iterations} --threads {s.threads}`
  (petseg's built-in engine with the `{s.budget}` budget; 5 patient-level folds;
  {s.optimizer} with poly decay).
- Settings: {asdict(s)}
- Training data: phantom cohort seed {TRAIN_SEED}, {s.cases} patients with lesions +
  {s.negatives} negative controls, 4 mm voxels.
- Held-out test: phantom cohort seed {TEST_SEED} ({s.test_cases} patients + {s.test_negatives}
  negative controls), mean (SD) over lesion cases (petseg evaluate); each fold, the ensemble
  (mean of fold probabilities) and the liver-threshold method on the same cases:

{table(summary)}

`liver_threshold` is the automatic part of the semi-automatic method (every component
above 1.5 × SUVmean + 2 × SD of the liver), before a physician removes physiological
uptake; see `experiments/nn_phantom/README.md` for how to read the table.

Weights are float16 (cast back to float32 on loading).
"""
    (dest / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return card


def main() -> int:
    d = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("demo-model-work"))
    for name, value in asdict(d).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument(
        "--dest", type=Path, default=ROOT / "src" / "petseg" / "data" / "demo_model"
    )
    parser.add_argument("--no-package", action="store_true", help="train and evaluate only")
    args = vars(parser.parse_args())
    work, dest, no_package = args.pop("work"), args.pop("dest"), args.pop("no_package")
    settings = Settings(**args)
    summary = train_and_evaluate(work, settings)
    print(table(summary) if no_package else package(work, dest, settings, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

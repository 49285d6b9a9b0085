"""LONG EXPERIMENT — NOT RUN IN CI. Train the shipped network on a larger phantom cohort
and test it on a held-out one.

``train``: generates (once) the training cohort — phantom seed 11, 60 patients with
lesions + 8 negative controls — plans the ``cpu-small`` network at the chosen patch,
writes the model folder's plan and trains the 5 folds one epoch each in turn until
``--until`` (UTC), keeping every fold's best weights (resumable: run the same command
again). ``evaluate`` (resumable, case by case): generates (once) the held-out cohort — seed 12, 20 patients + 10
negative controls, seeds the training never saw — and evaluates each fold of a model
(default the trained one; ``--model`` e.g. the shipped one), their ensemble and the
liver-threshold method on it (``experiments/nn_phantom/common.py``).

Run::

    python experiments/nn_recipe/train_cohort.py train --work WORK --until 17:20 \
        --epochs 40 --iterations 20 --patch 32 [--recipe '{"foreground_sampling": "lesion"}']
    python experiments/nn_recipe/train_cohort.py evaluate --work WORK [--part 0/2]
    python experiments/nn_recipe/train_cohort.py evaluate --work WORK \
        --model src/petseg/data/demo_model --name shipped
    python experiments/nn_recipe/train_cohort.py summarise --work WORK --names new,shipped
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments" / "nn_phantom"))

TRAIN = {"seed": 11, "n": 60, "negatives": 8}
HELD_OUT = {"seed": 12, "n": 20, "negatives": 10}


def cohort(path: Path, spec: dict[str, int]) -> Path:
    """The phantom cohort at ``path``, generated first if missing."""
    from petseg.phantom import write_dataset

    if not path.exists():
        write_dataset(path, n=spec["n"], seed=spec["seed"], negatives=spec["negatives"])
    return path


def deadline(until: str) -> dt.datetime:
    """Today's ``HH:MM`` in UTC."""
    hours, minutes = (int(x) for x in until.split(":"))
    now = dt.datetime.now(dt.timezone.utc)
    return now.replace(hour=hours, minute=minutes, second=0, microsecond=0)


def plan_with_patch(dataset: Path, model: Path, patch: int, init_from: str | None) -> None:
    """Plan the model folder (cpu-small) and set its training patch to ``patch``³.

    With ``init_from`` (fine-tuning) the plan is that model's, so that the network and
    its input normalisation are the ones its weights were trained with.
    """
    from petseg import __version__
    from petseg.io.atomic import claim_dir, write_json_atomic
    from petseg.nn.plan import Plan
    from petseg.nn.train import load_cases, plan_model_folder

    if init_from is not None and not (model / "plan.json").exists():
        claim_dir(model, kind="model", inputs=[dataset], recognise=("plan.json",))
        source = json.loads((Path(init_from) / "plan.json").read_text())
        record = {"petseg_version": __version__, **Plan.from_dict(source).to_dict()}
        write_json_atomic(model / "plan.json", record)
    plan, _ = plan_model_folder(dataset, model, load_cases(dataset), n_folds=5)
    if plan.patch_size != (patch,) * 3:
        plan = dataclasses.replace(plan, patch_size=(patch,) * 3)
        record = {"petseg_version": __version__, **plan.to_dict()}
        write_json_atomic(model / "plan.json", record, force=True)


def run_train(args: argparse.Namespace) -> None:
    import torch

    from petseg.nn.train import TrainConfig, train

    torch.set_num_threads(1)
    dataset = cohort(args.work / "train", TRAIN)
    model = args.work / "model"
    recipe = json.loads(args.recipe)
    plan_with_patch(dataset, model, args.patch, recipe.get("init_from"))
    config = TrainConfig(
        epochs=args.epochs,
        iterations_per_epoch=args.iterations,
        val_patches=args.val_patches,
        device=args.device,
        threads=1,
        **recipe,
    )
    t0 = time.perf_counter()
    results = train(dataset, model, config=config, deadline=deadline(args.until))
    for r in results:
        print(
            f"fold {r.fold}: {r.epochs_done} epochs, best epoch {r.best_epoch} "
            f"(smoothed val Dice {r.best_val_dice:.3f}), last val Dice {r.final_val_dice:.3f}",
            flush=True,
        )
    print(f"this run: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)


def logged(model: Path) -> dict[str, Any]:
    """Iterations and wall-clock hours summed over the folds' logs (one thread each)."""
    seconds = 0.0
    iterations = 0
    for log in sorted(model.glob("fold_*/log.jsonl")):
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        seconds += sum(r["seconds"] for r in rows)
        iterations += rows[-1]["iterations"] if rows else 0
    return {"wall_hours": seconds / 3600, "iterations": iterations}


def interleaved(dataset: Path) -> Path:
    """The cohort's dataset.json with lesion cases and controls alternating.

    An evaluation stopped part-way then covers both kinds of case.
    """
    info = json.loads((dataset / "dataset.json").read_text())
    negatives = [c for c in info["cases"] if c in info["negative_controls"]]
    positives = [c for c in info["cases"] if c not in negatives]
    order = [c for pair in zip_longest(positives, negatives) for c in pair if c is not None]
    if info["cases"] != order:
        info["cases"] = order
        (dataset / "dataset.json").write_text(json.dumps(info, indent=1))
    return dataset


def run_evaluate(args: argparse.Namespace) -> None:
    """Evaluate a model on the held-out cohort, resumable; ``--part i/n`` takes every n-th case."""
    from common import evaluate

    from petseg.io.dataset import list_cases

    test = interleaved(cohort(args.work / "heldout", HELD_OUT))
    index, parts = (int(x) for x in args.part.split("/"))
    mine = list_cases(test, labelled=True)[index::parts]
    model = args.model or args.work / "model"
    rows_path = args.work / f"heldout_{args.name}_cases_{index}of{parts}.json"
    rows = json.loads(rows_path.read_text()) if rows_path.exists() else []

    def save(row: dict[str, Any]) -> None:
        rows.append(row)
        rows_path.write_text(json.dumps(rows, indent=1, default=float))

    evaluate(test, model, done=list(rows), on_row=save, cases=mine)


def run_summarise(args: argparse.Namespace) -> None:
    """Tables of the named evaluations on the held-out cases all of them have done."""
    from common import summarise, table

    rows = {
        name: [
            r
            for f in sorted(args.work.glob(f"heldout_{name}_cases_*.json"))
            for r in json.loads(f.read_text())
        ]
        for name in args.names.split(",")
    }
    common = set.intersection(*({r["case"] for r in v} for v in rows.values()))
    out: dict[str, Any] = {
        "cohorts": {"train": TRAIN, "held_out": HELD_OUT},
        "cases": sorted(common),
    }
    text = [
        f"Held-out cases evaluated by every model: {len(common)} "
        f"({sum(c.startswith('control') for c in common)} negative controls)\n"
    ]
    for name, model_rows in rows.items():
        mine = [r for r in model_rows if r["case"] in common]
        out[name] = {"summary": summarise(mine), "rows": mine}
        text.append(f"## {name}\n\n{table(out[name]['summary'])}\n")
    out["training_logged"] = logged(args.work / "model")
    text.append(f"Training of WORK/model (sum over folds' logs): {out['training_logged']}\n")
    (args.work / "heldout_summary.json").write_text(json.dumps(out, indent=1, default=float))
    (args.work / "heldout_summary.md").write_text("\n".join(text))
    print("\n".join(text))


def run_validation(args: argparse.Namespace) -> None:
    """Dice of WORK/model's folds and of ``--model``'s folds on each fold's validation patches.

    The patches are the ones training validated on (fold seed, lesion-centred half), so
    the trained model's figure is optimistic (its best epoch was chosen on them); for
    ``--model`` (e.g. the shipped one, which never saw this cohort) they are unseen.
    """
    import torch

    from petseg.nn.data import label_lesions, preprocess, validation_patches
    from petseg.nn.model import build_model
    from petseg.nn.plan import Plan
    from petseg.nn.train import load_cases

    torch.set_num_threads(1)
    work_model = args.work / "model"
    plan = Plan.from_dict(json.loads((work_model / "plan.json").read_text()))
    split = json.loads((work_model / "folds.json").read_text())
    config = json.loads((work_model / "training.json").read_text())["config"]
    cases = {c.case_id: c for c in load_cases(args.work / "train")}
    table = {}
    for entry in split["folds"]:
        fold = entry["fold"]
        val = []
        for case_id in entry["val"]:
            case = cases[case_id]
            image, label = preprocess(case.image, case.geometry.spacing, plan, case.label)
            val.append((image, label_lesions(label)))
        images, labels = validation_patches(val, plan, config["val_patches"], config["seed"] + fold)
        row = {}
        for name, folder in (("trained", work_model), ("other", args.model)):
            net = build_model(plan)
            weights = torch.load(folder / f"fold_{fold}" / "model.pt", weights_only=True)
            net.load_state_dict({k: v.float() for k, v in weights["state_dict"].items()})
            net.eval()
            with torch.no_grad():
                pred = np.concatenate(
                    [
                        net(torch.from_numpy(images[i : i + 2])).argmax(1).numpy() == 1
                        for i in range(0, len(images), 2)
                    ]
                )
            truth = labels[:, 0] == 1
            row[name] = float(2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1))
        table[fold] = row
        print(
            f"fold {fold}: trained {row['trained']:.3f}, {args.model}: {row['other']:.3f}",
            flush=True,
        )
    (args.work / "validation_patches.json").write_text(json.dumps(table, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--work", type=Path, required=True)
    tr.add_argument("--until", required=True, help="HH:MM UTC")
    tr.add_argument("--epochs", type=int, default=40)
    tr.add_argument("--iterations", type=int, default=20)
    tr.add_argument("--val-patches", type=int, default=12)
    tr.add_argument("--patch", type=int, default=32)
    tr.add_argument("--recipe", default="{}", help="TrainConfig changes as JSON")
    tr.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ev = sub.add_parser("evaluate")
    ev.add_argument("--work", type=Path, required=True)
    ev.add_argument("--model", type=Path, help="default WORK/model")
    ev.add_argument("--name", default="new", help="names WORK/heldout_<name>_cases_*.json")
    ev.add_argument("--part", default="0/1", help="i/n: every n-th case from the i-th")
    su = sub.add_parser("summarise")
    su.add_argument("--work", type=Path, required=True)
    su.add_argument("--names", default="new,shipped")
    va = sub.add_parser("validation")
    va.add_argument("--work", type=Path, required=True)
    va.add_argument("--model", type=Path, required=True, help="the model to compare with")
    args = parser.parse_args()
    commands = {
        "train": run_train,
        "evaluate": run_evaluate,
        "summarise": run_summarise,
        "validation": run_validation,
    }
    commands[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

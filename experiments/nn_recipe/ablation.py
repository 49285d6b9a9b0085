"""LONG EXPERIMENT — NOT RUN IN CI. One-change-at-a-time ablation of the training recipe.

Trains one fold (default fold 3 of the seed-1 phantom cohort's 5-fold split, the fold
that learnt almost nothing in the shipped model) for a fixed small budget per variant,
each variant differing from the baseline (the recipe of the shipped model, at a 32³
patch) in one setting, all with the same seed. Reports the validation Dice (fixed
validation patches, half of them centred on a randomly chosen lesion) at the end of the
budget, its best value and the soft Dice of the final weights. Single seed, tiny budget:
a screening, not a verdict.

Resumable (run the same command again). Writes ``WORK/results.json`` and prints a
markdown table.

Run: ``python experiments/nn_recipe/ablation.py --dataset SEED1 --work WORK
[--epochs 6 --iterations 25 --fold 3 --variants baseline,lesion_sampling,...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: The shipped model's recipe, pinned so that later changes of the defaults do not move it.
BASELINE: dict[str, Any] = {
    "foreground_sampling": "voxel",
    "deep_supervision": False,
    "warmup_iterations": 0,
    "schedule": "poly",
    "dice_weight": 1.0,
    "ce_weight": 1.0,
}
#: name → (TrainConfig changes to the baseline, plan changes); the baseline changes nothing.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "baseline": ({}, {}),
    "lesion_sampling": ({"foreground_sampling": "lesion"}, {}),
    "deep_supervision": ({"deep_supervision": True}, {}),
    "warmup_cosine": ({"warmup_iterations": 25, "schedule": "cosine"}, {}),
    "dice2_ce1": ({"dice_weight": 2.0}, {}),
    "pet_image_zscore": ({}, {"pet": "image_zscore"}),
    "patch_48": ({}, {"patch": 48}),
    "deep_supervision_lesion_sampling": (
        {"deep_supervision": True, "foreground_sampling": "lesion"},
        {},
    ),
}


def base_plan(dataset: Path, work: Path, n_folds: int) -> tuple[Any, dict[str, Any], list[Any]]:
    """The cpu-small plan of the dataset at a 32³ patch, its split and cases."""
    from petseg.nn.train import load_cases, plan_model_folder

    cases = load_cases(dataset)
    plan, split = plan_model_folder(dataset, work / "plan", cases, n_folds=n_folds)
    return dataclasses.replace(plan, patch_size=(32, 32, 32)), split, cases


def variant_plan(plan: Any, change: dict[str, Any]) -> Any:
    if "patch" in change:
        plan = dataclasses.replace(plan, patch_size=(change["patch"],) * 3)
    if "pet" in change:
        norms = tuple(
            dataclasses.replace(n, scheme=change["pet"]) if n.channel == "pet" else n
            for n in plan.normalisation
        )
        plan = dataclasses.replace(plan, normalisation=norms)
    return plan


def soft_dice(
    folder: Path, plan: Any, config: Any, images: np.ndarray, labels: np.ndarray
) -> float:
    """Soft Dice (lesion probability) of a fold's last checkpoint on the validation patches."""
    import torch

    from petseg.nn.model import build_model

    net = build_model(plan, deep_supervision=config.deep_supervision)
    net.load_state_dict(torch.load(folder / "checkpoint.pt", weights_only=True)["model"])
    net.eval()
    with torch.no_grad():
        probs = [
            torch.softmax(net(torch.from_numpy(images[i : i + 2])), 1)[:, 1].numpy()
            for i in range(0, len(images), 2)
        ]
    p = np.concatenate(probs)
    y = labels[:, 0].astype(np.float32)
    return float(2 * (p * y).sum() / (p.sum() + y.sum()))


def run_variant(
    name: str, args: argparse.Namespace, plan: Any, split: Any, cases: Any
) -> dict[str, Any]:
    from petseg.nn.data import label_lesions, preprocess, validation_patches
    from petseg.nn.train import TrainConfig, train_fold

    config_change, plan_change = VARIANTS[name]
    config = TrainConfig(
        epochs=args.epochs,
        iterations_per_epoch=args.iterations,
        val_patches=args.val_patches,
        device="cpu",
        threads=1,
        seed=args.seed,
        **(BASELINE | config_change),
    )
    vplan = variant_plan(plan, plan_change)
    out = args.work / name
    t0 = time.perf_counter()
    result = train_fold(cases, vplan, split, args.fold, out, config, progress=False)
    log = [
        json.loads(line)
        for line in (out / f"fold_{args.fold}" / "log.jsonl").read_text().splitlines()
    ]
    by_id = {c.case_id: c for c in cases}
    entry = next(f for f in split["folds"] if f["fold"] == args.fold)
    val = []
    for c in entry["val"]:
        image, label = preprocess(by_id[c].image, by_id[c].geometry.spacing, vplan, by_id[c].label)
        val.append((image, label_lesions(label)))
    images, labels = validation_patches(val, vplan, config.val_patches, config.seed + args.fold)
    return {
        "variant": name,
        "config_change": config_change,
        "plan_change": plan_change,
        "iterations": config.total_iterations,
        "val_dice_final": result.final_val_dice,
        "val_dice_best": max(r["val_dice"] for r in log),
        "val_dice_per_epoch": [round(r["val_dice"], 4) for r in log],
        "soft_dice_final": soft_dice(out / f"fold_{args.fold}", vplan, config, images, labels),
        "train_loss_final": result.final_loss,
        "seconds_logged": sum(r["seconds"] for r in log),
        "seconds_this_run": time.perf_counter() - t0,
    }


def markdown(results: dict[str, dict[str, Any]]) -> str:
    """Validation Dice per epoch, Δ against the baseline, soft Dice and minutes per variant."""
    base = results["baseline"]["val_dice_final"] if "baseline" in results else float("nan")
    lines = [
        "| variant | validation Dice per epoch | Δ Dice at the end | soft Dice | minutes |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        per_epoch = " / ".join(f"{x:.3f}" for x in r["val_dice_per_epoch"])
        delta = "–" if name == "baseline" else f"{r['val_dice_final'] - base:+.3f}"
        lines.append(
            f"| {name} | {per_epoch} | {delta} | {r['soft_dice_final']:.3f} "
            f"| {r['seconds_logged'] / 60:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--val-patches", type=int, default=12)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=12345, help="weights and patch draws")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    plan, split, cases = base_plan(args.dataset, args.work, 5)
    path = args.work / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.variants.split(","):
        if name not in results:
            results[name] = run_variant(name, args, plan, split, cases)
            path.write_text(json.dumps(results, indent=1))
        r = results[name]
        print(
            f"{name}: val Dice {r['val_dice_final']:.3f} (best {r['val_dice_best']:.3f}), "
            f"soft Dice {r['soft_dice_final']:.3f}, {r['seconds_logged']:.0f} s",
            flush=True,
        )
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

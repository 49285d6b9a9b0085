"""Built-in 3D network vs nnU-Net v2 on the same phantom cohort, same folds, same budget.

NOT RUN IN CI (minutes to hours). Needs nnU-Net: ``pip install 'petseg[nnunet]'``.

Both engines train every fold of petseg's patient-level split (petseg.nn.folds, seed
12345) for ``--epochs`` × ``--iterations`` training iterations of batch 2, then predict each
case with the fold that did not see it (cross-validation), post-process it the same way
(petseg: body contour, components < 0.1 mL) and are scored by ``petseg.evaluate``. Reported:
pixel- and lesion-wise metrics side by side, wall time per training iteration (the fold's
whole training time divided by its iterations, so per-epoch validation and start-up are
included), and inference time per study (one fold, whole call).

The cohort is ``--cases`` phantoms plus ``--negatives`` negative controls. ``--grid small``
(default) crops them to chest/abdomen at 10 mm (32×30×48 voxels) so a CPU run finishes;
``--grid wholebody`` uses the phantom's 4 mm whole body (use a GPU: ``--device cuda``).

Run: ``python experiments/nnunet_vs_builtin/compare.py --out OUT [--epochs 4 --iterations 15]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

GRIDS = ("small", "wholebody")
METRICS = (
    "pixel_dice",
    "pixel_precision",
    "pixel_sensitivity",
    "lesion_dice_f1",
    "lesion_sensitivity",
    "lesion_precision",
    "fp_volume_ml",
    "fn_volume_ml",
)


def _inference_seconds(folder: Path) -> list[float]:
    return [
        float(json.loads(p.read_text())["model"]["inference_seconds"])
        for p in sorted(folder.glob("*/report.json"))
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from petseg.engine import get_engine, predict_dataset
    from petseg.evaluate import evaluate_cohort
    from petseg.nn.train import TrainConfig, resolve_device, train
    from petseg.nnunet.training import NnunetTraining, TrainBudget, train_nnunet
    from petseg.phantom import PhantomConfig, write_dataset

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=args.force)
    config = (
        PhantomConfig(axial_range_mm=(380.0, 700.0), transaxial_fov_mm=(300.0, 480.0))
        if args.grid == "small"
        else PhantomConfig()
    )
    spacing = (10.0, 10.0, 10.0) if args.grid == "small" else (4.0, 4.0, 4.0)
    dataset = write_dataset(
        out / "dataset",
        n=args.cases,
        seed=args.seed,
        negatives=args.negatives,
        spacing=spacing,
        config=config,
        force=args.force,
        progress=False,
    )
    iterations = args.epochs * args.iterations
    figures: dict[str, Any] = {"device": device, "threads": args.threads, "grid": args.grid}

    t0 = time.perf_counter()
    builtin = train(
        dataset,
        out / "builtin",
        n_folds=args.folds,
        budget="cpu-small",
        config=TrainConfig(epochs=args.epochs, iterations_per_epoch=args.iterations, device=device),
        force=args.force,
        progress=False,
    )
    figures["builtin_train_s"] = time.perf_counter() - t0
    figures["builtin_s_per_iteration"] = float(np.mean([r.seconds for r in builtin])) / iterations
    predict_dataset(
        get_engine("builtin"),
        dataset,
        out / "builtin",
        out / "pred_builtin",
        folds="crossval",
        force=args.force,
        device=device,
    )

    t0 = time.perf_counter()
    nnunet_config = NnunetTraining(
        configuration="3d_fullres",
        trainer="nnUNetTrainer",
        budget=TrainBudget(args.epochs, args.iterations, max(1, args.iterations // 5)),
        device=device,
    )
    record = train_nnunet(
        dataset, out / "nnunet", nnunet_config, n_folds=args.folds, force=args.force
    )
    figures["nnunet_train_s"] = time.perf_counter() - t0
    figures["nnunet_s_per_iteration"] = (
        float(np.mean(list(record["fold_seconds"].values()))) / iterations
    )
    figures["nnunet_plan"] = record["budget_used"]
    for mirroring in (False, True):
        name = f"pred_nnunet{'_tta' if mirroring else ''}"
        predict_dataset(
            get_engine("nnunet", use_mirroring=mirroring),
            dataset,
            out / "nnunet",
            out / name,
            folds="crossval",
            device=device,
            force=args.force,
        )
    for name in ("pred_builtin", "pred_nnunet", "pred_nnunet_tta"):
        seconds = _inference_seconds(out / name)
        figures[f"{name}_inference_s_per_study"] = float(np.mean(seconds))
    summary = evaluate_cohort(
        {
            "builtin": out / "pred_builtin",
            "nnunet": out / "pred_nnunet",
            "nnunet_tta": out / "pred_nnunet_tta",
        },
        dataset,
        out / "evaluation",
        force=args.force,
    )
    figures["metrics"] = {
        key: {
            model: {
                "mean": summary["metrics"][key][model]["mean"],
                "median": summary["metrics"][key][model]["median"],
            }
            for model in ("builtin", "nnunet", "nnunet_tta")
        }
        for key in METRICS
    }
    figures["n_cases"] = summary["n_cases"]
    figures["negative_controls"] = summary["negative_controls"]
    (out / "comparison.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return figures


def _cell(stats: dict[str, Any]) -> str:
    mean, median = stats["mean"], stats["median"]
    if mean is None:
        return "n/a"
    return f"{mean:.3f} / {median:.3f}"


def print_figures(figures: dict[str, Any], folds: int, iterations: int) -> None:
    """Print the side-by-side table of ``comparison.json``'s content."""
    models = ("builtin", "nnunet", "nnunet_tta")
    print(
        f"device {figures['device']}, {figures['threads']} threads, grid {figures['grid']}, "
        f"{folds} folds × {iterations} iterations (batch 2), {figures['n_cases']} cases"
    )
    header = "metric (mean / median over cases with lesions)"
    print(f"{header:48s} {'built-in':>17s} {'nnU-Net':>17s} {'nnU-Net+TTA':>17s}")
    for key, per_model in figures["metrics"].items():
        cells = [_cell(per_model[m]) for m in models]
        print(f"{key:48s} {cells[0]:>17s} {cells[1]:>17s} {cells[2]:>17s}")
    b, n = figures["builtin_s_per_iteration"], figures["nnunet_s_per_iteration"]
    print(f"training s/iteration: built-in {b:.2f}, nnU-Net {n:.2f} (ratio {n / b:.2f}x)")
    ib = figures["pred_builtin_inference_s_per_study"]
    nn, tta = (
        figures["pred_nnunet_inference_s_per_study"],
        figures["pred_nnunet_tta_inference_s_per_study"],
    )
    print(
        f"inference s/study (1 fold): built-in {ib:.2f}, nnU-Net {nn:.2f} ({nn / ib:.2f}x), "
        f"with mirroring {tta:.2f} ({tta / ib:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=6, help="phantoms with lesions (default 6)")
    parser.add_argument("--negatives", type=int, default=2, help="negative controls (default 2)")
    parser.add_argument("--folds", type=int, default=2, help="folds (default 2)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=15, help="iterations per epoch")
    parser.add_argument("--grid", choices=GRIDS, default="small")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    print_figures(run(args), args.folds, args.epochs * args.iterations)


if __name__ == "__main__":
    main()

"""``petseg evaluate``: compare lesion maps of one or more models with the truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_force_argument


def _pred_spec(text: str) -> tuple[str | None, Path]:
    """``NAME=DIR`` or ``DIR``."""
    name, sep, folder = text.partition("=")
    if sep and name and "/" not in name:
        return name, Path(folder)
    return None, Path(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    # Choices and defaults come from the library without importing the heavy parts.
    from petseg.evaluate import EvaluationParams
    from petseg.lesions import CONNECTIVITIES
    from petseg.metrics import EMPTY_POLICIES, MATCH_CRITERIA, MATCHING_MODES

    defaults = EvaluationParams()
    parser = subparsers.add_parser(
        "evaluate",
        help="pixel- and lesion-wise metrics, scores and paired tests of one or more models",
        description="Evaluate predicted lesion maps against the truth, case by case, and write "
        "per_case.csv, summary.json, summary.md, summary.html and plots. Folders hold one "
        "sub-folder per case with lesions.nii.gz (what segment/predict write) or flat "
        "<case>.nii.gz files; cases are matched by id and must be on the truth's grid.",
    )
    parser.add_argument(
        "--pred",
        action="append",
        type=_pred_spec,
        required=True,
        metavar="[NAME=]DIR",
        help="prediction folder of a model; repeat for several models (e.g. --pred ens=DIR)",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="model names for the --pred folders given without NAME=, in order",
    )
    parser.add_argument("--truth", type=Path, required=True, help="folder of true lesion maps")
    parser.add_argument("--out", type=Path, required=True, help="report folder (must not exist)")
    parser.add_argument(
        "--connectivity",
        type=int,
        choices=CONNECTIVITIES,
        default=defaults.connectivity,
        help="lesion connectivity for matching and scoring (default %(default)s)",
    )
    parser.add_argument(
        "--criterion",
        choices=MATCH_CRITERIA,
        default=defaults.criterion,
        help="lesion match criterion: any shared voxel, or IoU ≥ --iou (default %(default)s)",
    )
    parser.add_argument(
        "--iou",
        type=float,
        default=defaults.iou_threshold,
        help="IoU threshold for --criterion iou (default %(default)s)",
    )
    parser.add_argument(
        "--matching",
        choices=MATCHING_MODES,
        default=defaults.matching,
        help="lesion matching mode (default %(default)s)",
    )
    parser.add_argument(
        "--autopet-connectivity",
        type=int,
        choices=CONNECTIVITIES,
        default=defaults.autopet_connectivity,
        help="connectivity of the autoPET FP/FN volumes (default %(default)s)",
    )
    parser.add_argument(
        "--empty",
        choices=EMPTY_POLICIES,
        default=defaults.empty,
        help="value of a 0/0 ratio (empty truth and/or prediction) (default %(default)s)",
    )
    parser.add_argument(
        "--minor-dice",
        type=float,
        default=defaults.minor_dice,
        help="a detected lesion with Dice below this is a minor error (default %(default)s)",
    )
    parser.add_argument(
        "--negative-limit-ml",
        type=float,
        default=defaults.negative_limit_ml,
        help="negative-control volume limit in mL (default %(default)s)",
    )
    parser.add_argument(
        "--thresholds",
        type=Path,
        help="CSV with per-slice 'optimal' and 'predicted' thresholds (Rainio Fig. 3 fit)",
    )
    add_force_argument(parser)
    parser.set_defaults(func=run)


def predictions_from_args(pred: list[tuple[str | None, Path]], names: list[str]) -> dict[str, Path]:
    """``{model name: folder}`` from ``--pred`` (parsed by ``_pred_spec``) and ``--name``."""
    out: dict[str, Path] = {}
    unnamed = iter(names)
    for name, folder in pred:
        if name is None:
            name = next(unnamed, None) or (folder.name if len(pred) > 1 else "model")
        if name in out:
            raise ValueError(f"model name {name!r} is given twice; name each --pred with NAME=DIR")
        out[name] = folder
    leftover = list(unnamed)
    if leftover:
        raise ValueError(f"--name {leftover} has no --pred folder without NAME= to go with")
    return out


def run(args: argparse.Namespace) -> int:
    from petseg.evaluate import EvaluationParams, evaluate_cohort

    params = EvaluationParams(
        connectivity=args.connectivity,
        criterion=args.criterion,
        iou_threshold=args.iou,
        matching=args.matching,
        autopet_connectivity=args.autopet_connectivity,
        empty=args.empty,
        minor_dice=args.minor_dice,
        negative_limit_ml=args.negative_limit_ml,
    )
    report = evaluate_cohort(
        predictions_from_args(args.pred, args.name),
        args.truth,
        args.out,
        params=params,
        thresholds=args.thresholds,
        force=args.force,
    )
    for model in report["models"]:
        dice = report["metrics"]["pixel_dice"][model]
        lesion = report["metrics"]["lesion_dice_f1"][model]
        mean_d = "-" if dice["mean"] is None else f"{dice['mean']:.3f}"
        mean_l = "-" if lesion["mean"] is None else f"{lesion['mean']:.3f}"
        print(f"{model}: pixel Dice {mean_d}, lesion-wise Dice {mean_l} ({dice['n']} cases)")
    print(f"report -> {args.out}")
    return 0

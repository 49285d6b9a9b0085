"""``petseg evaluate``: compare lesion maps of one or more models with the truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_force_argument
from petseg.cli._config import add_dataclass_options, call_with_args, config_from_args

__all__ = ["register"]


def _pred_spec(text: str) -> tuple[str | None, Path]:
    """``NAME=DIR`` or ``DIR``."""
    name, sep, folder = text.partition("=")
    if sep and name and "/" not in name:
        return name, Path(folder)
    return None, Path(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg evaluate``; its metric options come from :class:`EvaluationParams`.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``petseg`` command's subcommands.
    """
    from petseg.evaluate import EvaluationParams

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
    add_dataclass_options(parser, EvaluationParams, names={"iou_threshold": "--iou"})
    parser.add_argument(
        "--thresholds",
        type=Path,
        help="CSV with per-slice 'optimal' and 'predicted' thresholds (Rainio Fig. 3 fit)",
    )
    add_force_argument(parser)
    parser.set_defaults(func=_run)


def predictions_from_args(pred: list[tuple[str | None, Path]], names: list[str]) -> dict[str, Path]:
    """``{model name: folder}`` from ``--pred`` (parsed by ``_pred_spec``) and ``--name``.

    Parameters
    ----------
    pred : list of (str or None, Path)
        The ``--pred`` values.
    names : list of str
        The ``--name`` values.

    Returns
    -------
    dict of str to Path
    """
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


def _run(args: argparse.Namespace) -> int:
    from petseg.evaluate import EvaluationParams, evaluate_cohort

    report = call_with_args(
        evaluate_cohort,
        args,
        predictions=predictions_from_args(args.pred, args.name),
        params=config_from_args(args, EvaluationParams),
    )
    for model in report["models"]:
        dice = report["metrics"]["pixel_dice"][model]
        lesion = report["metrics"]["lesion_dice_f1"][model]
        mean_d = "-" if dice["mean"] is None else f"{dice['mean']:.3f}"
        mean_l = "-" if lesion["mean"] is None else f"{lesion['mean']:.3f}"
        print(f"{model}: pixel Dice {mean_d}, lesion-wise Dice {mean_l} ({dice['n']} cases)")
    print(f"report -> {args.out}")
    return 0

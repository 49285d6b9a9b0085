"""``petseg phantom``: write a synthetic whole-body [64Cu]Cu-DOTATATE PET/CT dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_force_argument
from petseg.cli._config import call_with_args, parse_floats
from petseg.phantom import DEFAULT_SPACING
from petseg.progress import enabled

__all__ = ["register"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg phantom``: a synthetic dataset with ground truth.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        Subcommands of ``petseg``; ``phantom`` joins them.
    """
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic whole-body [64Cu]Cu-DOTATATE PET/CT dataset with ground truth",
        description="Generate N synthetic patients (0-40 lesions each) and K negative controls "
        "as case folders with pet.nii.gz (SUVbw), ct.nii.gz (HU), lesions.nii.gz, "
        "organs.nii.gz and truth.json, plus dataset.json (layout: docs/dataset-layout.md). "
        "Same seed, same data.",
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (must not exist)")
    parser.add_argument("--n", type=_count, required=True, help="patients with lesions")
    parser.add_argument("--seed", type=_count, required=True, help="random seed (>= 0)")
    parser.add_argument(
        "--negatives", type=_count, default=0, help="extra negative controls without lesions"
    )
    parser.add_argument(
        "--spacing",
        type=lambda t: parse_floats(t, 3, "--spacing"),
        default=DEFAULT_SPACING,
        metavar="DZ,DY,DX",
        help=f"voxel size in mm (default {','.join(f'{s:g}' for s in DEFAULT_SPACING)}; "
        "the paper's grid is 3,2,2)",
    )
    parser.add_argument(
        "--dicom",
        action="store_true",
        help="also write dicom/pet (BQML with SUV headers) and dicom/ct per case",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from petseg.phantom import write_dataset

    out = call_with_args(
        write_dataset, args, out_dir=args.out, progress=not args.no_progress and enabled()
    )
    print(f"{args.n} patients + {args.negatives} negative controls (synthetic) -> {out}")
    return 0

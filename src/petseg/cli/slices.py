"""``petseg slices build|experiment|predict``: the Rainio 2023 2D slice methods."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_command_group, add_force_argument
from petseg.cli._config import add_dataclass_options, call_with_args, config_from_args

__all__ = ["register"]

#: ExperimentConfig fields whose option is not ``--field-name``.
EXPERIMENT_NAMES = {"n_folds": "--folds", "threshold3d": "--no-3d"}


def _build(args: argparse.Namespace) -> int:
    from petseg.slices.workflow import build_to_file

    slices = call_with_args(build_to_file, args)
    print(f"{len(slices.images)} slices of {len(slices.patients)} patients -> {args.out}")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    import torch

    from petseg.slices.experiment import ExperimentConfig
    from petseg.slices.workflow import experiment_to_folder

    torch.set_num_threads(args.threads)
    config = config_from_args(args, ExperimentConfig)
    result = call_with_args(
        experiment_to_folder, args, config=config, progress=lambda m: print(m, flush=True)
    )
    print(f"experiment done in {result.seconds:.0f} s -> {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from petseg.slices.workflow import predict_to_file

    print(f"{args.method} prediction -> {call_with_args(predict_to_file, args)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg slices`` with its ``build``, ``experiment`` and ``predict`` steps; the
    experiment's options are :class:`~petseg.slices.experiment.ExperimentConfig`'s fields.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of ``petseg``; ``slices`` holds three steps of its own.
    """
    from petseg.slices.build import CROP_PRESETS, SLICE_SIZE
    from petseg.slices.experiment import ExperimentConfig
    from petseg.slices.predict import PREDICT_METHODS

    sub = add_command_group(
        subparsers,
        "slices",
        dest="slices_command",
        metavar="STEP",
        help="Rainio 2023 2D slice methods (U-Net, threshold CNN, both) and their experiment",
        description="Build tumour slices, run the 6-fold experiment, or predict with trained models.",
    )

    b = sub.add_parser("build", help="select, crop, downscale and scale tumour slices")
    b.add_argument(
        "dataset", type=Path, help="folder of case folders (NIfTI layout or DICOM + RTSTRUCT)"
    )
    b.add_argument("--out", type=Path, required=True, help="output slice set (.npz)")
    b.add_argument(
        "--crop", default="rainio", help=f"crop box: {', '.join(CROP_PRESETS)} (default rainio)"
    )
    b.add_argument(
        "--size", type=int, default=SLICE_SIZE, help="output side in pixels (default %(default)s)"
    )
    b.add_argument(
        "--roi", action="append", help="RTSTRUCT ROI name to use (repeatable; default all)"
    )
    add_force_argument(b)
    b.set_defaults(func=_build)

    e = sub.add_parser(
        "experiment",
        help="patient-level cross-validation of the three methods",
        description="Cross-validate the three methods at the patient level (defaults: the "
        "paper's settings).",
    )
    e.add_argument("slices", type=Path, help="slice set (.npz) from `petseg slices build`")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    add_dataclass_options(e, ExperimentConfig, names=EXPERIMENT_NAMES)
    e.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: 2 threads were 1.9x slower on a shared 2-core "
        "machine, benchmarks/slices_experiment.py --part precision)",
    )
    add_force_argument(e)
    e.set_defaults(func=_experiment)

    p = sub.add_parser("predict", help="apply trained models to slices or to a 3D study")
    p.add_argument("--models", type=Path, required=True, help="OUT or OUT/models of an experiment")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--slices", type=Path, help="slice set (.npz); writes masks (.npz)")
    src.add_argument(
        "--study", type=Path, help="study (DICOM folder); writes a mask NIfTI on its grid"
    )
    p.add_argument("--out", type=Path, required=True, help="output masks (.npz) or mask NIfTI")
    p.add_argument("--method", choices=PREDICT_METHODS, default="method2")
    p.add_argument("--crop", help="crop for --study (default: the one the models were built with)")
    add_force_argument(p)
    p.set_defaults(func=_predict)

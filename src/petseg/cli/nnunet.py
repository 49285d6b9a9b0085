"""``petseg nnunet export|import``: nnU-Net v2 raw datasets out, nnU-Net predictions in.

Training and prediction with nnU-Net go through ``petseg train/predict --engine nnunet``
(:class:`petseg.nnunet.engine.NnunetEngine` behind :mod:`petseg.engine`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from petseg.cli._common import add_command_group, add_force_argument, add_study_arguments
from petseg.cli._config import call_with_args
from petseg.lesions import MIN_LESION_VOLUME_ML

__all__ = ["register"]

# Kept in step with petseg.nnunet.export.PET_NORMALISATIONS (checked by the tests) so that
# `petseg --help` does not import the export module.
PET_NORMALISATION_CHOICES = ("zscore", "ct")


def register(subparsers: Any) -> None:
    """Add ``petseg nnunet`` with its ``export`` and ``import`` subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        Where ``nnunet`` and its two actions are added.
    """
    actions = add_command_group(
        subparsers,
        "nnunet",
        dest="action",
        metavar="ACTION",
        help="nnU-Net v2: export a dataset in its raw format, import its predictions",
        description="Bridge to nnU-Net v2 (optional extra: pip install 'petseg[nnunet]'). "
        "Train and predict with it through petseg train/predict --engine nnunet.",
    )

    export = actions.add_parser(
        "export",
        help="write a petseg dataset in nnU-Net v2 raw format",
        description="Write RAW/Dataset<ID>_<NAME>/ with imagesTr (<case>_0000 PET SUV, "
        "<case>_0001 CT HU), labelsTr (0/1) and dataset.json. The PET channel's name selects "
        "nnU-Net's normalisation: zscore (channel 'PET', per-case z-score, nnU-Net's default) "
        "or ct (channel 'CT', dataset-wide clipping to the lesion intensities' 0.5-99.5 "
        "percentiles, then z-score with the dataset's statistics); the choice is recorded.",
    )
    export.add_argument("dataset", type=Path, help="petseg dataset folder (docs/dataset-layout.md)")
    export.add_argument(
        "--id", type=int, default=501, help="nnU-Net dataset id 1-999 (default 501)"
    )
    export.add_argument("--name", default="NEN", help="nnU-Net dataset name (default NEN)")
    export.add_argument(
        "--raw", type=Path, required=True, metavar="NNUNET_RAW", help="nnU-Net raw folder"
    )
    export.add_argument(
        "--pet-normalisation",
        choices=PET_NORMALISATION_CHOICES,
        default="zscore",
        help="nnU-Net normalisation of the PET channel (default %(default)s)",
    )
    add_force_argument(export)
    export.set_defaults(func=_run_export)

    imp = actions.add_parser(
        "import",
        help="turn nnU-Net predictions of one study into petseg's outputs",
        description="Read nnU-Net probabilities (<case>.npz, checked against the <case>.pkl "
        "beside it; several files are averaged: petseg's ensemble) or one label NIfTI, "
        "post-process (body contour, components below --min-volume-ml) and write petseg's "
        "case folder: lesions.nii.gz, lesions.csv, report.json, mip.png (rtstruct.dcm for a "
        "DICOM study).",
    )
    imp.add_argument(
        "--pred",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="nnU-Net .npz probabilities (repeat to average folds) or one label .nii.gz",
    )
    add_study_arguments(imp)
    imp.add_argument("--out", type=Path, required=True, help="output case folder")
    imp.add_argument(
        "--min-volume-ml",
        type=float,
        default=MIN_LESION_VOLUME_ML,
        help="remove components smaller than this (mL; default %(default)s, Carlsen et al.)",
    )
    add_force_argument(imp)
    imp.set_defaults(func=_run_import)


def _run_export(args: argparse.Namespace) -> int:
    from petseg.nnunet.export import export_dataset

    folder = call_with_args(export_dataset, args, dataset_id=args.id)
    print(f"wrote {folder} (PET normalisation: {args.pet_normalisation})")
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from petseg.cli._common import load_study_from_args
    from petseg.nnunet.importer import import_nnunet_predictions

    study = load_study_from_args(args)
    result = call_with_args(import_nnunet_predictions, args, study=study, predictions=args.pred)
    print(
        f"wrote {args.out}: {result.patient.lesion_count} lesions, "
        f"TTV {result.patient.total_tumour_volume_ml:.1f} mL"
    )
    return 0

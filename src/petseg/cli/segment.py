"""``petseg segment``: the semi-automatic threshold pipeline from a study to a case folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import (
    add_force_argument,
    add_method_arguments,
    add_study_arguments,
    load_study_from_args,
    params_from_args,
)
from petseg.cli._config import call_with_args

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg segment``; the threshold options are :class:`~petseg.pipeline.SegmentParams` fields.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommand list of ``petseg``.
    """
    parser = subparsers.add_parser(
        "segment",
        help="segment every lesion with the liver/spleen-reference (or another) threshold",
        description="Segment a PET/CT study with the Carlsen et al. 2022 method (threshold from "
        "a reference VOI, components < 0.1 mL and outside the body removed) and write "
        "lesions.nii.gz, lesions.csv, report.json, mip.png (and rtstruct.dcm for DICOM). "
        "Without --ref-sphere or --ref-mask the reference VOI is placed automatically in "
        "normal liver (found on the CT, or on the PET when there is no CT; in the spleen when "
        "the liver holds no lesion-free sphere) and recorded in report.json.",
    )
    add_study_arguments(parser)
    add_method_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (must not exist)")
    parser.add_argument("--no-rtstruct", action="store_true", help="do not write rtstruct.dcm")
    add_force_argument(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from petseg.workflows import segment_to_folder

    params = params_from_args(args)
    study = load_study_from_args(args)
    result = call_with_args(
        segment_to_folder,
        args,
        study=study,
        params=params,
        out_dir=args.out,
        reference_mask=args.ref_mask,
        exclusions=args.exclude,
        rtstruct=not args.no_rtstruct,
    )
    reference = result.reference or {}
    automatic = reference.get("automatic")
    if automatic is not None:
        print(f"{study.patient_id}: reference {reference['description']}")
        if automatic["switch"] is not None:
            print(
                f"{study.patient_id}: reference switched from the liver to the spleen "
                f"(spleen formula 0.67·SUVmean + 2·SD): {automatic['switch']['reason']}"
            )
    p = result.patient
    threshold = f"{result.threshold_suv:.2f} g/mL" if result.threshold_suv is not None else "-"
    removed = ""
    if result.physiological is not None:
        tracer = result.extra["organs"]["tracer"]["name"]
        removed = f", {len(result.physiological.components)} removed as {tracer} organ uptake"
    print(
        f"{study.patient_id}: threshold {threshold}, {p.lesion_count} lesions, "
        f"TTV {p.total_tumour_volume_ml:.2f} mL{removed} -> {args.out}"
    )
    return 0

"""``petseg export rtstruct|seg``: a lesion map as DICOM objects for clinical viewers."""

from __future__ import annotations

import argparse
from pathlib import Path

from petseg.cli._common import add_command_group
from petseg.cli._config import call_with_args

# Choices and defaults come from the library (light modules: numpy and petseg only).
from petseg.io.export import ALGORITHM_FAMILIES, GENERATION_ALGORITHMS, SEG_TYPES

__all__ = ["register"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "lesions",
        type=Path,
        help="lesion map NIfTI (lesions.nii.gz), integer labels on the PET grid",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        required=True,
        help="folder of the PET DICOM series the lesion map was made on",
    )
    parser.add_argument("--out", type=Path, required=True, help="output DICOM file (.dcm)")
    parser.add_argument(
        "--algorithm",
        choices=GENERATION_ALGORITHMS,
        default="AUTOMATIC",
        help="how the lesions were made: AUTOMATIC (default), SEMIAUTOMATIC (reviewed/edited), "
        "MANUAL",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``petseg export`` with its ``rtstruct`` and ``seg`` kinds.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        Where ``export`` is added.
    """
    kinds = add_command_group(
        subparsers,
        "export",
        dest="export_kind",
        metavar="KIND",
        help="export a lesion map as DICOM RTSTRUCT or SEG referencing the PET series",
        description="Export a lesion map as DICOM objects that clinical viewers load on the "
        "PET series: an RT Structure Set (one ROI per lesion, lesion_001, ...) or a DICOM SEG.",
    )

    rtstruct = kinds.add_parser(
        "rtstruct",
        help="RT Structure Set, one ROI per lesion",
        description="Write an RT Structure Set: one ROI per lesion, named and numbered after "
        "its label (lesion_007 = label 7), contours on every PET slice it crosses.",
    )
    _common(rtstruct)
    rtstruct.add_argument(
        "--total", action="store_true", help="add a total_tumour ROI (union of all lesions)"
    )
    rtstruct.set_defaults(func=_run_rtstruct)

    seg = kinds.add_parser(
        "seg",
        help="DICOM Segmentation, one segment per lesion",
        description="Write a DICOM SEG (highdicom): one segment per lesion, or a labelmap SEG.",
    )
    _common(seg)
    seg.add_argument(
        "--type", dest="seg_type", choices=SEG_TYPES, default="binary", help="SEG type"
    )
    seg.add_argument(
        "--family",
        choices=ALGORITHM_FAMILIES,
        default="ai",
        help="algorithm family recorded per segment (ai = network, threshold = SUV threshold)",
    )
    seg.set_defaults(func=_run_seg)


def _print(result: object) -> None:
    from petseg.io.export import ExportResult

    assert isinstance(result, ExportResult)
    contours = f", {result.n_contours} contours" if result.n_contours else ""
    print(f"wrote {result.path}: {result.n_rois} ROIs/segments{contours}")
    for note in result.notes:
        print(f"note: {note}")


def _run_rtstruct(args: argparse.Namespace) -> int:
    from petseg.io.export import export_rtstruct

    options = {"include_total": args.total, "generation_algorithm": args.algorithm}
    _print(call_with_args(export_rtstruct, args, **options))
    return 0


def _run_seg(args: argparse.Namespace) -> int:
    from petseg.io.export import export_seg

    options = {"algorithm_type": args.algorithm, "algorithm_family": args.family}
    _print(call_with_args(export_seg, args, **options))
    return 0

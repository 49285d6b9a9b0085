"""``petseg import rtstruct``: physician contours (DICOM RTSTRUCT) to NIfTI labels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from petseg.cli._common import add_command_group
from petseg.cli._config import call_with_args

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``petseg import`` (with its ``rtstruct`` subcommand) to ``subparsers``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``petseg`` subcommands; ``import`` gets its own kinds.
    """
    kinds = add_command_group(
        subparsers,
        "import",
        dest="kind",
        metavar="KIND",
        help="bring external data into petseg (RTSTRUCT contours → NIfTI labels)",
        description="Import external annotations onto a reference image grid.",
    )
    rt = kinds.add_parser(
        "rtstruct",
        help="rasterise an RT Structure Set onto a reference image grid",
        description=(
            "Rasterise RTSTRUCT ROIs onto the grid of the image they were drawn on "
            "(voxel centre inside the polygon, even-odd rule) and write NIfTI labels plus "
            "a JSON sidecar (legend, voxel counts, volumes in mL, provenance). With --roi "
            "the output is a 0/1 mask; otherwise ROIs become labels 1..N."
        ),
    )
    rt.add_argument("rtstruct", type=Path, help="the RT Structure Set file (RS*.dcm)")
    rt.add_argument(
        "--reference",
        type=Path,
        required=True,
        metavar="IMAGE",
        help="DICOM folder holding the referenced image series, or a NIfTI image",
    )
    rt.add_argument(
        "--out", type=Path, required=True, metavar="MASK.nii.gz", help="output NIfTI file"
    )
    rt.add_argument("--roi", metavar="NAME", help="import only this ROI (exact name)")
    rt.add_argument("--force", action="store_true", help="replace existing outputs")
    rt.set_defaults(func=_run_rtstruct)


def _run_rtstruct(args: argparse.Namespace) -> int:
    from petseg.io.rtstruct import import_rtstruct

    record = call_with_args(import_rtstruct, args)
    for entry in record["labels"]:
        print(
            f"label {entry['label']}: {entry['roi_name']} "
            f"({entry['voxels']} voxels, {entry['volume_ml']:.3f} mL)"
        )
    print(f"wrote {args.out}")
    return 0

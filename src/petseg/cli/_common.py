"""Argument groups shared by subcommands (study inputs, threshold method), built from the
library's own defaults so CLI and library cannot drift apart."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from petseg.body import BODY_THRESHOLD_SUV
from petseg.lesions import CONNECTIVITIES, DEFAULT_CONNECTIVITY, MIN_LESION_VOLUME_ML
from petseg.pipeline import METHODS, SegmentParams
from petseg.reference import DEFAULT_SPHERE_RADIUS_MM
from petseg.threshold import DEFAULT_PERCENT_MAX

__all__ = [
    "add_force_argument",
    "add_method_arguments",
    "add_organ_arguments",
    "add_study_arguments",
    "given_method_options",
    "load_study_from_args",
    "params_from_args",
    "parse_floats",
]


def parse_floats(text: str, count: int, what: str) -> tuple[float, ...]:
    """Parse ``"a,b,c"`` into ``count`` floats, with an error naming ``what``."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count:
        raise argparse.ArgumentTypeError(
            f"{what} needs {count} comma-separated numbers, got {text!r}"
        )
    return values


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace existing outputs")


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """STUDY (DICOM folder or case folder with pet.nii.gz) or --pet/--ct NIfTI files."""
    parser.add_argument(
        "study",
        nargs="?",
        type=Path,
        help="DICOM folder (PET and optional CT series found automatically, also in subfolders) "
        "or a case folder holding pet.nii.gz [ct.nii.gz]",
    )
    group = parser.add_argument_group("study input")
    group.add_argument("--pet", type=Path, help="PET NIfTI (SUVbw g/mL unless --pet-units BQML)")
    group.add_argument("--ct", type=Path, help="CT NIfTI in HU (resampled onto the PET grid)")
    group.add_argument(
        "--pet-units", choices=("SUV", "BQML"), default="SUV", help="units of a PET NIfTI"
    )
    group.add_argument(
        "--no-suv-check",
        action="store_true",
        help="load a PET whose values are implausible as SUVbw (e.g. Bq/mL) instead of "
        "refusing it; recorded in report.json",
    )
    group.add_argument("--suv-factor", type=float, help="SUVbw factor (g/Bq) for a BQML PET NIfTI")
    group.add_argument(
        "--weight-kg", type=float, help="patient weight in kg (overrides the header)"
    )
    group.add_argument(
        "--dose-bq", type=float, help="injected activity in Bq (overrides the header)"
    )
    group.add_argument(
        "--injection-time", help="injection date-time, ISO 8601 (overrides the header)"
    )
    group.add_argument(
        "--pet-series", help="SeriesInstanceUID of the PET series when a folder holds several"
    )
    group.add_argument(
        "--ct-series", help="SeriesInstanceUID of the CT series when a folder holds several"
    )
    group.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="skip DICOM files that cannot be read (listed in report.json) instead of stopping",
    )


def load_study_from_args(args: argparse.Namespace) -> Any:
    """Load the Study named by :func:`add_study_arguments`' options."""
    from petseg.io import load_study

    if args.study is None and args.pet is None:
        raise ValueError("give a STUDY folder or --pet PET.nii.gz")
    if args.study is not None and args.pet is not None:
        raise ValueError("give either a STUDY folder or --pet, not both")
    study = load_study(
        args.study,
        pet=args.pet,
        ct=args.ct,
        pet_units=args.pet_units,
        suv_check=not args.no_suv_check,
        suv_factor=args.suv_factor,
        weight_kg=args.weight_kg,
        dose_bq=args.dose_bq,
        injection_time=args.injection_time,
        series_uid=args.pet_series,
        ct_series_uid=args.ct_series,
        skip_unreadable=args.skip_unreadable,
    )
    if study.pet.shape[0] < 2:
        raise ValueError(
            f"{args.study or args.pet}: the PET is a single 2D slice {study.pet.shape[1:]}; "
            "petseg segments 3D volumes: give the folder of the whole series"
        )
    return study


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """Threshold-method options; defaults come from :class:`petseg.pipeline.SegmentParams`.

    Options left out stay None here, so that :func:`params_from_args` can tell an option
    given for a method it does not apply to (an error) from one not given.
    """
    group = parser.add_argument_group("threshold method")
    group.add_argument(
        "--method",
        "--reference",
        dest="method",
        choices=METHODS,
        help="liver: 1.5·SUVmean+2·SD of a liver VOI; spleen: 0.67·SUVmean+2·SD of a spleen VOI; "
        "fixed: --threshold SUV; percent_max: per lesion, a fraction of its SUVmax (default "
        "liver; fixed when --threshold is given alone)",
    )
    group.add_argument(
        "--ref-sphere",
        type=lambda t: parse_floats(t, 4, "--ref-sphere"),
        metavar="X,Y,Z,R",
        help="reference sphere: centre in patient mm (DICOM LPS x,y,z) — or voxel indices k,j,i "
        f"with --ref-units voxel — and radius R in mm (a 3 cm sphere is R={DEFAULT_SPHERE_RADIUS_MM:g}); "
        "default: placed automatically in normal liver",
    )
    group.add_argument(
        "--ref-units", choices=("mm", "voxel"), help="units of the sphere centre (default mm)"
    )
    group.add_argument(
        "--ref-mask", type=Path, help="reference VOI as a NIfTI mask on the PET grid"
    )
    group.add_argument(
        "--threshold",
        type=float,
        help="SUV (g/mL) for --method fixed; the candidate floor for percent_max",
    )
    group.add_argument(
        "--percent-max",
        type=float,
        help=f"fraction of SUVmax for percent_max (default {DEFAULT_PERCENT_MAX})",
    )
    group.add_argument(
        "--connectivity",
        type=int,
        choices=CONNECTIVITIES,
        help=f"3D neighbourhood for lesions (default {DEFAULT_CONNECTIVITY})",
    )
    group.add_argument(
        "--min-volume-ml",
        type=float,
        help=f"remove components smaller than this (default {MIN_LESION_VOLUME_ML} mL)",
    )
    group.add_argument(
        "--no-body-mask", action="store_true", help="keep segmentation outside the body contour"
    )
    group.add_argument(
        "--body-threshold",
        type=float,
        help=f"SUV separating body from air for the body contour (default {BODY_THRESHOLD_SUV})",
    )
    group.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        metavar="MASK",
        help="NIfTI mask on the PET grid whose voxels are removed; repeatable",
    )
    add_organ_arguments(parser)


def add_organ_arguments(parser: argparse.ArgumentParser) -> None:
    """``--organs``, ``--organ-names`` and ``--tracer``: removal of physiological uptake."""
    from petseg.tracers import TRACERS

    group = parser.add_argument_group("physiological uptake (organ map and tracer profile)")
    group.add_argument(
        "--organs",
        metavar="PATH|totalsegmentator",
        help="organ map: a NIfTI label map (TotalSegmentator output or any map with names), "
        "a folder of per-class masks, or a DICOM SEG, resampled onto the PET grid; or "
        "'totalsegmentator' to run it on the CT (pip install 'petseg[organs]'). Components "
        "lying mostly in the tracer's organs of physiological uptake are removed, the parts "
        "of others lying in them are cut (removed.nii.gz)",
    )
    group.add_argument(
        "--organ-names",
        metavar="JSON|totalsegmentator",
        help='names of a label map\'s classes: a JSON ({"5": "liver"}), or '
        "'totalsegmentator' for its total-task numbering (default: a JSON beside the map, "
        "or the names in its NIfTI header)",
    )
    group.add_argument(
        "--tracer",
        type=str.lower,
        metavar="|".join(TRACERS),
        help="tracer profile: which organs' uptake is physiological (default: from the PET's "
        "DICOM radiopharmaceutical; needed for NIfTI input)",
    )


#: Options of :func:`add_method_arguments` and the SegmentParams fields they set.
METHOD_OPTIONS = {
    "--ref-sphere": "ref_sphere",
    "--ref-units": "ref_units",
    "--threshold": "threshold",
    "--percent-max": "percent_max",
    "--connectivity": "connectivity",
    "--min-volume-ml": "min_volume_ml",
    "--body-threshold": "body_threshold_suv",
}


def given_method_options(args: argparse.Namespace) -> list[str]:
    """The threshold-method options given on the command line."""
    given = [o for o in METHOD_OPTIONS if getattr(args, o[2:].replace("-", "_")) is not None]
    return given + (["--no-body-mask"] if args.no_body_mask else [])


def params_from_args(args: argparse.Namespace) -> SegmentParams:
    """:class:`SegmentParams` from the options given; the others keep the library defaults.

    ``--threshold`` alone means ``--method fixed``. Options that do not apply to the method
    are errors here or in :class:`SegmentParams`.
    """
    method = args.method or ("fixed" if args.threshold is not None else "liver")
    if args.percent_max is not None and method != "percent_max":
        raise ValueError(
            f"--percent-max applies to --method percent_max, not {method}; drop it or change "
            "the method"
        )
    if args.ref_units is not None and args.ref_sphere is None:
        raise ValueError("--ref-units gives the units of --ref-sphere; give --ref-sphere too")
    if args.body_threshold is not None and args.no_body_mask:
        raise ValueError(
            "--body-threshold sets the body contour, which --no-body-mask switches off; drop one"
        )
    given = {
        field: getattr(args, option[2:].replace("-", "_"))
        for option, field in METHOD_OPTIONS.items()
        if getattr(args, option[2:].replace("-", "_")) is not None
    }
    return SegmentParams(method=method, body=not args.no_body_mask, **given)

"""Argument groups shared by subcommands (study inputs, threshold method), built from the
library's own defaults so CLI and library cannot drift apart."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from petseg.cli._config import add_dataclass_options, given_fields, given_options
from petseg.pipeline import METHODS, SegmentParams

__all__ = [
    "add_command_group",
    "add_force_argument",
    "add_method_arguments",
    "add_organ_arguments",
    "add_study_arguments",
    "given_method_options",
    "load_study_from_args",
    "params_from_args",
]


def add_command_group(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    dest: str,
    metavar: str,
    help: str,
    description: str,
) -> argparse._SubParsersAction:
    """Add ``petseg NAME``, a command made of steps (``slices build``, ``export seg``).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``petseg`` subcommands.
    name : str
        The command.
    dest : str
        Where the chosen step is stored.
    metavar : str
        How ``--help`` names the step (``KIND``, ``STEP``).
    help, description : str
        The command's one-line help and its description.

    Returns
    -------
    argparse._SubParsersAction
        The command's steps, one of which is required.
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    steps = parser.add_subparsers(dest=dest, metavar=metavar)
    steps.required = True
    return steps


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace outputs that petseg wrote before.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand that writes outputs.
    """
    parser.add_argument("--force", action="store_true", help="replace existing outputs")


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """STUDY (DICOM folder or case folder with pet.nii.gz) or --pet/--ct NIfTI files.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand that reads one study.
    """
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
    """Load the Study named by :func:`add_study_arguments`' options.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_study_arguments`.

    Returns
    -------
    Study
        PET in SUVbw (g/mL), CT in HU on the PET grid.
    """
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


#: SegmentParams fields with a threshold-method option, and option strings other than
#: ``--field-name`` (see :mod:`petseg.cli._config`).
METHOD_FIELDS = (
    "method",
    "ref_sphere",
    "ref_units",
    "threshold",
    "percent_max",
    "connectivity",
    "min_volume_ml",
    "body",
    "body_threshold_suv",
)
METHOD_NAMES: dict[str, str | tuple[str, ...]] = {
    "method": ("--method", "--reference"),
    "body": "--no-body-mask",
    "body_threshold_suv": "--body-threshold",
}


def add_method_arguments(
    parser: argparse.ArgumentParser, extra_methods: tuple[str, ...] = ()
) -> None:
    """Threshold-method options, built from :class:`petseg.pipeline.SegmentParams`.

    Options left out stay None here, so that :func:`params_from_args` can tell an option
    given for a method it does not apply to (an error) from one not given.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    extra_methods : tuple of str
        ``--method`` values the subcommand handles itself (``run``: ``predict``).
    """
    group = parser.add_argument_group("threshold method")
    add_dataclass_options(
        group,
        SegmentParams,
        fields=METHOD_FIELDS,
        names=METHOD_NAMES,
        help={"method": "{help} (default liver; fixed when --threshold is given alone)"},
        choices={"method": (*METHODS, *extra_methods)},
    )
    group.add_argument(
        "--ref-mask", type=Path, help="reference VOI as a NIfTI mask on the PET grid"
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
    """``--organs``, ``--organ-names`` and ``--tracer``: removal of physiological uptake.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand that removes physiological uptake.
    """
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


def given_method_options(args: argparse.Namespace) -> list[str]:
    """The threshold-method options given on the command line (``--method`` excluded).

    Parameters
    ----------
    args : argparse.Namespace
        A command line with the options of :func:`add_method_arguments`.

    Returns
    -------
    list of str
        Option strings as in ``--help`` (``--no-body-mask``, not ``body``).
    """
    fields = [f for f in METHOD_FIELDS if f != "method"]
    return given_options(args, SegmentParams, fields, METHOD_NAMES)


def params_from_args(args: argparse.Namespace) -> SegmentParams:
    """:class:`SegmentParams` from the options given; the others keep the library defaults.

    ``--threshold`` alone means ``--method fixed``. Options that do not apply to the method
    are errors here or in :class:`SegmentParams`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser with :func:`add_method_arguments`.

    Returns
    -------
    SegmentParams
    """
    given = given_fields(args, SegmentParams, METHOD_FIELDS)
    method = given.pop("method", None) or ("fixed" if "threshold" in given else "liver")
    if "percent_max" in given and method != "percent_max":
        raise ValueError(
            f"--percent-max applies to --method percent_max, not {method}; drop it or change "
            "the method"
        )
    if "ref_units" in given and "ref_sphere" not in given:
        raise ValueError("--ref-units gives the units of --ref-sphere; give --ref-sphere too")
    if "body_threshold_suv" in given and given.get("body") is False:
        raise ValueError(
            "--body-threshold sets the body contour, which --no-body-mask switches off; drop one"
        )
    return SegmentParams(method=method, **given)

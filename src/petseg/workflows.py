"""End-to-end workflows behind the CLI: each reads its inputs, runs the library, writes
its outputs. They are plain functions so cohort runs and tests call them directly."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from petseg.organs import OrganMap
from petseg.pipeline import SegmentParams, segment_study
from petseg.result import SegmentationResult
from petseg.study import Study
from petseg.tracers import TracerChoice

__all__ = ["read_mask_on_grid", "segment_to_folder"]

#: Organs an organ map is asked for besides the tracer profile's: the reference organs.
REFERENCE_ORGANS = ("liver", "spleen")


def read_mask_on_grid(path: str | Path, study: Study, what: str) -> np.ndarray:
    """Read a NIfTI mask and check it lies on the study's PET grid (no silent resampling).

    Parameters
    ----------
    path : path
        NIfTI mask (nonzero voxels are in the mask).
    study : Study
        The study whose PET grid the mask must share.
    what : str
        What the mask is, for the error message (``"reference mask"``).

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    from petseg.io.nifti import read_nifti

    array, geometry = read_nifti(path)
    if not geometry.same_grid(study.geometry, atol_mm=0.01):
        raise ValueError(
            f"{what} {path} is on a different grid (shape {geometry.shape}, spacing "
            f"{tuple(round(s, 3) for s in geometry.spacing)} mm) than the PET "
            f"(shape {study.geometry.shape}, spacing {tuple(round(s, 3) for s in study.geometry.spacing)} mm); "
            "resample it onto the PET grid first"
        )
    return np.asarray(array) > 0


def segment_to_folder(
    study: Study,
    params: SegmentParams,
    out_dir: str | Path,
    *,
    reference_mask: str | Path | None = None,
    exclusions: Sequence[str | Path] = (),
    organs: str | Path | None = None,
    organ_names: str | Path | None = None,
    tracer: str | None = None,
    force: bool = False,
    rtstruct: bool = True,
    previous: str | Path | None = None,
) -> SegmentationResult:
    """Segment ``study`` with the threshold pipeline and write its case folder.

    Parameters
    ----------
    study : Study
        PET in SUVbw (g/mL), optional CT, on one grid.
    params : SegmentParams
        The threshold method and its options.
    out_dir : path
        The case folder (see :func:`petseg.report.write_segmentation_outputs`).
    reference_mask, exclusions : paths
        NIfTI masks on the PET grid: the reference VOI; voxels removed.
    organs : path or "totalsegmentator", optional
        Organ map (file, folder or DICOM SEG, resampled onto the PET grid) or a
        TotalSegmentator run on the CT, cached in ``out_dir/totalsegmentator`` and reused
        by later runs into the same folder. Physiological uptake in the tracer profile's
        organs is removed (``removed.nii.gz``).
    organ_names : path or "totalsegmentator", optional
        Class names of a NIfTI label map (``--organ-names``).
    tracer : str, optional
        Tracer profile (``--tracer``); default the one the PET's DICOM headers name.
    force : bool
        Replace an existing ``out_dir``.
    rtstruct : bool
        Write ``rtstruct.dcm`` for DICOM input.
    previous : path, optional
        An earlier case folder of this study whose TotalSegmentator output may be reused
        (default ``out_dir``).
    """
    from petseg.io.atomic import check_writable_target
    from petseg.report import KEPT_ON_RERUN, study_sources, write_segmentation_outputs

    out_dir = Path(out_dir)
    named = [organs, organ_names]  # files, unless they name TotalSegmentator
    masks = [reference_mask, *exclusions, *(p for p in named if p != "totalsegmentator")]
    check_writable_target(
        out_dir, force, inputs=[*study_sources(study), *masks], keep=KEPT_ON_RERUN
    )
    _check_organ_options(organs, organ_names, tracer)
    ref = read_mask_on_grid(reference_mask, study, "reference mask") if reference_mask else None
    excluded = [read_mask_on_grid(p, study, "exclusion mask") for p in exclusions]
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=_parent(out_dir)) as scratch:
        organ_map, tracer_choice, cache = _organs_and_tracer(
            study, organs, organ_names, tracer, Path(previous or out_dir), Path(scratch)
        )
        result = segment_study(
            study,
            params,
            reference_mask=ref,
            exclusions=excluded,
            organs=organ_map,
            tracer=tracer_choice,
        )
        if ref is not None and result.reference is not None:
            result.reference["mask_file"] = str(reference_mask)
        write_segmentation_outputs(
            out_dir,
            study,
            result,
            force=force,
            rtstruct=rtstruct,
            extras=functools.partial(_keep_cache, cache),
            inputs=masks,
        )
    return result


def _check_organ_options(
    organs: str | Path | None, organ_names: str | Path | None, tracer: str | None
) -> None:
    """A tracer or class names need an organ map to act on."""
    if organs is None and (tracer is not None or organ_names is not None):
        raise ValueError(
            "--tracer and --organ-names choose how an organ map removes physiological uptake; "
            "give the organ map with --organs PATH (or --organs totalsegmentator)"
        )


def _keep_cache(cache: Path | None, folder: Path) -> list[str]:
    """Copy a TotalSegmentator output into the case folder being written; its name, if any."""
    from petseg.io.organs import TOTALSEGMENTATOR_CACHE

    if cache is None or not cache.is_dir():
        return []
    shutil.copytree(cache, folder / TOTALSEGMENTATOR_CACHE)
    return [TOTALSEGMENTATOR_CACHE]


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent


def _organs_and_tracer(
    study: Study,
    organs: str | Path | None,
    organ_names: str | Path | None,
    tracer: str | None,
    previous: Path,
    scratch: Path,
) -> tuple[OrganMap | None, TracerChoice | None, Path | None]:
    """The organ map and tracer choice ``--organs``/``--tracer`` name, and the folder
    holding TotalSegmentator's output when it ran (or was reused)."""
    if organs is None:
        return None, None, None
    from petseg.io.organs import (
        RUN_TOTALSEGMENTATOR,
        TOTALSEGMENTATOR_CACHE,
        organ_map_for_study,
        read_radiopharmaceutical,
    )
    from petseg.tracers import resolve_tracer

    choice = resolve_tracer(tracer, read_radiopharmaceutical(study))
    cache = None
    if str(organs) == RUN_TOTALSEGMENTATOR:
        cache = scratch / TOTALSEGMENTATOR_CACHE
        if (previous / TOTALSEGMENTATOR_CACHE).is_dir():
            shutil.copytree(previous / TOTALSEGMENTATOR_CACHE, cache)
    organ_map = organ_map_for_study(
        organs,
        study,
        organs=(*choice.profile.physiological, *REFERENCE_ORGANS),
        cache=cache or scratch / TOTALSEGMENTATOR_CACHE,
        names=organ_names,
    )
    return organ_map, choice, cache

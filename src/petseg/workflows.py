"""End-to-end workflows behind the CLI: each reads its inputs, runs the library, writes
its outputs. They are plain functions so cohort runs and tests call them directly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from petseg.pipeline import SegmentParams, segment_study
from petseg.result import SegmentationResult
from petseg.study import Study

__all__ = ["read_mask_on_grid", "segment_to_folder"]


def read_mask_on_grid(path: str | Path, study: Study, what: str) -> np.ndarray:
    """Read a NIfTI mask and check it lies on the study's PET grid (no silent resampling)."""
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
    organ_exclusions: Sequence[str | Path] = (),
    force: bool = False,
    rtstruct: bool = True,
) -> SegmentationResult:
    """Segment ``study`` with the threshold pipeline and write its case folder.

    Masks are NIfTI files on the PET grid: ``exclusions`` remove voxels,
    ``organ_exclusions`` remove lesions lying mostly inside them. See :func:`petseg.report.write_segmentation_outputs`
    for the files written.
    """
    from petseg.io.atomic import check_writable_target
    from petseg.report import write_segmentation_outputs

    check_writable_target(Path(out_dir), force)
    ref = read_mask_on_grid(reference_mask, study, "reference mask") if reference_mask else None
    excluded = [read_mask_on_grid(p, study, "exclusion mask") for p in exclusions]
    organs = [read_mask_on_grid(p, study, "organ mask") for p in organ_exclusions]
    result = segment_study(
        study, params, reference_mask=ref, exclusions=excluded, organ_exclusions=organs
    )
    if ref is not None and result.reference is not None:
        result.reference["mask_file"] = str(reference_mask)
    write_segmentation_outputs(out_dir, study, result, force=force, rtstruct=rtstruct)
    return result

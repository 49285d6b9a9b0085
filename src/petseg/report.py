"""Outputs of a segmentation: the case folder every later step reads.

``write_segmentation_outputs`` writes, atomically (a temporary folder renamed at the end):

* ``lesions.nii.gz`` — int32 lesion labels on the PET grid
* ``pet_suv.nii.gz`` — the PET in SUVbw (g/mL), and ``ct.nii.gz`` (HU on the PET grid) if
  the study has a CT, so the folder is self-contained for review
* ``lesions.csv`` — one row per lesion (label, voxels, volume_ml, suv_max, suv_mean,
  suv_peak, tlg_g, centroid_[xyz]_mm; for a fold ensemble also uncertainty_mean,
  uncertainty_max, folds_segmenting, folds, review_first: :mod:`petseg.uncertainty`)
* ``report.json`` — patient measures, reference VOI, threshold, parameters, inputs,
  geometry, petseg version and time, and ``result_id`` (new for every result; a review
  records the ``result_id`` it was made on)
* ``mip.png`` — coronal and sagittal MIPs with lesion outlines and the reference VOI
* ``rtstruct.dcm`` — when the study was read from DICOM and the export is available
* with an organ map and a tracer profile: ``removed.nii.gz`` (int32 labels of the
  physiological uptake removed), ``removed.csv`` (one row per removed component: label,
  organ, rule, fraction_in_organs and the lesion columns) and ``organ_map.nii.gz`` (the
  organ map on the PET grid; its legend is ``report.json["organs"]["organ_map"]["labels"]``)

A folder being replaced (``force``) keeps its ``review/`` (the physician's saved versions,
:mod:`petseg.review.versions`), which then refer to an older result. The study's own files
(``study_sources``) and any further ``inputs`` are never replaced and never inside the
folder being replaced.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.io.atomic import atomic_dir
from petseg.jsonable import to_jsonable
from petseg.result import SegmentationResult
from petseg.study import Study
from petseg.uncertainty import UNCERTAINTY_COLUMNS

__all__ = [
    "KEPT_ON_RERUN",
    "LESION_COLUMNS",
    "REMOVED_COLUMNS",
    "build_report",
    "lesion_rows",
    "study_sources",
    "write_segmentation_outputs",
]

#: Entries of a case folder that outlive a rerun: the physician's reviews.
KEPT_ON_RERUN = ("review",)

LESION_COLUMNS = (
    "label",
    "voxels",
    "volume_ml",
    "suv_max",
    "suv_mean",
    "suv_peak",
    "tlg_g",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
)
#: Columns of ``removed.csv``: the removed component's label, organ and rule, then its measures.
REMOVED_COLUMNS = ("label", "organ", "rule", "fraction_in_organs", *LESION_COLUMNS[1:])


def build_report(study: Study, result: SegmentationResult) -> dict[str, Any]:
    """The JSON-ready report of one segmentation (see module docstring for the fields).

    Parameters
    ----------
    study : Study
        The study segmented (identity, geometry, provenance).
    result : SegmentationResult
        The lesion map's measurements and parameters.

    Returns
    -------
    dict
        Plain JSON values (:func:`petseg.jsonable.to_jsonable`), NaN as null.
    """
    synthetic = bool(study.provenance.get("synthetic", False))
    report = {
        "petseg_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "result_id": uuid.uuid4().hex,
        "patient_id": study.patient_id,
        "study_id": study.study_id,
        "synthetic": synthetic,
        "method": result.method,
        "units": {
            "suv": "g/mL (SUVbw)",
            "volume": "mL",
            "tlg": "g (SUVmean x mL)",
            "position": "mm, DICOM patient LPS",
        },
        "inputs": study.provenance,
        "parameters": result.parameters,
        "geometry": study.geometry.to_dict(),
        "reference": result.reference,
        "threshold_suv": result.threshold_suv,
        "patient": result.patient.to_dict(),
        "lesions": lesion_rows(result),
        **result.extra,
    }
    if synthetic:
        report["note"] = (
            "SYNTHETIC DATA: this study is a petseg phantom standing in for real "
            "[64Cu]Cu-DOTATATE PET/CT; no patient was imaged."
        )
    return to_jsonable(report)


def lesion_rows(result: SegmentationResult) -> list[dict[str, Any]]:
    """One dict per lesion: its measures, and its ensemble uncertainty when the result has it.

    Parameters
    ----------
    result : SegmentationResult
        The segmentation (``lesion_uncertainty`` for a fold ensemble).
    """
    rows = [lesion.to_dict() for lesion in result.lesions]
    if result.lesion_uncertainty is not None:
        for row, extra in zip(rows, result.lesion_uncertainty, strict=True):
            row.update({name: getattr(extra, name) for name in UNCERTAINTY_COLUMNS})
    return rows


def study_sources(study: Study) -> list[Path]:
    """The files and folders a study was read from (its provenance), for output checks.

    Parameters
    ----------
    study : Study
        A study read by :func:`petseg.io.load_study` (a phantom has none).

    Returns
    -------
    list of Path
    """
    provenance = study.provenance
    ct = provenance.get("ct") or {}
    named = (provenance.get("source"), provenance.get("pet"), ct.get("path"), ct.get("dir"))
    return [Path(p) for p in named if isinstance(p, str) and p]


#: Outline colour (RGB) of the reference VOI on the MIP: magenta, not one of the lesions'.
REFERENCE_COLOUR = (255, 0, 255)


def reference_overlay(result: SegmentationResult) -> list[Any]:
    """The reference VOI as a MIP overlay (none for methods without one).

    Parameters
    ----------
    result : SegmentationResult
        Its ``reference_mask`` is outlined in :data:`REFERENCE_COLOUR`.

    Returns
    -------
    list of MipOverlay
        Empty, or the one outline.
    """
    from petseg.mip import MipOverlay

    if result.reference_mask is None or result.reference is None:
        return []
    automatic = " (automatic)" if result.reference.get("automatic") else ""
    name = f"{result.reference.get('organ', 'reference')} reference VOI{automatic}"
    return [MipOverlay(result.reference_mask, REFERENCE_COLOUR, name)]


def write_segmentation_outputs(
    out_dir: str | Path,
    study: Study,
    result: SegmentationResult,
    *,
    force: bool = False,
    rtstruct: bool = True,
    mip: bool = True,
    extras: Callable[[Path], Iterable[str]] | None = None,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> Path:
    """Write the case folder for ``result`` (see module docstring); return its path.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The case folder; refused if it exists, unless ``force`` and petseg wrote it
        (:mod:`petseg.io.atomic`). Nothing is left half-written.
    study : Study
        The study segmented; the files it was read from count as inputs.
    result : SegmentationResult
        Labels, lesion table and parameters.
    force : bool
        Replace an existing petseg case folder, keeping its ``review/``.
    rtstruct : bool
        Also write ``rtstruct.dcm`` for a study read from DICOM.
    mip : bool
        Also write ``mip.png``.
    extras : callable, optional
        ``extras(folder)`` writes further files (e.g. probability maps) into the temporary
        folder before it is renamed and returns their names for ``report.json``.
    inputs : iterable of str or os.PathLike
        Further files the result was made from (masks, a model folder).

    Returns
    -------
    Path
        The case folder.
    """
    import json

    from petseg.io.nifti import write_nifti

    report = build_report(study, result)
    sources = [*study_sources(study), *inputs]
    with atomic_dir(out_dir, force=force, inputs=sources, keep=KEPT_ON_RERUN) as tmp:
        write_nifti(tmp / "lesions.nii.gz", result.labels.astype(np.int32), study.geometry)
        write_nifti(tmp / "pet_suv.nii.gz", study.pet, study.geometry)
        if study.ct is not None:
            write_nifti(tmp / "ct.nii.gz", study.ct, study.geometry)
        with open(tmp / "lesions.csv", "w", newline="", encoding="utf-8") as handle:
            columns: tuple[str, ...] = LESION_COLUMNS
            if result.lesion_uncertainty is not None:
                columns = (*LESION_COLUMNS, *UNCERTAINTY_COLUMNS)
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(lesion_rows(result))
        outputs = ["lesions.nii.gz", "pet_suv.nii.gz", "lesions.csv", "report.json"]
        if result.physiological is not None:
            outputs.extend(_write_removed(tmp, study, result, report))
        if mip:
            _write_mip(tmp / "mip.png", study, result, synthetic=report["synthetic"])
            outputs.append("mip.png")
        if rtstruct and study.dicom is not None:
            from petseg.io.export import export_lesions_for_study

            written = export_lesions_for_study(tmp, result.labels, study, rtstruct=True)
            outputs.extend(p.name for p in written)
        if extras is not None:
            outputs.extend(extras(tmp))
        report["outputs"] = outputs
        (tmp / "report.json").write_text(
            json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    return Path(out_dir)


def _write_mip(path: Path, study: Study, result: SegmentationResult, *, synthetic: bool) -> None:
    """``mip.png``: the PET's MIPs with the lesions and the reference VOI outlined."""
    from petseg.mip import render_mip

    title = f"{study.patient_id} — {result.method}: {result.patient.lesion_count} lesions, TTV {result.patient.total_tumour_volume_ml:.1f} mL"
    if synthetic:
        title += " (SYNTHETIC phantom)"
    render_mip(
        path,
        study.pet,
        result.labels,
        study.geometry,
        title=title,
        overlays=reference_overlay(result),
    )


def _write_removed(
    folder: Path, study: Study, result: SegmentationResult, report: dict[str, Any]
) -> list[str]:
    """``removed.nii.gz``, ``removed.csv`` and ``organ_map.nii.gz`` of a segmentation whose
    physiological uptake was removed with an organ map."""
    from petseg.io.nifti import write_nifti

    assert result.physiological is not None
    write_nifti(folder / "removed.nii.gz", result.physiological.removed, study.geometry)
    rows = report.get("organs", {}).get("removed", [])
    with open(folder / "removed.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REMOVED_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    names = ["removed.nii.gz", "removed.csv"]
    if result.organ_map is not None:
        write_nifti(folder / "organ_map.nii.gz", result.organ_map.labels, study.geometry)
        names.append("organ_map.nii.gz")
    return names

"""What the review page is served besides JSON: images as NIfTI bytes, the coronal MIP,
the reference sphere and a case's display metadata."""

from __future__ import annotations

from typing import Any

import numpy as np
from isal import igzip
from numpy.typing import NDArray

from petseg.review.cases import CaseData
from petseg.review.versions import case_status
from petseg.study import Geometry

__all__ = [
    "case_meta",
    "coronal_mip_bytes",
    "labels_nifti_bytes",
    "reference_voi",
    "review_first_labels",
    "volume_nifti_bytes",
]


def volume_nifti_bytes(volume: NDArray[np.generic], affine_lps_kji: NDArray[np.float64]) -> bytes:
    """Gzipped NIfTI-1 (fast compression) of a ``(Z, Y, X)`` volume, for the page only.

    The voxel order on disk is ``i`` fastest, so flat index ``n`` in the file is flat
    index ``n`` of the C-ordered ``(Z, Y, X)`` array — the page patches label maps in
    place. The affine conversion is :func:`petseg.io.nifti.lps_kji_to_ras_ijk`, the one
    used for the case's PET file.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Image or label map.
    affine_lps_kji : (4, 4) float ndarray
        Voxel index (k, j, i) to patient LPS mm.

    Returns
    -------
    bytes
    """
    import nibabel as nib

    from petseg.io.nifti import lps_kji_to_ras_ijk

    affine = lps_kji_to_ras_ijk(affine_lps_kji)
    img = nib.Nifti1Image(np.asarray(volume).transpose(2, 1, 0), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_slope_inter(1.0, 0.0)
    return igzip.compress(img.to_bytes(), compresslevel=1)


def labels_nifti_bytes(labels: NDArray[np.integer], affine_lps_kji: NDArray[np.float64]) -> bytes:
    """:func:`volume_nifti_bytes` of a label map in the smallest unsigned type that fits.

    Parameters
    ----------
    labels : (Z, Y, X) integer ndarray
        Label map (0 background).
    affine_lps_kji : (4, 4) float ndarray
        Voxel index (k, j, i) to patient LPS mm.

    Returns
    -------
    bytes
    """
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int32
    return volume_nifti_bytes(np.asarray(labels, dtype=dtype), affine_lps_kji)


def reference_voi(report: dict[str, Any], geometry: Geometry) -> dict[str, Any] | None:
    """The report's reference sphere as the page draws it: centre in voxel indices
    ``(k, j, i)`` and radius in mm; None for a mask VOI or a method without one.

    Parameters
    ----------
    report : dict
        The case's ``report.json``.
    geometry : Geometry
        The PET grid (spacing in mm).

    Returns
    -------
    dict or None
        ``organ``, ``automatic``, ``centre_kji`` and ``radius_mm``.
    """
    reference = report.get("reference")
    parameters = report.get("parameters")
    if not isinstance(reference, dict) or not isinstance(parameters, dict):
        return None  # a method without a reference VOI (or a report petseg did not write)
    automatic = reference.get("automatic")
    if isinstance(automatic, dict):
        centre = geometry.patient_to_index(automatic["centre_mm"])
        radius = float(automatic["radius_mm"])
    elif parameters.get("ref_sphere"):
        a, b, c, radius = (float(v) for v in parameters["ref_sphere"])
        voxel = parameters.get("ref_units") == "voxel"
        centre = np.array([a, b, c]) if voxel else geometry.patient_to_index([a, b, c])
    else:
        return None
    return {
        "organ": reference.get("organ"),
        "automatic": bool(automatic),
        "centre_kji": [round(float(v), 2) for v in centre],
        "radius_mm": radius,
    }


def coronal_mip_bytes(suv: NDArray[np.float32]) -> bytes:
    """Coronal MIP as served: float32 (Z, X) SUV maxima along j, then int16 (Z, X) argmax j.

    Parameters
    ----------
    suv : (Z, Y, X) float32 ndarray
        PET in SUVbw (g/mL).

    Returns
    -------
    bytes
    """
    mip = suv.max(axis=1).astype(np.float32)
    depth = suv.argmax(axis=1).astype(np.int16)
    return mip.tobytes() + depth.tobytes()


def review_first_labels(report: dict[str, Any]) -> list[int]:
    """Labels of the result's lesions flagged ``review_first`` (:mod:`petseg.uncertainty`).

    Parameters
    ----------
    report : dict
        The case's ``report.json``; results without ensemble uncertainty flag nothing.

    Returns
    -------
    list of int, ascending.
    """
    lesions = report.get("lesions") or []
    return sorted(int(row["label"]) for row in lesions if row.get("review_first") is True)


def case_meta(case: CaseData, preview_step: int) -> dict[str, Any]:
    """What the page needs to display a case: shape, spacing (mm), SUV window (g/mL),
    reference, MIP orientation and the reduction factor of its first view.

    Parameters
    ----------
    case : CaseData
        The case's images and report.
    preview_step : int
        Reduction factor of the first view (1: full resolution).

    Returns
    -------
    dict
    """
    suv = case.suv
    sample = suv.ravel()[:: max(1, suv.size // 2_000_000)]  # display window: a sample will do
    positive = sample[sample > 0]
    high = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    affine = case.geometry.affine
    return {
        "case_id": case.case_id,
        "shape_zyx": list(case.geometry.shape),
        "spacing_mm_zyx": list(case.geometry.spacing),
        "has_ct": case.has_ct,
        "suv_max": float(suv.max()),
        "suv_window": [0.0, max(5.0, round(high, 1))],
        "reference": case.report.get("reference"),
        "reference_voi": reference_voi(case.report, case.geometry),
        "threshold_suv": case.report.get("threshold_suv"),
        "method": case.report.get("method"),
        "synthetic": bool(case.report.get("synthetic", False)),
        "preview_step": preview_step,
        "dicom": bool((case.report.get("inputs") or {}).get("dicom")),
        "removed_count": len(case.removed_components()) if case.removed is not None else 0,
        # a fold ensemble's disagreement (petseg.uncertainty): the voxel map, flagged lesions
        "has_uncertainty": (case.folder / "uncertainty.nii.gz").is_file(),
        "review_first": review_first_labels(case.report),
        # saved versions made on an earlier segmentation of the case (kept, not shown)
        "older_result_versions": case_status(case.folder, case.case_id)["older_result_versions"],
        # coronal MIP display: superior at the top, patient's right on the viewer's left
        "mip": {
            "flip_rows": bool(affine[2, 0] > 0),
            "flip_cols": bool(affine[0, 2] < 0),
            "aspect": case.geometry.spacing[0] / case.geometry.spacing[2],
        },
    }

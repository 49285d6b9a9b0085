"""Import DICOM RT Structure Sets: rasterise ROI contours onto an image grid.

Rules (see ``docs/io.md``):

* The structure set is associated with the image by Frame of Reference UID (top-level
  Referenced Frame of Reference Sequence) or by the referenced Series Instance UID,
  never by SOP Instance UID (contours often reference instances that no longer exist).
  The ROI-level Referenced Frame of Reference UID (3006,0024) is not required to match.
* Contour points are placed by their patient coordinates (LPS mm) through the grid's
  affine. A contour plane belongs to the slice whose centre is within half a slice
  spacing of it; planes outside the grid are dropped (the ROI is clipped to the grid).
* A voxel is inside when its centre is strictly inside the polygon (matplotlib's
  even-odd ray test); several contours on one slice combine with the even-odd (XOR)
  rule, which also cuts holes.
* Only ``CLOSED_PLANAR`` contours (and single ``POINT`` markers, ignored) are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.checks import did_you_mean
from petseg.study import Geometry

__all__ = [
    "RtstructError",
    "import_rtstruct",
    "rasterise_contours",
    "read_rtstruct",
    "rtstruct_roi_names",
]


class RtstructError(ValueError):
    """The structure set cannot be used on this grid (wrong frame, unknown ROI, bad contour)."""


def _read(path: str | os.PathLike[str]) -> Any:
    import pydicom

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RT Structure Set {path} does not exist")
    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError) as err:
        raise RtstructError(
            f"{path} is not a readable DICOM file ({type(err).__name__}: {err}); pass the "
            "RTSTRUCT file (often RS*.dcm)"
        ) from None
    if str(ds.get("Modality", "")) != "RTSTRUCT" or "ROIContourSequence" not in ds:
        raise RtstructError(
            f"{path} is not an RT Structure Set (Modality {ds.get('Modality')!r}); "
            "pass the RTSTRUCT file (often RS*.dcm)"
        )
    return ds


def rtstruct_roi_names(ds: Any) -> dict[int, str]:
    """ROI Number → ROI Name from the Structure Set ROI Sequence, in file order.

    Parameters
    ----------
    ds : pydicom.Dataset
        An RT Structure Set.

    Returns
    -------
    dict of int to str
        ROI Number (3006,0022) → ROI Name (3006,0026).
    """
    return {
        int(item.ROINumber): str(item.ROIName) for item in ds.get("StructureSetROISequence", [])
    }


def _referenced_uids(ds: Any) -> tuple[set[str], set[str]]:
    frames, series = set(), set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        frames.add(str(frame.get("FrameOfReferenceUID", "")))
        for study in frame.get("RTReferencedStudySequence", []):
            for ref in study.get("RTReferencedSeriesSequence", []):
                series.add(str(ref.get("SeriesInstanceUID", "")))
    return frames - {""}, series - {""}


def _contour_points(contour: Any, path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """Contour Data (3006,0050) as (N, 3) LPS mm, parsed from the raw bytes when possible.

    pydicom's per-value DS objects cost ~10 µs each; a GTV has ~10^5 values.
    """
    raw = contour.get_item(0x30060050)
    if raw is None:
        raise RtstructError(f"{path}: a contour has no Contour Data (3006,0050)")
    value = raw.value
    if isinstance(value, bytes):
        text = value.decode("ascii").strip(" \x00")
        data = np.asarray(text.split("\\"), dtype=np.float64)
    else:
        data = np.asarray([float(v) for v in value], dtype=np.float64)
    if data.size % 3:
        raise RtstructError(f"{path}: Contour Data has {data.size} values, not a multiple of 3")
    return data.reshape(-1, 3)


def rasterise_contours(
    contours: Sequence[NDArray[np.floating]], geometry: Geometry
) -> NDArray[np.bool_]:
    """Fill closed planar contours on ``geometry`` (voxel-centre-inside, even-odd rule).

    Parameters
    ----------
    contours : sequence of (N, 3) float arrays
        Polygon vertices in LPS mm, one array per contour, each on one plane that is
        parallel to the grid's slices.
    geometry : Geometry
        Target grid.

    Returns
    -------
    (Z, Y, X) bool ndarray

    Raises
    ------
    RtstructError
        A contour that is not parallel to the slices (its points span more than half a
        slice spacing along axis 0).
    """
    from matplotlib.path import Path as PolygonPath

    mask = np.zeros(geometry.shape, dtype=bool)
    n_slices, n_rows, n_cols = geometry.shape
    for number, points in enumerate(contours):
        if len(points) < 3:
            continue
        index = geometry.patient_to_index(np.asarray(points, dtype=np.float64))
        plane = float(np.mean(index[:, 0]))
        if np.ptp(index[:, 0]) > 0.5:
            raise RtstructError(
                f"contour {number} is not parallel to the image slices (its points span "
                f"{np.ptp(index[:, 0]):.2f} slices); the structure set does not fit this grid"
            )
        k = int(np.floor(plane + 0.5))
        if not 0 <= k < n_slices or abs(plane - k) > 0.5:
            continue
        ji = index[:, 1:]
        j0 = max(int(np.ceil(ji[:, 0].min())), 0)
        j1 = min(int(np.floor(ji[:, 0].max())), n_rows - 1)
        i0 = max(int(np.ceil(ji[:, 1].min())), 0)
        i1 = min(int(np.floor(ji[:, 1].max())), n_cols - 1)
        if j1 < j0 or i1 < i0:
            continue
        jj, ii = np.mgrid[j0 : j1 + 1, i0 : i1 + 1]
        centres = np.column_stack([jj.ravel(), ii.ravel()]).astype(np.float64)
        inside = PolygonPath(ji, closed=False).contains_points(centres)
        mask[k, j0 : j1 + 1, i0 : i1 + 1] ^= inside.reshape(jj.shape)
    return mask


def read_rtstruct(
    path: str | os.PathLike[str],
    geometry: Geometry,
    roi: str | Sequence[str] | None = None,
    *,
    frame_of_reference_uid: str | None = None,
    series_uid: str | None = None,
) -> dict[str, NDArray[np.bool_]]:
    """Rasterise the ROIs of an RT Structure Set onto ``geometry``.

    Parameters
    ----------
    path : path
        The RTSTRUCT file.
    geometry : Geometry
        The image grid (e.g. ``study.geometry``).
    roi : str or sequence of str, optional
        ROI name(s) to read (exact match); default all ROIs.
    frame_of_reference_uid, series_uid : str, optional
        The image's Frame of Reference UID and Series Instance UID. When either is
        given, the structure set must reference that frame (top-level Referenced Frame
        of Reference Sequence) or that series; otherwise a RtstructError is raised.

    Returns
    -------
    dict of str to (Z, Y, X) bool ndarray
        One mask per ROI, in the order of the Structure Set ROI Sequence.
    """
    ds = _read(path)
    if frame_of_reference_uid or series_uid:
        frames, series = _referenced_uids(ds)
        if not (
            (frame_of_reference_uid and frame_of_reference_uid in frames)
            or (series_uid and series_uid in series)
        ):
            raise RtstructError(
                f"{path} does not belong to this image: it references frame(s) of reference "
                f"{sorted(frames)} and series {sorted(series)}, the image has frame "
                f"{frame_of_reference_uid} and series {series_uid}; pass the structure set "
                "drawn on this image (or its registered copy)"
            )
    names = rtstruct_roi_names(ds)
    wanted = list(names.values()) if roi is None else [roi] if isinstance(roi, str) else list(roi)
    for name in wanted:
        if name not in names.values():
            raise RtstructError(
                f"ROI {name!r} is not in {path}; available ROIs: {sorted(names.values())}{did_you_mean(name, names.values())}"
            )
    contours_by_roi: dict[int, list[NDArray[np.float64]]] = {}
    for item in ds.ROIContourSequence:
        number = int(item.ReferencedROINumber)
        if number not in names:
            raise RtstructError(
                f"{path}: an ROI Contour item references ROI Number {number}, which the "
                f"Structure Set ROI Sequence (3006,0020) does not define (ROI numbers: "
                f"{sorted(names)}); fix Referenced ROI Number (3006,0084) in the structure set"
            )
        for contour in item.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR"))
            if kind == "POINT":
                continue
            if kind != "CLOSED_PLANAR":
                raise RtstructError(
                    f"{path}: ROI {names.get(number, number)!r} has a {kind} contour; only "
                    "CLOSED_PLANAR contours can be filled"
                )
            contours_by_roi.setdefault(number, []).append(_contour_points(contour, path))
    masks: dict[str, NDArray[np.bool_]] = {}
    for number, name in names.items():
        if name in wanted and name not in masks:
            contours = contours_by_roi.get(number, [])
            _check_on_grid(contours, geometry, f"{path}: ROI {name!r}")
            masks[name] = rasterise_contours(contours, geometry)
    return masks


def _check_on_grid(contours: Sequence[NDArray[np.float64]], geometry: Geometry, what: str) -> None:
    """Refuse contours none of whose points lies on the grid (another image or patient).

    Parameters
    ----------
    contours : sequence of (N, 3) float ndarray
        Contour points in patient coordinates (LPS mm).
    geometry : Geometry
        The image grid.
    what : str
        The file and ROI, for the error.
    """
    if not contours:
        return
    points = np.concatenate(contours)
    index = geometry.patient_to_index(points)
    inside = np.all((index >= -0.5) & (index <= np.asarray(geometry.shape) - 0.5), axis=1)
    if not inside.any():
        low, high = points.min(axis=0), points.max(axis=0)
        corners = geometry.index_to_patient(np.array([[0, 0, 0], np.asarray(geometry.shape) - 1]))
        raise RtstructError(
            f"{what}: none of its {len(points)} contour points lies on the reference grid "
            f"(contours span {np.round(low, 1).tolist()} to {np.round(high, 1).tolist()} mm, "
            f"the grid {np.round(corners.min(axis=0), 1).tolist()} to "
            f"{np.round(corners.max(axis=0), 1).tolist()} mm): the reference is another image "
            "or patient; pass the image the structure set was drawn on"
        )


def _reference_geometry(reference: Path, rtstruct: Any) -> tuple[Geometry, dict[str, Any]]:
    """Grid of the reference image: a NIfTI file, or the DICOM series the RTSTRUCT refers to."""
    from petseg.io.nifti import read_nifti_geometry

    if reference.is_file() and reference.name.endswith((".nii", ".nii.gz")):
        return read_nifti_geometry(reference), {"reference": str(reference)}
    from petseg.io.dicom import image_series, series_geometry

    frames, referenced_series = _referenced_uids(rtstruct)
    images = image_series(reference)
    chosen = [s for s in images if s.series_uid in referenced_series]
    if not chosen:
        chosen = [s for s in images if s.frame_of_reference_uid in frames]
        if len(chosen) > 1:
            chosen = [s for s in chosen if s.modality == "PT"] or chosen
    if len(chosen) != 1:
        listing = "; ".join(s.summary() for s in images) or "none"
        raise RtstructError(
            f"cannot tell which image series in {reference} the structure set belongs to "
            f"(it references series {sorted(referenced_series)} and frames {sorted(frames)}); "
            f"image series found: {listing}. Pass a folder holding only that series, or a "
            "NIfTI file of the grid"
        )
    series = chosen[0]
    geometry, _ = series_geometry(list(series.datasets), list(series.files), name=series.summary())
    return geometry, {
        "reference": str(reference),
        "series_instance_uid": series.series_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid,
    }


def import_rtstruct(
    rtstruct: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    roi: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Rasterise an RT Structure Set onto a reference image grid and write NIfTI labels.

    With ``roi`` the output is a 0/1 mask of that ROI; without it, every ROI becomes a
    label 1..N in the order of the Structure Set ROI Sequence (where ROIs overlap the
    later ROI wins). A JSON sidecar (``out`` with ``.json`` instead of ``.nii[.gz]``)
    holds the legend, voxel counts and volumes (mL), inputs and petseg version.

    Parameters
    ----------
    rtstruct : path
        The RTSTRUCT file.
    reference : path
        DICOM folder holding the image series the structure set refers to, or a NIfTI
        image whose grid to use.
    out : path
        Output ``.nii.gz`` (or ``.nii``).
    roi : str, optional
        One ROI name; default all.
    force : bool
        Replace existing outputs.

    Returns
    -------
    dict
        The sidecar's content.
    """
    from petseg import __version__
    from petseg.io.atomic import check_writable_target, write_json_atomic
    from petseg.io.nifti import write_nifti

    out = Path(out)
    if not out.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"output {out} must end in .nii.gz or .nii")
    sidecar = out.with_name(out.name.removesuffix(".gz").removesuffix(".nii") + ".json")
    check_writable_target(out, force, inputs=(rtstruct, reference))
    check_writable_target(sidecar, force, inputs=(rtstruct, reference))
    ds = _read(rtstruct)
    geometry, reference_info = _reference_geometry(Path(reference), ds)
    masks = read_rtstruct(rtstruct, geometry, roi)
    labels = np.zeros(geometry.shape, dtype=np.uint8 if len(masks) < 256 else np.int16)
    legend = []
    for value, (name, mask) in enumerate(masks.items(), start=1):
        labels[mask] = value
        legend.append(
            {
                "label": value,
                "roi_name": name,
                "voxels": int(mask.sum()),
                "volume_ml": round(float(mask.sum()) * geometry.voxel_volume_ml, 6),
            }
        )
    record = {
        "petseg_version": __version__,
        "command": "petseg import rtstruct",
        "inputs": {"rtstruct": str(rtstruct), **reference_info},
        "parameters": {"roi": roi, "inside_rule": "voxel centre inside polygon, even-odd"},
        "geometry": geometry.to_dict(),
        "labels": legend,
    }
    write_nifti(out, labels, geometry, force=force)
    write_json_atomic(sidecar, record, force=force)
    return record

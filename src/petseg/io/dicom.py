"""DICOM image series: discovery in a folder tree, geometry, and reading to a volume.

Slices are sorted by Image Position (Patient) projected on the slice normal
``n = row cosine × column cosine`` (from Image Orientation (Patient)); the slice spacing
comes from these positions, never from Slice Thickness. Rescale Slope/Intercept are
applied per slice. Any orthonormal orientation is supported: the affine carries it.

The affine columns (petseg's ``(k, j, i)`` index order) are
``axis0 = n × dz`` (direction of increasing sorted position), ``axis1 = column cosine ×
PixelSpacing[0]`` (row spacing), ``axis2 = row cosine × PixelSpacing[1]`` (column
spacing); the translation is the Image Position (Patient) of the first sorted slice.

Refused, with an error naming the series and the positions: slices with different
orientation, matrix or pixel spacing; duplicate positions; gaps that differ from the
median spacing by more than 1 %; slices not stacked along their normal (gantry tilt);
multi-frame (enhanced) images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.study import DicomSource, Geometry

__all__ = [
    "SPACING_TOLERANCE",
    "DicomSeries",
    "DicomVolume",
    "dicom_source",
    "discover_series",
    "read_series",
    "series_geometry",
]

#: Largest allowed relative deviation of a slice gap from the median gap.
SPACING_TOLERANCE = 0.01

_DISCOVERY_TAGS = [
    "SOPClassUID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "Manufacturer",
    "NumberOfFrames",
    "ImagePositionPatient",
]


@dataclass(frozen=True)
class DicomSeries:
    """One series found by :func:`discover_series` (headers only; nothing decoded)."""

    series_uid: str
    modality: str
    description: str
    files: tuple[Path, ...]
    study_uid: str = ""
    frame_of_reference_uid: str = ""
    patient_id: str = ""
    manufacturer: str = ""

    def summary(self) -> str:
        """One line naming the series for error messages."""
        return (
            f"{self.modality} series {self.series_uid} ({self.description or 'no description'}, "
            f"{len(self.files)} files, in {os.path.commonpath([str(f) for f in self.files])})"
        )


@dataclass
class DicomVolume:
    """A read image series.

    Attributes
    ----------
    array : (Z, Y, X) float32 ndarray
        Rescaled values (stored × slope + intercept, per slice).
    geometry : Geometry
    files : list of Path
        The instances in sorted slice order (index ``k``).
    headers : list of pydicom.Dataset
        Headers of the sorted instances (without pixel data).
    """

    array: NDArray[np.float32]
    geometry: Geometry
    files: list[Path]
    headers: list[Any] = field(repr=False)


def _iter_files(folder: Path) -> Iterable[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if name.upper() == "DICOMDIR" or name.startswith("."):
                continue
            yield Path(root) / name


def discover_series(folder: str | os.PathLike[str]) -> list[DicomSeries]:
    """Find the DICOM series in ``folder`` (searched recursively).

    Files that are not DICOM are skipped. Series are returned sorted by modality and
    description.

    Raises
    ------
    NotADirectoryError
        If ``folder`` is not a directory.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of DICOM files")
    found: dict[str, dict[str, Any]] = {}
    for path in _iter_files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_DISCOVERY_TAGS)
        except (InvalidDicomError, OSError, EOFError):
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        if not uid or "SOPClassUID" not in ds:
            continue
        entry = found.setdefault(
            uid,
            {
                "series_uid": uid,
                "modality": str(ds.get("Modality", "") or ""),
                "description": str(ds.get("SeriesDescription", "") or ""),
                "files": [],
                "study_uid": str(ds.get("StudyInstanceUID", "") or ""),
                "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "") or ""),
                "patient_id": str(ds.get("PatientID", "") or ""),
                "manufacturer": str(ds.get("Manufacturer", "") or ""),
            },
        )
        entry["files"].append(path)
    series = [DicomSeries(**{**e, "files": tuple(e["files"])}) for e in found.values()]
    return sorted(series, key=lambda s: (s.modality, s.description, s.series_uid))


def _floats(ds: Any, keyword: str, count: int, path: Path) -> NDArray[np.float64]:
    value = ds.get(keyword)
    if value is None or len(value) != count:
        raise ValueError(
            f"{path}: {keyword} is missing or does not have {count} values (found {value!r}); "
            "petseg needs it to place the image in patient space"
        )
    return np.array([float(v) for v in value], dtype=np.float64)


def series_geometry(
    headers: Sequence[Any], files: Sequence[Path], *, name: str = "series"
) -> tuple[Geometry, list[int]]:
    """Geometry of a single-frame image series and the sorting order of its instances.

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        One per instance (pixel data not needed).
    files : sequence of Path
        Their paths, for error messages.
    name : str
        Names the series in error messages.

    Returns
    -------
    geometry : Geometry
    order : list of int
        Indices into ``headers`` in ascending position along the slice normal.

    Raises
    ------
    ValueError
        Mixed orientations/matrices/spacings, duplicate or irregular slice positions,
        gantry tilt, or multi-frame instances.
    """
    if not headers:
        raise ValueError(f"{name}: no image instances")
    for ds, path in zip(headers, files, strict=True):
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ValueError(
                f"{path}: multi-frame (enhanced) images are not supported; "
                "convert the series to single-frame instances (e.g. with dcm2dcm/emf2sf)"
            )
    iop = _floats(headers[0], "ImageOrientationPatient", 6, files[0])
    spacing = _floats(headers[0], "PixelSpacing", 2, files[0])
    rows, cols = int(headers[0].Rows), int(headers[0].Columns)
    for ds, path in zip(headers[1:], files[1:], strict=True):
        other = _floats(ds, "ImageOrientationPatient", 6, path)
        if not np.allclose(other, iop, atol=1e-4):
            raise ValueError(
                f"{name}: {path} has Image Orientation (Patient) {other.tolist()} but "
                f"{files[0]} has {iop.tolist()}; a series must have one orientation"
            )
        if not np.allclose(_floats(ds, "PixelSpacing", 2, path), spacing, rtol=1e-4):
            raise ValueError(f"{name}: {path} has a different Pixel Spacing than {files[0]}")
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise ValueError(
                f"{name}: {path} is {ds.Rows}x{ds.Columns} but {files[0]} is {rows}x{cols}"
            )
    row_cos = iop[:3] / np.linalg.norm(iop[:3])
    col_cos = iop[3:] / np.linalg.norm(iop[3:])
    if abs(float(row_cos @ col_cos)) > 1e-3:
        raise ValueError(
            f"{name}: Image Orientation (Patient) {iop.tolist()} is not orthogonal "
            f"(row·column = {float(row_cos @ col_cos):.4f})"
        )
    normal = np.cross(row_cos, col_cos)
    positions = np.array(
        [_floats(ds, "ImagePositionPatient", 3, p) for ds, p in zip(headers, files, strict=True)]
    )
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    along = along[order]
    positions = positions[order]
    if len(order) == 1:
        first = headers[0]
        dz = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 0.0)
        if not dz > 0:
            raise ValueError(
                f"{name}: single slice without Spacing Between Slices or Slice Thickness; "
                "cannot give it a thickness"
            )
    else:
        gaps = np.diff(along)
        median = float(np.median(gaps))
        bad = np.flatnonzero((gaps <= 1e-6) | (np.abs(gaps - median) > SPACING_TOLERANCE * median))
        if bad.size:
            listing = ", ".join(
                f"{files[order[b]].name} at {along[b]:.3f} mm → "
                f"{files[order[b + 1]].name} at {along[b + 1]:.3f} mm (gap {gaps[b]:.3f})"
                for b in bad[:5]
            )
            raise ValueError(
                f"{name}: irregular slice spacing (median gap {median:.3f} mm, tolerance "
                f"{SPACING_TOLERANCE:.0%}): {listing}{' ...' if bad.size > 5 else ''}. "
                "Duplicate or missing slices: remove duplicates, or export the complete "
                "series (petseg does not interpolate missing slices)"
            )
        dz = float((along[-1] - along[0]) / (len(along) - 1))
        offsets = positions - positions[0] - np.outer(along - along[0], normal)
        worst = float(np.abs(offsets).max())
        if worst > max(0.01 * dz, 1e-3) + 0.01 * float(spacing.min()):
            raise ValueError(
                f"{name}: slice positions are not stacked along the slice normal "
                f"(in-plane drift up to {worst:.3f} mm; gantry tilt?); resample the series "
                "to a regular grid first"
            )
    affine = np.eye(4)
    affine[:3, 0] = normal * dz
    affine[:3, 1] = col_cos * spacing[0]
    affine[:3, 2] = row_cos * spacing[1]
    affine[:3, 3] = positions[0]
    return Geometry(affine, (len(order), rows, cols)), order


def dicom_source(datasets: Sequence[Any], files: Sequence[Path] = ()) -> DicomSource:
    """Sort the headers of one single-frame image series into a :class:`DicomSource`.

    Parameters
    ----------
    datasets : sequence of pydicom.Dataset
        The instances of one series (pixel data not needed), in any order.
    files : sequence of Path, optional
        Their files, in the same order as ``datasets`` (names them in errors).

    Raises
    ------
    ValueError
        Several series or Frames of Reference, or no Frame of Reference UID.
    """
    datasets = list(datasets)
    paths = [Path(f) for f in files] or [Path(f"instance {n}") for n in range(len(datasets))]
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    frames = {str(ds.get("FrameOfReferenceUID", "")) for ds in datasets}
    if len(uids) != 1 or len(frames) != 1 or "" in frames:
        raise ValueError(
            f"reference images must be one series with one Frame of Reference UID; got "
            f"series {sorted(uids)} and frames {sorted(frames)} (first file {paths[0]})"
        )
    geometry, order = series_geometry(datasets, paths, name=f"reference series {uids.pop()}")
    return DicomSource(
        headers=tuple(datasets[i] for i in order),
        geometry=geometry,
        files=tuple(paths[i] for i in order) if files else (),
    )


def read_series(
    files: Sequence[str | os.PathLike[str]] | DicomSeries, *, name: str | None = None
) -> DicomVolume:
    """Read a single-frame image series into a ``(Z, Y, X)`` float32 volume.

    Parameters
    ----------
    files : sequence of paths, or DicomSeries
        The instances of one series, in any order.
    name : str, optional
        Names the series in error messages (default: its summary / first file).

    Returns
    -------
    DicomVolume
        Rescaled values (stored × RescaleSlope + RescaleIntercept, slice by slice).
    """
    import pydicom

    if isinstance(files, DicomSeries):
        name = name or files.summary()
        paths = [Path(f) for f in files.files]
    else:
        paths = [Path(f) for f in files]
        name = name or (f"series in {paths[0].parent}" if paths else "series")
    datasets = [pydicom.dcmread(p) for p in paths]
    geometry, order = series_geometry(datasets, paths, name=name)
    volume = np.empty(geometry.shape, dtype=np.float32)
    for k, index in enumerate(order):
        ds = datasets[index]
        try:
            pixels = ds.pixel_array
        except Exception as err:  # pydicom raises several types for undecodable data
            raise ValueError(f"{paths[index]}: cannot decode Pixel Data: {err}") from err
        if pixels.shape != geometry.shape[1:]:
            raise ValueError(
                f"{paths[index]}: Pixel Data has shape {pixels.shape}, expected "
                f"{geometry.shape[1:]} (Rows, Columns)"
            )
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        volume[k] = pixels.astype(np.float64) * slope + intercept
        del ds.PixelData
    return DicomVolume(
        array=volume,
        geometry=geometry,
        files=[paths[i] for i in order],
        headers=[datasets[i] for i in order],
    )

"""What the RTSTRUCT and SEG writers share: the reference series, patient and study
identity, ROI names and colours, the lesion map, and the result of an export.

Rules (see ``docs/dicom-export.md``):

* The lesion map must lie on the PET series grid, up to axis order and direction (a
  NIfTI written in another orientation is reordered, never resampled).
* Patient and study identity are copied from the PET series; a copied value that is
  invalid for its VR (e.g. an 18-character Study ID, VR SH allows 16) is left empty
  rather than truncated, and :func:`identity_problems` reports it.
* An empty lesion map is refused (:class:`EmptyLesionMapError`): an RT Structure Set
  needs at least one ROI and a SEG at least one segment.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.contours import align_to_grid
from petseg.io.atomic import atomic_file, check_writable_target
from petseg.io.dicom import dicom_source, image_series
from petseg.lesions import as_label_map
from petseg.study import DicomSource, Geometry

__all__ = [
    "GENERATION_ALGORITHMS",
    "IDENTITY_TYPE2",
    "IDENTITY_TYPE3",
    "EmptyLesionMapError",
    "ExportResult",
    "align_to_reference",
    "as_reference",
    "check_export_paths",
    "copy_identity",
    "export_lesion_map",
    "identity_cleaned",
    "identity_problems",
    "lesion_colors",
    "lesion_names",
    "lesion_roi_name",
    "read_lesion_map",
    "read_reference_series",
    "save_dataset",
    "write_dataset",
]

#: ROI Generation Algorithm (3006,0036) and Segment Algorithm Type (0062,0008) terms.
GENERATION_ALGORITHMS = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")

#: Type 2 identity attributes (Patient and General Study modules): always written,
#: empty when the reference lacks them or holds a value invalid for the VR.
IDENTITY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
#: Type 3 identity attributes: copied when present and valid.
IDENTITY_TYPE3 = (
    "IssuerOfPatientID",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDescription",
)
#: Modalities of series that are not images to reference.


class EmptyLesionMapError(ValueError):
    """The lesion map has no lesion, so there is nothing to export.

    Parameters
    ----------
    message : str, optional
        The error message (default: the map is all 0, nothing to export).
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "the lesion map has no lesion (all voxels are 0): there is nothing to export"
        )


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    path : Path
        The written file.
    n_rois : int
        ROIs (RTSTRUCT) or segments (SEG).
    n_contours : int
        Contours written (RTSTRUCT; 0 for SEG).
    notes : list of str
        Reference values not copied (see :func:`identity_problems`).
    """

    path: Path
    n_rois: int
    n_contours: int
    notes: list[str]


def read_reference_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> DicomSource:
    """Read the headers of the PET (or other image) series to reference.

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        A folder (searched recursively) holding the series, or its instance files.
        A folder with several image series must hold exactly one PET series.

    Returns
    -------
    DicomSource
        The headers sorted by slice, without pixel data, and the series grid.

    Raises
    ------
    ValueError
        No image series, or several and not exactly one PET series.
    """
    import pydicom

    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        series = image_series(folder)
        if len(series) > 1:
            series = [s for s in series if s.modality == "PT"] or series
        if len(series) != 1:
            listing = "; ".join(s.summary() for s in series) or "no image series"
            raise ValueError(
                f"{folder}: need exactly one PET image series to reference, found {listing}; "
                "pass the folder of the PET series itself"
            )
        return dicom_source(series[0].datasets, series[0].files)  # read once, headers only
    files = [Path(f) for f in source]
    if not files:
        raise ValueError("no reference DICOM files given")
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    return dicom_source(headers, files)


def as_reference(
    reference: DicomSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> DicomSource:
    """``reference`` itself when it is a :class:`DicomSource`, else the series read
    from the folder or files (:func:`read_reference_series`).

    Parameters
    ----------
    reference : DicomSource, path or sequence of paths
        The PET series, already read or as its folder or files.

    Returns
    -------
    DicomSource
    """
    if isinstance(reference, DicomSource):
        return reference
    return read_reference_series(reference)


def align_to_reference(
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | Sequence[Any],
) -> tuple[NDArray[np.integer], DicomSource]:
    """The lesion map reordered onto the reference series grid.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map: 0 = background, one positive label per lesion.
    geometry : Geometry
        Grid of ``labels``; must be the reference grid up to axis order and direction.
    reference : DicomSource or sequence of pydicom.Dataset
        Headers of the PET series (any order if datasets are given).

    Returns
    -------
    aligned : (Z, Y, X) int ndarray
        ``labels`` on ``source.geometry`` (a view when possible).
    source : DicomSource
        The reference, sorted by slice.

    Raises
    ------
    ValueError
        The grids are not the same voxels up to axis order and direction.
    """
    source = reference if isinstance(reference, DicomSource) else dicom_source(reference)
    aligned = np.asarray(align_to_grid(np.asarray(labels), geometry, source.geometry))
    return aligned, source


def read_lesion_map(path: str | os.PathLike[str]) -> tuple[NDArray[np.integer], Geometry]:
    """Read a lesion-map NIfTI file.

    Parameters
    ----------
    path : str or os.PathLike
        ``lesions.nii.gz``: integer labels, 0 = background.

    Returns
    -------
    labels : (Z, Y, X) int ndarray
    geometry : Geometry

    Raises
    ------
    ValueError
        Labels that are not whole numbers ≥ 0 (the message names the file).
    """
    from petseg.io.nifti import read_nifti

    array, geometry = read_nifti(path)
    return as_label_map(array, str(path)), geometry


def check_export_paths(
    lesions: str | os.PathLike[str],
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    force: bool,
) -> None:
    """Refuse an output that exists (unless ``force``) or that is or holds an input.

    Parameters
    ----------
    lesions : str or os.PathLike
        The lesion-map file.
    reference : str, os.PathLike or sequence of them
        The PET series folder or files.
    out : str or os.PathLike
        The file to write.
    force : bool
        Whether an existing output may be replaced.

    Raises
    ------
    petseg.io.atomic.OutputExistsError, petseg.io.atomic.InputOverlapError
        See :func:`petseg.io.atomic.check_writable_target`.
    """
    sources = [reference] if isinstance(reference, str | os.PathLike) else list(reference)
    check_writable_target(Path(out), force, inputs=[Path(lesions), *sources])


def save_dataset(path: Path, ds: Any, *, force: bool) -> None:
    """Write a DICOM dataset with its file meta to ``path`` atomically.

    Parameters
    ----------
    path : Path
        Output file.
    ds : pydicom.Dataset
        With ``file_meta``.
    force : bool
        Replace an existing file.
    """
    with atomic_file(path, force=force) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def write_dataset(
    path: str | os.PathLike[str],
    build: Callable[..., Any],
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    force: bool = False,
    **options: Any,
) -> tuple[Path, Any, DicomSource]:
    """Build a DICOM dataset from a lesion map and write it atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; checked before anything is read, never replaced unless ``force``.
    build : callable
        ``build(labels, geometry, reference, **options)`` → pydicom.Dataset with file
        meta (e.g. :func:`petseg.io.export.build_rtstruct`,
        :func:`petseg.io.export.build_seg`).
    labels, geometry : (Z, Y, X) int ndarray, Geometry
        The lesion map and its grid, passed to ``build``.
    reference : DicomSource, path or sequence of paths
        The PET series, read by :func:`as_reference` and passed to ``build``.
    force : bool
        Whether an existing ``path`` may be replaced.
    **options : Any
        Passed to ``build``.

    Returns
    -------
    path : Path
        The written file.
    dataset : pydicom.Dataset
        What was written.
    reference : DicomSource
        The PET series.
    """
    path = Path(path)
    check_writable_target(path, force)
    source = as_reference(reference)
    ds = build(labels, geometry, source, **options)
    save_dataset(path, ds, force=force)
    return path, ds, source


def export_lesion_map(
    write: Callable[..., ExportResult],
    lesions: str | os.PathLike[str],
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    **options: Any,
) -> ExportResult:
    """A lesion-map NIfTI file → a DICOM file written by ``write``.

    Parameters
    ----------
    write : callable
        ``write(out, labels, geometry, reference, force=, source=, **options)`` (e.g.
        :func:`petseg.io.export.write_rtstruct`, :func:`petseg.io.export.write_seg`).
    lesions : str or os.PathLike
        Lesion map NIfTI (``lesions.nii.gz``), integer labels, on the PET grid (any
        axis order or direction); its file name is recorded as the source.
    reference : str, os.PathLike or sequence of them
        The PET DICOM series folder or files.
    out : str or os.PathLike
        Output ``.dcm``.
    force : bool
        Replace an existing output.
    **options : Any
        Passed to ``write``.

    Returns
    -------
    ExportResult
    """
    lesions = Path(lesions)
    check_export_paths(lesions, reference, out, force=force)
    labels, geometry = read_lesion_map(lesions)
    return write(out, labels, geometry, reference, force=force, source=lesions.name, **options)


def lesion_roi_name(label: int) -> str:
    """ROI name of lesion ``label``: ``lesion_001``, ..., ``lesion_1234``.

    Parameters
    ----------
    label : int
        Lesion label (> 0).
    """
    return f"lesion_{int(label):03d}"


def lesion_names(labels: Sequence[int], names: Mapping[int, str] | None = None) -> dict[int, str]:
    """ROI / segment name per lesion label: :func:`lesion_roi_name` unless ``names``
    gives one.

    Parameters
    ----------
    labels : sequence of int
        The labels present.
    names : mapping label → str, optional
        Names to use instead; labels not in ``labels`` are ignored.
    """
    result = {int(label): lesion_roi_name(label) for label in labels}
    result.update({int(k): str(v) for k, v in (names or {}).items() if int(k) in result})
    return result


def lesion_colors(labels: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """A distinct, fixed RGB display colour (0–255) per lesion label.

    Hues step by the golden angle (0.618 of a turn) from label to label, alternating
    two saturations, so neighbouring labels contrast and colours do not repeat within
    hundreds of lesions. Depends only on the label, so a lesion keeps its colour
    across exports.

    Parameters
    ----------
    labels : sequence of int
        Lesion labels.
    """
    colors = {}
    for label in labels:
        hue = (int(label) * 0.6180339887498949) % 1.0
        saturation = 0.9 if int(label) % 2 else 0.6
        rgb = colorsys.hsv_to_rgb(hue, saturation, 0.95)
        colors[int(label)] = (
            round(rgb[0] * 255),
            round(rgb[1] * 255),
            round(rgb[2] * 255),
        )
    return colors


def identity_problems(reference: Any) -> list[str]:
    """Identity values of the reference header that are invalid for their VR.

    These are written empty in the exports (Type 2) or left out (Type 3); each message
    names the attribute, the value and the rule.

    Parameters
    ----------
    reference : pydicom.Dataset
        A header of the PET series.
    """
    from pydicom import config
    from pydicom.valuerep import validate_value

    problems = []
    for keyword in (*IDENTITY_TYPE2, *IDENTITY_TYPE3):
        if keyword not in reference:
            continue
        elem = reference[keyword]
        values = elem.value if elem.VM > 1 else [elem.value]
        for value in values:
            # Numbers (DS, IS) are validated as the strings they were read from.
            text = value if isinstance(value, (str, bytes)) or value is None else str(value)
            try:
                validate_value(elem.VR, text, config.RAISE)
            except ValueError as err:
                problems.append(f"{keyword} {str(value)!r} not copied: {err}")
    return problems


def _invalid_keywords(reference: Any) -> set[str]:
    return {problem.split(" ", 1)[0] for problem in identity_problems(reference)}


def copy_identity(reference: Any, ds: Any) -> None:
    """Copy patient and study identity from ``reference`` into ``ds``.

    Type 2 attributes are always set (empty when absent or invalid for their VR), Type 3
    ones only when present, valid and not empty; the Study Instance UID is copied.

    Parameters
    ----------
    reference : pydicom.Dataset
        A header of the PET series.
    ds : pydicom.Dataset
        The dataset being built (modified in place).
    """
    invalid = _invalid_keywords(reference)
    for keyword in IDENTITY_TYPE2:
        valid = keyword in reference and keyword not in invalid
        setattr(ds, keyword, reference[keyword].value if valid else "")
    for keyword in IDENTITY_TYPE3:
        if keyword in reference and keyword not in invalid and reference[keyword].value:
            setattr(ds, keyword, reference[keyword].value)
    ds.StudyInstanceUID = reference.StudyInstanceUID


def identity_cleaned(headers: Sequence[Any]) -> list[Any]:
    """The headers, with identity values invalid for their VR blanked in copies.

    For writers that copy patient and study attributes from the source images
    themselves (highdicom). The headers are returned unchanged when all values are
    valid. A copy holds the header's own elements but the blanked ones (a deep copy
    took 11 ms per header).

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        The PET series headers.
    """
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    bad = _invalid_keywords(headers[0])
    if not bad:
        return list(headers)
    cleaned = []
    for header in headers:
        clean = Dataset(dict(header.items()))
        for keyword in bad:
            if keyword in header:
                element = header[keyword]
                clean[element.tag] = DataElement(element.tag, element.VR, "")
        cleaned.append(clean)
    return cleaned

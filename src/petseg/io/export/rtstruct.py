"""Export a lesion map as a DICOM RT Structure Set referencing the PET series.

One ROI per lesion, named and numbered after its label (label 7 → ROI number 7,
``lesion_007``), each with its own display colour, so a physician can review the
result in a clinical viewer and delete a false positive in one click (Carlsen et al.
2022 reformatted the AI output into DICOM RT structures for this review).

Rules (see ``docs/dicom-export.md``; grid, identity and empty maps:
:mod:`petseg.io.export.common`):

* Contours are the 0.5 iso-lines of each lesion on every PET slice it crosses
  (:mod:`petseg.contours`), in LPS patient coordinates on the exact plane of the
  slice's Image Position (Patient). Islands and holes are separate ``CLOSED_PLANAR``
  contours, to be combined with the even-odd rule. Each contour references the SOP
  instance of its slice.
* New Series and SOP Instance UIDs come from :func:`pydicom.uid.generate_uid`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from petseg.checks import check_choice
from petseg.contours import PlanarContour, label_contours, mask_contours
from petseg.io.export.common import (
    GENERATION_ALGORITHMS,
    EmptyLesionMapError,
    ExportResult,
    align_to_reference,
    copy_identity,
    export_lesion_map,
    identity_problems,
    lesion_colors,
    lesion_names,
    write_dataset,
)
from petseg.study import DicomSource, Geometry

__all__ = [
    "RTSTRUCT_SOP_CLASS_UID",
    "TOTAL_ROI_NAME",
    "build_rtstruct",
    "export_rtstruct",
    "write_rtstruct",
]

RTSTRUCT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.481.3"
#: Referenced SOP Class of the RT Referenced Study Sequence (Detached Study Management,
#: the value the standard's RT examples and clinical systems use).
STUDY_COMPONENT_SOP_CLASS_UID = "1.2.840.10008.3.1.2.3.1"
TOTAL_ROI_NAME = "total_tumour"
TOTAL_ROI_COLOR = (255, 255, 0)


class _Roi(NamedTuple):
    number: int
    name: str
    color: tuple[int, ...]
    contours: list[PlanarContour]


@cache
def _tag_and_vr(keyword: str) -> tuple[Any, str]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.tag import Tag

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword!r} is not a DICOM keyword")
    return Tag(tag), dictionary_VR(tag)


def _item(**values: Any) -> Any:
    """A Dataset of values already in their written form (str, int, UID, a MultiValue
    of DS strings, a Sequence), set without pydicom's per-value conversion and
    validation: the per-contour items are most of an RTSTRUCT, and converting their
    values is most of the time spent building it."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    ds = Dataset()
    for keyword, value in values.items():
        tag, vr = _tag_and_vr(keyword)
        ds[tag] = DataElement(tag, vr, value, already_converted=True)
    return ds


def _ds_values(points: NDArray[np.float64]) -> Any:
    """Contour Data as DS strings, 0.001 mm resolution (at most 16 characters)."""
    from pydicom.multival import MultiValue

    return MultiValue(str, np.char.mod("%.3f", points.ravel()).tolist())


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _image_uids(reference: DicomSource) -> list[tuple[Any, Any]]:
    """(SOP Class UID, SOP Instance UID) of each slice, as pydicom UIDs."""
    from pydicom.uid import UID

    def uid(value: Any) -> Any:
        return value if isinstance(value, UID) else UID(value)

    return [(uid(h.SOPClassUID), uid(h.SOPInstanceUID)) for h in reference.headers]


def _image_reference(uids: tuple[Any, Any]) -> Any:
    return _item(ReferencedSOPClassUID=uids[0], ReferencedSOPInstanceUID=uids[1])


def build_rtstruct(
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | Sequence[Any],
    *,
    roi_names: Mapping[int, str] | None = None,
    include_total: bool = False,
    colors: Mapping[int, tuple[int, int, int]] | None = None,
    series_description: str = "petseg lesions",
    series_number: int = 901,
    generation_algorithm: str = "AUTOMATIC",
    source: str = "",
) -> Any:
    """Build an RT Structure Set with one ROI per lesion of ``labels``.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion map: 0 = background, one positive label per lesion.
    geometry : Geometry
        Grid of ``labels``: the reference grid up to axis order and direction.
    reference : DicomSource or sequence of pydicom.Dataset
        Headers of the PET series (any order if datasets are given).
    roi_names : mapping label → str, optional
        ROI names (default ``lesion_001``, ...; at most 64 characters).
    include_total : bool
        Add a ``total_tumour`` ROI (the union of all lesions), numbered max label + 1.
    colors : mapping label → (r, g, b), optional
        Display colours 0–255 (default :func:`lesion_colors`).
    series_description, series_number : str, int
        Series Description and Series Number of the new series.
    generation_algorithm : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
        ROI Generation Algorithm (SEMIAUTOMATIC after manual review edits).
    source : str
        Where the lesion map came from (e.g. its file), for the Structure Set Description.

    Returns
    -------
    pydicom.Dataset
        With file meta; save with ``save_as(path, enforce_file_format=True)``. Contour
        items hold their values as written (DS strings, int); read the file for DS, IS.

    Raises
    ------
    EmptyLesionMapError
        No lesion in ``labels``.
    ValueError
        Grid mismatch, bad option values.
    """
    check_choice("generation_algorithm", generation_algorithm, GENERATION_ALGORITHMS)
    aligned, reference = align_to_reference(labels, geometry, reference)
    rois = _rois(aligned, reference.geometry, roi_names, colors, include_total=include_total)
    lesions = f"{len(rois) - include_total} lesion(s) from {source or 'a lesion map'}"
    ds = _header(reference.first, series_description, series_number, f"{lesions}; {include_total=}")
    images = _image_uids(reference)
    ds.ReferencedFrameOfReferenceSequence = _referenced_frames(reference.first, images)
    _add_rois(ds, rois, reference, images, generation_algorithm)
    return ds


def _rois(
    aligned: NDArray[np.integer],
    grid: Geometry,
    roi_names: Mapping[int, str] | None,
    colors: Mapping[int, tuple[int, int, int]] | None,
    *,
    include_total: bool,
) -> list[_Roi]:
    """One ROI per lesion label with its contours, name and colour checked, and the
    total ROI when asked."""
    contours_by_label = label_contours(aligned, grid)
    if not contours_by_label:
        raise EmptyLesionMapError()
    present = list(contours_by_label)
    names = lesion_names(present, roi_names)
    palette: dict[int, tuple[int, ...]] = dict(lesion_colors(present))
    palette.update({int(k): tuple(v) for k, v in (colors or {}).items() if int(k) in palette})
    for label, name in names.items():
        if not name or len(name) > 64:
            raise ValueError(f"ROI name of label {label} must have 1–64 characters, got {name!r}")
    for label, rgb in palette.items():
        if len(rgb) != 3 or not all(0 <= int(c) <= 255 for c in rgb):
            raise ValueError(f"colour of label {label} must be three values 0–255, got {rgb!r}")
    rois = [
        _Roi(label, names[label], palette[label], contours_by_label[label]) for label in present
    ]
    if include_total:
        total = mask_contours(aligned > 0, grid)
        rois.append(_Roi(max(present) + 1, TOTAL_ROI_NAME, TOTAL_ROI_COLOR, total))
    return rois


def _header(first: Any, series_description: str, series_number: int, description: str) -> Any:
    """File meta and the Patient, Study, Series, Equipment and Structure Set attributes."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

    from petseg import __version__

    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RTSTRUCT_SOP_CLASS_UID)
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PETSEG_{__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    if "SpecificCharacterSet" in first:
        ds.SpecificCharacterSet = first.SpecificCharacterSet
    date, time = _now()
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_instance_uid
    ds.Modality = "RTSTRUCT"
    ds.Manufacturer = "petseg"
    ds.ManufacturerModelName = "petseg"
    ds.SoftwareVersions = __version__
    ds.SeriesDescription = series_description[:64]
    ds.OperatorsName = ""
    copy_identity(first, ds)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = int(series_number)
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "") or ""
    ds.StructureSetLabel = "petseg lesions"
    ds.StructureSetName = "lesions"
    ds.StructureSetDescription = (
        f"petseg {__version__} export rtstruct: {description}; contours are 0.5 "
        "iso-lines on the PET slices, holes as separate contours (even-odd rule)"
    )[:1024]
    ds.StructureSetDate, ds.StructureSetTime = date, time
    return ds


def _referenced_frames(first: Any, images: Sequence[tuple[Any, Any]]) -> Any:
    """Referenced Frame of Reference Sequence: frame → study → PET series → every image."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = STUDY_COMPONENT_SOP_CLASS_UID
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = DicomSequence([_image_reference(u) for u in images])
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    return DicomSequence([frame_ref])


def _add_rois(
    ds: Any,
    rois: Sequence[_Roi],
    reference: DicomSource,
    images: Sequence[tuple[Any, Any]],
    algorithm: str,
) -> None:
    """Structure Set ROI, ROI Contour and RT ROI Observations Sequences, one item per ROI."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from petseg import __version__

    frame_uid = reference.first.FrameOfReferenceUID
    plane_shift = _plane_shift(reference)
    roi_items, contour_items, observation_items = [], [], []
    for roi in rois:
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = frame_uid
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = algorithm
        item.ROIGenerationDescription = f"petseg {__version__}"[:64]
        roi_items.append(item)

        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = [int(c) for c in roi.color]
        roi_contour.ReferencedROINumber = roi.number
        roi_contour.ContourSequence = _contour_sequence(roi.contours, images, plane_shift)
        contour_items.append(roi_contour)

        observation = Dataset()
        observation.ObservationNumber = roi.number
        observation.ReferencedROINumber = roi.number
        observation.ROIObservationLabel = roi.name[:16]
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        observation_items.append(observation)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observation_items)


def _plane_shift(reference: DicomSource) -> NDArray[np.float64]:
    """(Z, 3) mm: each slice's Image Position (Patient) minus the grid's slice origin, so
    contours lie on the exact plane of their slice."""
    grid = reference.geometry
    slice_origins = np.array(
        [[float(v) for v in h.ImagePositionPatient] for h in reference.headers]
    )
    k = np.arange(grid.shape[0])
    return slice_origins - grid.index_to_patient(np.column_stack([k, np.zeros((len(k), 2))]))


def _contour_sequence(
    contours: Sequence[PlanarContour],
    images: Sequence[tuple[Any, Any]],
    plane_shift: NDArray[np.float64],
) -> Any:
    """Contour Sequence: one CLOSED_PLANAR item per contour, referencing its slice."""
    from pydicom.sequence import Sequence as DicomSequence

    return DicomSequence(
        [
            _item(
                ContourImageSequence=DicomSequence([_image_reference(images[contour.k])]),
                ContourGeometricType="CLOSED_PLANAR",
                NumberOfContourPoints=len(contour.points),
                ContourNumber=number,
                ContourData=_ds_values(contour.points + plane_shift[contour.k]),
            )
            for number, contour in enumerate(contours, start=1)
        ]
    )


def write_rtstruct(
    path: str | os.PathLike[str],
    labels: NDArray[np.integer],
    geometry: Geometry,
    reference: DicomSource | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    force: bool = False,
    **options: Any,
) -> ExportResult:
    """Build (:func:`build_rtstruct`) and write an RT Structure Set atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.dcm``); never replaced unless ``force``.
    labels : (Z, Y, X) int ndarray
        Lesion map: 0 = background, one positive label per lesion.
    geometry : Geometry
        Grid of ``labels``: the PET grid up to axis order and direction.
    reference : DicomSource, path or sequence of paths
        The PET series (read from its folder or files when not a DicomSource).
    force : bool
        Replace an existing file.
    **options : Any
        Passed to :func:`build_rtstruct`.

    Returns
    -------
    ExportResult
        The file, its ROI and contour counts, and identity values not copied.
    """
    path, ds, source = write_dataset(
        path, build_rtstruct, labels, geometry, reference, force=force, **options
    )
    return ExportResult(
        path=path,
        n_rois=len(ds.StructureSetROISequence),
        n_contours=sum(len(item.get("ContourSequence", [])) for item in ds.ROIContourSequence),
        notes=identity_problems(source.first),
    )


def export_rtstruct(
    lesions: str | os.PathLike[str],
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    include_total: bool = False,
    generation_algorithm: str = "AUTOMATIC",
    force: bool = False,
) -> ExportResult:
    """``petseg export rtstruct``: a lesion-map NIfTI file → RT Structure Set file.

    Parameters
    ----------
    lesions : str or os.PathLike
        Lesion map NIfTI (``lesions.nii.gz``), integer labels, on the PET grid (any
        axis order or direction).
    reference : str, os.PathLike or sequence of them
        The PET DICOM series folder or files.
    out : str or os.PathLike
        Output ``.dcm``.
    include_total : bool
        Add the ``total_tumour`` ROI (see :func:`build_rtstruct`).
    generation_algorithm : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
        ROI Generation Algorithm.
    force : bool
        Replace an existing output.

    Returns
    -------
    ExportResult
    """
    return export_lesion_map(
        write_rtstruct,
        lesions,
        reference,
        out,
        force=force,
        include_total=include_total,
        generation_algorithm=generation_algorithm,
    )

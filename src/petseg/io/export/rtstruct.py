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
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.contours import label_contours, mask_contours
from petseg.io.atomic import check_writable_target
from petseg.io.export.common import (
    GENERATION_ALGORITHMS,
    EmptyLesionMapError,
    ExportResult,
    align_to_reference,
    as_reference,
    check_export_paths,
    copy_identity,
    identity_problems,
    lesion_colors,
    lesion_names,
    read_lesion_map,
    save_dataset,
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


def _ds_values(points: NDArray[np.float64]) -> list[str]:
    """Contour Data as DS strings, 0.001 mm resolution (at most 16 characters)."""
    return np.char.mod("%.3f", points.ravel()).tolist()


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _image_reference(header: Any) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = header.SOPClassUID
    item.ReferencedSOPInstanceUID = header.SOPInstanceUID
    return item


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
        Grid of ``labels``; must be the reference series grid up to axis order and
        direction.
    reference : DicomSource or sequence of pydicom.Dataset
        Headers of the PET series (any order if datasets are given).
    roi_names : mapping label → str, optional
        ROI names (default ``lesion_001``, ...; at most 64 characters).
    include_total : bool
        Add a ``total_tumour`` ROI (the union of all lesions), numbered max label + 1.
    colors : mapping label → (r, g, b), optional
        Display colours 0–255 (default :func:`lesion_colors`).
    series_description : str
        Series Description of the new series.
    series_number : int
        Series Number of the new series.
    generation_algorithm : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
        ROI Generation Algorithm (SEMIAUTOMATIC after manual review edits).
    source : str
        Where the lesion map came from (e.g. its file), recorded in the Structure Set
        Description with the petseg version and the options.

    Returns
    -------
    pydicom.Dataset
        With file meta; save with ``save_as(path, enforce_file_format=True)``.

    Raises
    ------
    EmptyLesionMapError
        No lesion in ``labels``.
    ValueError
        Grid mismatch, bad option values.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

    from petseg import __version__

    if generation_algorithm not in GENERATION_ALGORITHMS:
        raise ValueError(
            f"generation_algorithm must be one of {GENERATION_ALGORITHMS}, "
            f"got {generation_algorithm!r}"
        )
    aligned, reference = align_to_reference(labels, geometry, reference)
    ref_geometry = reference.geometry
    contours_by_label = label_contours(aligned, ref_geometry)
    if not contours_by_label:
        raise EmptyLesionMapError(
            "the lesion map has no lesion (all voxels are 0): there is nothing to export"
        )
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

    rois: list[tuple[int, str, tuple[int, ...], list[Any]]] = [
        (label, names[label], palette[label], contours_by_label[label]) for label in present
    ]
    if include_total:
        total = mask_contours(aligned > 0, ref_geometry)
        rois.append((max(present) + 1, TOTAL_ROI_NAME, TOTAL_ROI_COLOR, total))

    first = reference.first
    # Exact plane of each slice: Image Position (Patient) minus the grid's slice origin.
    slice_origins = np.array(
        [[float(v) for v in h.ImagePositionPatient] for h in reference.headers]
    )
    plane_shift = slice_origins - ref_geometry.index_to_patient(
        np.column_stack([np.arange(ref_geometry.shape[0]), np.zeros((ref_geometry.shape[0], 2))])
    )

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
        f"petseg {__version__} export rtstruct: {len(present)} lesion(s) from "
        f"{source or 'a lesion map'}; include_total={include_total}; contours are 0.5 "
        "iso-lines on the PET slices, holes as separate contours (even-odd rule)"
    )[:1024]
    ds.StructureSetDate, ds.StructureSetTime = date, time

    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = STUDY_COMPONENT_SOP_CLASS_UID
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = DicomSequence(
        [_image_reference(h) for h in reference.headers]
    )
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])

    roi_items, contour_items, observation_items = [], [], []
    for number, name, rgb, contours in rois:
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = generation_algorithm
        roi.ROIGenerationDescription = f"petseg {__version__}"[:64]
        roi_items.append(roi)

        roi_contour = Dataset()
        roi_contour.ROIDisplayColor = [int(c) for c in rgb]
        roi_contour.ReferencedROINumber = number
        items = []
        for contour_number, contour in enumerate(contours, start=1):
            item = Dataset()
            item.ContourImageSequence = DicomSequence(
                [_image_reference(reference.headers[contour.k])]
            )
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(contour.points)
            item.ContourNumber = contour_number
            item.ContourData = _ds_values(contour.points + plane_shift[contour.k])
            items.append(item)
        roi_contour.ContourSequence = DicomSequence(items)
        contour_items.append(roi_contour)

        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.ROIObservationLabel = name[:16]
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        observation_items.append(observation)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observation_items)
    return ds


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
    path : path
        Output file (``.dcm``); never replaced unless ``force``.
    labels, geometry
        Lesion map and its grid.
    reference : DicomSource, folder or files
        The PET series.
    force : bool
        Replace an existing file.
    **options
        Passed to :func:`build_rtstruct`.
    """
    path = Path(path)
    check_writable_target(path, force)
    reference = as_reference(reference)
    ds = build_rtstruct(labels, geometry, reference, **options)
    save_dataset(path, ds, force=force)
    return ExportResult(
        path=path,
        n_rois=len(ds.StructureSetROISequence),
        n_contours=sum(len(item.get("ContourSequence", [])) for item in ds.ROIContourSequence),
        notes=identity_problems(reference.first),
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
    lesions : path
        Lesion map NIfTI (``lesions.nii.gz``), integer labels, on the PET grid (any
        axis order or direction).
    reference : path or paths
        The PET DICOM series folder or files.
    out : path
        Output ``.dcm``.
    include_total, generation_algorithm
        See :func:`build_rtstruct`.
    force : bool
        Replace an existing output.
    """
    lesions = Path(lesions)
    check_export_paths(lesions, reference, out, force=force)
    labels, geometry = read_lesion_map(lesions)
    return write_rtstruct(
        out,
        labels,
        geometry,
        reference,
        force=force,
        include_total=include_total,
        generation_algorithm=generation_algorithm,
        source=lesions.name,
    )

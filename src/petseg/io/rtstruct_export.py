"""Export a lesion map as a DICOM RT Structure Set referencing the PET series.

One ROI per lesion, named and numbered after its label (label 7 → ROI number 7,
``lesion_007``), each with its own display colour, so a physician can review the
result in a clinical viewer and delete a false positive in one click (Carlsen et al.
2022 reformatted the AI output into DICOM RT structures for this review).

Rules (see ``docs/dicom-export.md``):

* The lesion map must lie on the PET series grid, up to axis order and direction (a
  NIfTI written in another orientation is reordered, never resampled).
* Contours are the 0.5 iso-lines of each lesion on every PET slice it crosses
  (:mod:`petseg.contours`), in LPS patient coordinates on the exact plane of the
  slice's Image Position (Patient). Islands and holes are separate ``CLOSED_PLANAR``
  contours, to be combined with the even-odd rule. Each contour references the SOP
  instance of its slice.
* Patient and study identity are copied from the PET series; a copied value that is
  invalid for its VR (e.g. an 18-character Study ID, VR SH allows 16) is left empty
  rather than truncated, and :func:`identity_problems` reports it.
* New Series and SOP Instance UIDs come from :func:`pydicom.uid.generate_uid`.
* An empty lesion map is refused (:class:`EmptyLesionMapError`): the Structure Set
  ROI Sequence must hold at least one item.
"""

from __future__ import annotations

import colorsys
import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.contours import align_to_grid, label_contours, mask_contours
from petseg.io.atomic import atomic_file, check_writable_target
from petseg.io.dicom import dicom_source, discover_series
from petseg.lesions import as_label_map
from petseg.study import DicomSource, Geometry, Study

__all__ = [
    "GENERATION_ALGORITHMS",
    "RTSTRUCT_SOP_CLASS_UID",
    "TOTAL_ROI_NAME",
    "EmptyLesionMapError",
    "ExportResult",
    "build_rtstruct",
    "export_lesions_for_study",
    "export_rtstruct",
    "identity_problems",
    "lesion_colors",
    "lesion_roi_name",
    "read_reference_series",
    "write_rtstruct",
]

RTSTRUCT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.481.3"
#: Referenced SOP Class of the RT Referenced Study Sequence (Detached Study Management,
#: the value the standard's RT examples and clinical systems use).
STUDY_COMPONENT_SOP_CLASS_UID = "1.2.840.10008.3.1.2.3.1"
#: ROI Generation Algorithm (3006,0036) defined terms.
GENERATION_ALGORITHMS = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")
TOTAL_ROI_NAME = "total_tumour"
TOTAL_ROI_COLOR = (255, 255, 0)

#: Type 2 identity attributes (Patient and General Study modules): always written,
#: empty when the reference lacks them or holds a value invalid for the VR.
_IDENTITY_TYPE2 = (
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
_IDENTITY_TYPE3 = (
    "IssuerOfPatientID",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDescription",
)


class EmptyLesionMapError(ValueError):
    """The lesion map has no lesion, so there is nothing to export."""


def read_reference_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> DicomSource:
    """Read the headers of the PET (or other image) series to reference.

    Parameters
    ----------
    source : path or sequence of paths
        A folder (searched recursively) holding the series, or its instance files.
        A folder with several image series must hold exactly one PET series.

    Raises
    ------
    ValueError
        No image series, or several and not exactly one PET series.
    """
    import pydicom

    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        series = [
            s
            for s in discover_series(folder)
            if s.modality not in {"RTSTRUCT", "SEG", "SR", "RTPLAN", "RTDOSE", "PR", "KO"}
        ]
        if len(series) > 1:
            series = [s for s in series if s.modality == "PT"] or series
        if len(series) != 1:
            listing = "; ".join(s.summary() for s in series) or "no image series"
            raise ValueError(
                f"{folder}: need exactly one PET image series to reference, found {listing}; "
                "pass the folder of the PET series itself"
            )
        files = list(series[0].files)
    else:
        files = [Path(f) for f in source]
        if not files:
            raise ValueError("no reference DICOM files given")
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    return dicom_source(headers, files)


def lesion_roi_name(label: int) -> str:
    """ROI name of lesion ``label``: ``lesion_001``, ..., ``lesion_1234``."""
    return f"lesion_{int(label):03d}"


def lesion_colors(labels: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """A distinct, fixed RGB display colour (0–255) per lesion label.

    Hues step by the golden angle (0.618 of a turn) from label to label, alternating
    two saturations, so neighbouring labels contrast and colours do not repeat within
    hundreds of lesions. Depends only on the label, so a lesion keeps its colour
    across exports.
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
    """
    from pydicom import config
    from pydicom.valuerep import validate_value

    problems = []
    for keyword in (*_IDENTITY_TYPE2, *_IDENTITY_TYPE3):
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


def _copy_identity(reference: Any, ds: Any) -> None:
    invalid = {p.split(" ", 1)[0] for p in identity_problems(reference)}
    for keyword in _IDENTITY_TYPE2:
        valid = keyword in reference and keyword not in invalid
        setattr(ds, keyword, reference[keyword].value if valid else "")
    for keyword in _IDENTITY_TYPE3:
        if keyword in reference and keyword not in invalid and reference[keyword].value:
            setattr(ds, keyword, reference[keyword].value)
    ds.StudyInstanceUID = reference.StudyInstanceUID


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
    if not isinstance(reference, DicomSource):
        reference = dicom_source(reference)
    aligned = np.asarray(align_to_grid(np.asarray(labels), geometry, reference.geometry))
    ref_geometry = reference.geometry
    contours_by_label = label_contours(aligned, ref_geometry)
    if not contours_by_label:
        raise EmptyLesionMapError(
            "the lesion map has no lesion (all voxels are 0): there is nothing to export"
        )
    present = list(contours_by_label)
    names = {label: lesion_roi_name(label) for label in present}
    names.update({int(k): str(v) for k, v in (roi_names or {}).items() if int(k) in names})
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
    _copy_identity(first, ds)
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
    if not isinstance(reference, DicomSource):
        reference = read_reference_series(reference)
    ds = build_rtstruct(labels, geometry, reference, **options)
    with atomic_file(path, force=force) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return ExportResult(
        path=path,
        n_rois=len(ds.StructureSetROISequence),
        n_contours=sum(len(item.get("ContourSequence", [])) for item in ds.ROIContourSequence),
        notes=identity_problems(reference.first),
    )


def _read_lesion_map(path: Path) -> tuple[NDArray[np.integer], Geometry]:
    from petseg.io.nifti import read_nifti

    array, geometry = read_nifti(path)
    return as_label_map(array, str(path)), geometry


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
    sources = [reference] if isinstance(reference, str | os.PathLike) else list(reference)
    check_writable_target(Path(out), force, inputs=[lesions, *sources])
    labels, geometry = _read_lesion_map(lesions)
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


def export_lesions_for_study(
    out_dir: str | os.PathLike[str],
    labels: NDArray[np.integer],
    study: Study,
    *,
    rtstruct: bool = True,
    seg: bool = False,
    force: bool = False,
) -> list[Path]:
    """Write ``rtstruct.dcm`` (and ``seg.dcm``) into ``out_dir`` for a study read from DICOM.

    Nothing is written when the study did not come from DICOM (``study.dicom`` is
    None) or when the lesion map is empty (an RTSTRUCT needs
    at least one ROI); the caller's report states the lesion count.

    Parameters
    ----------
    out_dir : path
        Output folder (created if needed).
    labels : (Z, Y, X) int ndarray
        Lesion map on ``study.geometry``.
    study : Study
        Read from DICOM: its ``dicom`` source holds the PET headers to reference (no
        file is read again).
    rtstruct, seg : bool
        Which objects to write.
    force : bool
        Replace existing files.

    Returns
    -------
    list of Path
        The files written.
    """
    reference = study.dicom
    if reference is None or not (rtstruct or seg) or not np.any(labels):
        return []
    out_dir = Path(out_dir)
    written = []
    if rtstruct:
        written.append(
            write_rtstruct(
                out_dir / "rtstruct.dcm", labels, study.geometry, reference, force=force
            ).path
        )
    if seg:
        from petseg.io.seg import write_seg

        written.append(
            write_seg(out_dir / "seg.dcm", labels, study.geometry, reference, force=force).path
        )
    return written

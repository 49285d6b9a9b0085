"""Write volumes as real DICOM series: PET Image Storage in Bq/mL and CT Image Storage in HU.

The PET series carries everything a reader needs to compute SUVbw (QIBA): Units BQML,
Decay Correction START, Corrected Image including ATTN and DECY, Series Date/Time equal
to the acquisition start, Patient's Weight, and a Radiopharmaceutical Information
Sequence with total dose, half-life and injection date-time. Pixels are stored as int16
with a per-slice Rescale Slope chosen so that the slice maximum uses the int16 range
(intercept 0), so reading back reproduces the SUV volume to within half a quantisation
step (slope / 2 · factor) per voxel.

Each series is written atomically: into a temporary folder renamed to ``folder`` at the
end; an existing ``folder`` is replaced only with ``force=True``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.io.atomic import atomic_dir
from petseg.io.suv import suv_factor_from_values
from petseg.study import Geometry

__all__ = ["CU64_HALF_LIFE_S", "PetAcquisition", "write_ct_series", "write_pet_series"]

#: Cu-64 half-life: 12.7 h.
CU64_HALF_LIFE_S = 45720.0
_INT16_MAX = 32767
PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"


@dataclass(frozen=True)
class PetAcquisition:
    """What a reader needs to compute SUVbw from a PET series (QIBA).

    Attributes
    ----------
    weight_kg : float
        Patient's Weight in kg.
    dose_bq : float
        Radionuclide Total Dose in Bq at ``injection_time``.
    injection_time : datetime
        Radiopharmaceutical start.
    series_time : datetime
        Acquisition start: the Series Date/Time and the decay reference (START).
    half_life_s : float
        Radionuclide half-life in s (default Cu-64, 12.7 h).
    radiopharmaceutical : str
        Radiopharmaceutical name.
    """

    weight_kg: float
    dose_bq: float
    injection_time: dt.datetime
    series_time: dt.datetime
    half_life_s: float = CU64_HALF_LIFE_S
    radiopharmaceutical: str = "Cu-64 DOTATATE"

    @property
    def suv_factor(self) -> float:
        """SUVbw per Bq/mL (g/mL per Bq/mL), the dose decayed to ``series_time``."""
        return suv_factor_from_values(
            weight_kg=self.weight_kg,
            dose_bq=self.dose_bq,
            half_life_s=self.half_life_s,
            decay_time_s=(self.series_time - self.injection_time).total_seconds(),
        )


@dataclass(frozen=True)
class _SeriesHeader:
    """Header values shared by every slice of one series."""

    sop_class_uid: str
    modality: str
    series_number: int
    patient_id: str
    patient_name: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    study_time: dt.datetime
    series_time: dt.datetime
    description: str
    patient_position: str
    name: str


def _orientation(
    geometry: Geometry, name: str
) -> tuple[list[float], list[float], float, float, float]:
    """IOP (row cosine, column cosine), pixel spacing and slice spacing from the affine."""
    affine = geometry.affine
    dz, dy, dx = geometry.spacing
    row_cos = affine[:3, 2] / dx
    col_cos = affine[:3, 1] / dy
    normal = affine[:3, 0] / dz
    if abs(row_cos @ col_cos) > 1e-6 or abs(abs(normal @ np.cross(row_cos, col_cos)) - 1) > 1e-6:
        raise ValueError(
            f"{name}: the geometry's axes are not orthogonal; DICOM single-frame series "
            "need slices stacked along the normal of an orthonormal orientation"
        )
    if normal @ np.cross(row_cos, col_cos) < 0:
        raise ValueError(
            f"{name}: axis 0 runs against row × column cosine (a left-handed grid); flip "
            "the volume along axis 0 (and the affine) before writing DICOM"
        )
    return [float(v) for v in row_cos], [float(v) for v in col_cos], dy, dx, dz


def _base_dataset(header: _SeriesHeader, geometry: Geometry, k: int) -> Any:
    """The modules every slice carries: patient, study, series, frame, image plane, pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

    from petseg import __version__

    row_cos, col_cos, dy, dx, dz = _orientation(geometry, header.name)
    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(header.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = header.sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = header.study_time.strftime("%Y%m%d")
    ds.StudyTime = header.study_time.strftime("%H%M%S.%f")
    ds.SeriesDate = header.series_time.strftime("%Y%m%d")
    ds.SeriesTime = header.series_time.strftime("%H%M%S.%f")
    ds.AcquisitionDate = ds.SeriesDate
    ds.AcquisitionTime = ds.SeriesTime
    ds.ContentDate = ds.SeriesDate
    ds.ContentTime = ds.SeriesTime
    ds.AccessionNumber = ""
    ds.Modality = header.modality
    ds.Manufacturer = "petseg"
    ds.ManufacturerModelName = "petseg"
    ds.SoftwareVersions = str(__version__)
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = header.description
    ds.PatientName = header.patient_name
    ds.PatientID = header.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = header.study_instance_uid
    ds.SeriesInstanceUID = header.series_instance_uid
    ds.StudyID = "1"
    ds.Laterality = ""
    if header.patient_position:  # PET carries PatientOrientationCodeSequence instead
        ds.PatientPosition = header.patient_position
    ds.SeriesNumber = header.series_number
    ds.InstanceNumber = k + 1
    ds.FrameOfReferenceUID = header.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientation = ""
    position = geometry.index_to_patient([k, 0, 0])
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_cos, *col_cos)]
    ds.PixelSpacing = [f"{dy:.6f}", f"{dx:.6f}"]
    ds.SliceThickness = f"{dz:.6f}"
    ds.SliceLocation = f"{float(position @ np.cross(row_cos, col_cos)):.6f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = geometry.shape[1], geometry.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _write_series(
    folder: str | os.PathLike[str],
    geometry: Geometry,
    header: _SeriesHeader,
    prefix: str,
    add_slice: Callable[[Any, int], NDArray[np.int16]],
    force: bool,
) -> list[Path]:
    """One file per slice, atomically; ``add_slice(ds, k)`` fills the modality's modules
    into the base dataset and returns the stored pixels."""
    paths: list[Path] = []
    target = Path(folder)
    with atomic_dir(target, force=force) as tmp:
        for k in range(geometry.shape[0]):
            ds = _base_dataset(header, geometry, k)
            stored = add_slice(ds, k)
            path = tmp / f"{prefix}_{k:04d}.dcm"
            _save(ds, path, stored)
            paths.append(target / path.name)
    return paths


def _save(ds: Any, path: Path, pixels: NDArray[np.int16]) -> None:
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _check_volume(
    values: NDArray[np.generic], geometry: Geometry, what: str
) -> NDArray[np.float64]:
    array: NDArray[np.float64] = np.asarray(values, dtype=np.float64)
    if array.shape != geometry.shape:
        raise ValueError(f"{what} shape {array.shape} does not match the geometry {geometry.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} has NaN/infinite voxels; DICOM cannot store them")
    return array


def _pet_modules(
    ds: Any, bqml_slice: NDArray[np.float64], k: int, n_slices: int, acq: PetAcquisition
) -> NDArray[np.int16]:
    """PET Series and PET Image modules of slice ``k``; returns the stored int16 pixels."""
    from pydicom.dataset import Dataset

    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientWeight = f"{acq.weight_kg:.4f}"
    slice_max = float(bqml_slice.max())
    slope = slice_max / _INT16_MAX if slice_max > 0 else 1.0
    stored = np.rint(bqml_slice / slope).astype(np.int16)
    ds.RescaleSlope = f"{slope:.10g}"
    ds.RescaleIntercept = "0"
    ds.LargestImagePixelValue = int(stored.max())
    ds.SmallestImagePixelValue = int(stored.min())
    ds["LargestImagePixelValue"].VR = "SS"
    ds["SmallestImagePixelValue"].VR = "SS"
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "NORM"]
    ds.DecayCorrection = "START"
    ds.RandomsCorrectionMethod = "NONE"
    ds.AttenuationCorrectionMethod = "CT-based (synthetic)"
    ds.ReconstructionMethod = "synthetic"
    ds.CollimatorType = "NONE"
    ds.NumberOfSlices = n_slices
    ds.ImageIndex = k + 1
    ds.FrameReferenceTime = "0"
    ds.ActualFrameDuration = 0
    ds.DecayFactor = "1"
    ds.PatientGantryRelationshipCodeSequence = []
    ds.PatientOrientationCodeSequence = []
    nuclide = Dataset()
    nuclide.Radiopharmaceutical = acq.radiopharmaceutical
    nuclide.RadiopharmaceuticalStartTime = acq.injection_time.strftime("%H%M%S.%f")
    nuclide.RadiopharmaceuticalStartDateTime = acq.injection_time.strftime("%Y%m%d%H%M%S.%f")
    nuclide.RadionuclideTotalDose = f"{acq.dose_bq:.6g}"
    nuclide.RadionuclideHalfLife = f"{acq.half_life_s:.6g}"
    nuclide.RadionuclideCodeSequence = []
    ds.RadiopharmaceuticalInformationSequence = [nuclide]
    ds.LossyImageCompression = "00"
    return stored


def write_pet_series(
    folder: str | os.PathLike[str],
    suv: NDArray[np.floating],
    geometry: Geometry,
    acquisition: PetAcquisition,
    *,
    patient_id: str,
    patient_name: str = "",
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_instance_uid: str | None = None,
    description: str = "PET (petseg)",
    force: bool = False,
) -> list[Path]:
    """Write an SUVbw volume as a PET Image Storage series in Bq/mL.

    Parameters
    ----------
    folder : path
        Output folder (created atomically; one ``PT_<k>.dcm`` file per slice).
    suv : (Z, Y, X) float ndarray
        SUVbw in g/mL, ≥ 0.
    geometry : Geometry
        Orthonormal grid (any orientation, right-handed: axis 0 along row × column).
    acquisition : PetAcquisition
        Weight, dose, injection and series times, half-life, radiopharmaceutical: the
        values that turn Bq/mL back into SUVbw.
    patient_id, patient_name : str
        Patient ID and Patient's Name.
    study_instance_uid, frame_of_reference_uid, series_instance_uid : str, optional
        Generated with pydicom's ``generate_uid`` when not given (pass the same study and
        frame UIDs to :func:`write_ct_series` for a PET/CT pair).
    description : str
        Series Description.
    force : bool
        Replace an existing ``folder``.

    Returns
    -------
    list of Path
        Files in slice order (index ``k``).
    """
    from pydicom.uid import generate_uid

    suv = _check_volume(suv, geometry, "SUV volume")
    if suv.min() < 0:
        raise ValueError(f"SUV volume has negative values (min {suv.min():.4g}); PET must be ≥ 0")
    bqml = suv / acquisition.suv_factor
    header = _SeriesHeader(
        sop_class_uid=PET_SOP_CLASS,
        modality="PT",
        series_number=1,
        patient_id=patient_id,
        patient_name=patient_name,
        study_instance_uid=study_instance_uid or generate_uid(),
        series_instance_uid=series_instance_uid or generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid or generate_uid(),
        study_time=acquisition.injection_time,
        series_time=acquisition.series_time,
        description=description,
        patient_position="",
        name=str(Path(folder)),
    )
    n = geometry.shape[0]
    return _write_series(
        folder,
        geometry,
        header,
        "PT",
        lambda ds, k: _pet_modules(ds, bqml[k], k, n, acquisition),
        force,
    )


def _ct_modules(ds: Any, stored: NDArray[np.int16]) -> NDArray[np.int16]:
    """CT Image module (HU, slope 1, intercept 0); returns the stored pixels."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.KVP = ""
    ds.AcquisitionNumber = 1
    return stored


def write_ct_series(
    folder: str | os.PathLike[str],
    hu: NDArray[np.floating],
    geometry: Geometry,
    *,
    patient_id: str,
    patient_name: str = "",
    study_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_instance_uid: str | None = None,
    study_time: dt.datetime | None = None,
    series_time: dt.datetime | None = None,
    description: str = "CT (petseg)",
    patient_position: str = "HFS",
    force: bool = False,
) -> list[Path]:
    """Write a volume in HU as a CT Image Storage series (int16, slope 1, intercept 0).

    Values are rounded to whole HU and clipped to [−32768, 32767].

    Parameters
    ----------
    folder : path
        Output folder (created atomically; ``CT_<k>.dcm`` per slice).
    hu : (Z, Y, X) float ndarray
        CT in Hounsfield units.
    geometry : Geometry
        Orthonormal right-handed grid (see :func:`write_pet_series`).
    patient_id, patient_name, study_instance_uid, frame_of_reference_uid : str
        Pass the PET series' values to make a PET/CT pair.
    series_instance_uid : str, optional
        Generated when not given.
    study_time, series_time : datetime, optional
        Default: now.
    description : str
        Series Description.
    patient_position : str
        Patient Position (0018,5100), e.g. ``"HFS"`` or ``"FFS"``; descriptive only (the
        geometry is carried by Image Position/Orientation). PET series leave it out, as
        the PET IOD forbids it beside the (empty) Patient Orientation Code Sequence.
    force : bool
        Replace an existing ``folder``.

    Returns
    -------
    list of Path
        Files in slice order.
    """
    from pydicom.uid import generate_uid

    hu = _check_volume(hu, geometry, "CT volume")
    now = dt.datetime.now().replace(microsecond=0)
    header = _SeriesHeader(
        sop_class_uid=CT_SOP_CLASS,
        modality="CT",
        series_number=2,
        patient_id=patient_id,
        patient_name=patient_name,
        study_instance_uid=study_instance_uid or generate_uid(),
        series_instance_uid=series_instance_uid or generate_uid(),
        frame_of_reference_uid=frame_of_reference_uid or generate_uid(),
        study_time=study_time or now,
        series_time=series_time or now,
        description=description,
        patient_position=patient_position,
        name=str(Path(folder)),
    )
    stored_all = np.clip(np.rint(hu), -32768, 32767).astype(np.int16)
    return _write_series(
        folder, geometry, header, "CT", lambda ds, k: _ct_modules(ds, stored_all[k]), force
    )

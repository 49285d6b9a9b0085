"""File formats: the only part of petseg that reads or writes files.

DICOM series discovery and reading (:mod:`petseg.io.dicom`), SUV factors
(:mod:`petseg.io.suv`), NIfTI (:mod:`petseg.io.nifti`), resampling onto the PET grid
(:mod:`petseg.io.resample`), loading a Study (:mod:`petseg.io.study_loader`), RTSTRUCT
import (:mod:`petseg.io.rtstruct`) and DICOM PET/CT writing (:mod:`petseg.io.dicom_write`).
pydicom and nibabel are imported inside the functions that use them.
"""

from petseg.io.dicom import DicomSeries, DicomVolume, discover_series, read_series
from petseg.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series
from petseg.io.nifti import read_nifti, write_nifti
from petseg.io.resample import resample_to_grid
from petseg.io.rtstruct import RtstructError, import_rtstruct, read_rtstruct
from petseg.io.study_loader import load_study
from petseg.io.suv import SuvConversion, SuvError, suv_factor

__all__ = [
    "DicomSeries",
    "DicomVolume",
    "PetAcquisition",
    "RtstructError",
    "SuvConversion",
    "SuvError",
    "discover_series",
    "import_rtstruct",
    "load_study",
    "read_nifti",
    "read_rtstruct",
    "read_series",
    "resample_to_grid",
    "suv_factor",
    "write_ct_series",
    "write_nifti",
    "write_pet_series",
]

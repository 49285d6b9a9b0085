"""File formats: every reader and writer of an image or DICOM format lives here.

* Reading: DICOM series discovery and reading (:mod:`petseg.io.dicom`), SUV factors
  from the headers (:mod:`petseg.io.suv`), NIfTI (:mod:`petseg.io.nifti`), a whole
  Study (:mod:`petseg.io.study_loader`), RT Structure Sets onto a grid
  (:mod:`petseg.io.rtstruct`) and organ maps (:mod:`petseg.io.organs`); resampling
  onto the PET grid (:mod:`petseg.io.resample`).
* Writing: NIfTI, DICOM PET/CT series (:mod:`petseg.io.dicom_write`), and lesion maps
  as RT Structure Sets and SEGs (:mod:`petseg.io.export`).
* Atomic outputs (:mod:`petseg.io.atomic`): ``atomic_file``, ``atomic_dir``,
  ``write_json_atomic`` and ``check_writable_target`` (never replace an output petseg
  did not write, never write over an input).

io is not the only part of petseg that touches files: the layers that manage folders
(``report``, ``workflows``, ``demo``, ``evaluate``, ``cohort``, ``review``, ``nn``,
``nnunet``, ``slices``, ``phantom.writers``) list, read and write their own small files
(JSON, CSV, PNG figures, torch checkpoints, npz caches). They read and write medical
images through the readers and writers above (the review server alone encodes NIfTI in
memory for its viewer, with :mod:`petseg.io.nifti`'s affine), and make their outputs
atomic with :mod:`petseg.io.atomic`. The array layers below them (thresholds, lesions, metrics,
contours, ...) touch no file. ``docs/io.md`` lists who writes what.

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

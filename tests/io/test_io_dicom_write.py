"""DICOM PET/CT writing: SUV round trip through load_study, orientation, dciodvfy, and the
loader's NIfTI path and refusals (non-overlapping CT, NaN/empty PET, BQML without SUV data)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petseg.io import (
    PetAcquisition,
    SuvError,
    load_study,
    write_ct_series,
    write_nifti,
    write_pet_series,
)
from petseg.io.atomic import OutputExistsError
from petseg.study import Geometry

INJECTION = dt.datetime(2024, 3, 5, 9, 0, 0)
SCAN = dt.datetime(2024, 3, 5, 10, 0, 0, 250000)  # 3600.25 s later
#: 70 kg, 200 MBq Cu-64 injected 3600.25 s before the scan.
ACQ = PetAcquisition(weight_kg=70.0, dose_bq=2e8, injection_time=INJECTION, series_time=SCAN)


def _suv(shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(1)
    suv = rng.gamma(2.0, 0.5, size=shape)
    suv[1, 2, 3] = 25.0  # a hot voxel
    suv[0] = 0.0  # an empty slice (slope 1, all stored 0)
    return suv


def _feet_first() -> Geometry:
    affine = np.eye(4)
    affine[:3, 2] = (-2.0, 0.0, 0.0)  # row cosine -x
    affine[:3, 1] = (0.0, 2.5, 0.0)  # column cosine +y
    affine[:3, 0] = (0.0, 0.0, -3.0)  # normal (-x) × (+y) = -z: slices run feet-first
    affine[:3, 3] = (40.0, -30.0, 120.0)
    return Geometry(affine, (5, 6, 7))


def _oblique() -> Geometry:
    a = np.deg2rad(25.0)  # 25 degrees about the x axis: a tilted, orthonormal stack
    rotation = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    affine = np.eye(4)
    # Sagittal-like stack tilted by 25 degrees: rows along rotated z, columns along rotated y;
    # slices along -x = row cosine x column cosine (right-handed, as DICOM needs).
    affine[:3, :3] = rotation @ np.array([[-3.0, 0, 0], [0, 2.5, 0], [0, 0, 2.0]])
    affine[:3, 3] = (5.0, -7.0, 30.0)
    return Geometry(affine, (5, 6, 7))


GRIDS = {
    "axial": lambda: Geometry.from_spacing((5, 6, 7), (3.0, 2.5, 2.0), (-10.0, 20.0, -300.0)),
    "feet_first": _feet_first,
    "oblique": _oblique,
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_pet_round_trip_within_quantisation(name: str, tmp_path: Path) -> None:
    geometry = GRIDS[name]()
    suv = _suv(geometry.shape)
    acquisition = PetAcquisition(
        weight_kg=72.5, dose_bq=2.2e8, injection_time=INJECTION, series_time=SCAN
    )
    files = write_pet_series(
        tmp_path / "pet", suv, geometry, acquisition, patient_id="P01", patient_name="Phantom^One"
    )
    assert len(files) == 5 and all(f.is_file() for f in files)
    study = load_study(tmp_path / "pet")
    assert study.geometry.same_grid(geometry, atol_mm=1e-4)
    # Hand value: 72500 g / (2.2e8 Bq * 2^(-3600.25 / 45720)) (Cu-64 half-life 12.7 h).
    factor = 72500 / (2.2e8 * 2 ** (-3600.25 / 45720))
    assert acquisition.suv_factor == pytest.approx(factor, rel=1e-12)
    assert study.provenance["suv"]["factor"] == pytest.approx(factor, rel=1e-9)
    assert study.provenance["suv"]["rule"] == "BQML-START"
    # Per slice, quantisation step = slice max / 32767 in SUV; error ≤ half a step.
    for k in range(geometry.shape[0]):
        step = max(suv[k].max(), 1e-30) / 32767
        assert np.abs(study.pet[k] - suv[k]).max() <= step / 2 * 1.001 + 1e-6
    assert study.pet[1, 2, 3] == pytest.approx(25.0, rel=1e-4)
    ds = pydicom.dcmread(files[1])
    assert ds.Units == "BQML" and ds.DecayCorrection == "START"
    assert "ATTN" in ds.CorrectedImage and "DECY" in ds.CorrectedImage
    assert ds.SeriesTime == ds.AcquisitionTime == "100000.250000"
    item = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideHalfLife) == 45720.0
    assert float(item.RadionuclideTotalDose) == 2.2e8
    with pytest.raises(OutputExistsError, match="--force"):
        write_pet_series(tmp_path / "pet", suv, geometry, acquisition, patient_id="P01")


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not found")
def test_dciodvfy_reports_no_errors(tmp_path: Path) -> None:
    geometry = _feet_first()
    pet = write_pet_series(tmp_path / "pet", _suv(geometry.shape), geometry, ACQ, patient_id="P01")
    ct = write_ct_series(tmp_path / "ct", np.full(geometry.shape, 40.0), geometry, patient_id="P01")
    for path in (pet[2], ct[2]):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert "Error" not in report, report


def _pet_ct_pair(tmp_path: Path, ct_shift_mm: float = 0.0, same_frame: bool = True) -> Path:
    geometry = Geometry.from_spacing((6, 8, 8), (3.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    ct_geometry = Geometry.from_spacing((12, 16, 16), (1.5, 2.0, 2.0), (-1.0, -1.0, ct_shift_mm))
    pet = write_pet_series(
        tmp_path / "exam" / "pet", _suv(geometry.shape), geometry, ACQ, patient_id="P01"
    )
    first = pydicom.dcmread(pet[0], stop_before_pixels=True)
    hu = np.arange(16, dtype=float)[None, None, :] * 10 + np.zeros(ct_geometry.shape)
    write_ct_series(
        tmp_path / "exam" / "ct", hu, ct_geometry, patient_id="P01",
        study_instance_uid=first.StudyInstanceUID,
        frame_of_reference_uid=first.FrameOfReferenceUID if same_frame else None,
    )  # fmt: skip
    return tmp_path / "exam"


def test_ct_is_resampled_linearly_onto_pet(tmp_path: Path) -> None:
    study = load_study(_pet_ct_pair(tmp_path))
    assert study.ct is not None
    # CT value = 10 * column index; CT column i sits at x = -1 + 2 i mm, so at PET x = 4 i'
    # mm the CT value is 10 * (4 i' + 1) / 2 = 20 i' + 5 HU.
    np.testing.assert_allclose(study.ct[2, 3, :], 20 * np.arange(8) + 5, atol=1e-3)


def test_ct_outside_the_pet_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CT .* does not overlap the PET"):
        load_study(_pet_ct_pair(tmp_path, ct_shift_mm=500.0))


def test_ct_of_another_frame_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Frame of Reference UID"):
        load_study(_pet_ct_pair(tmp_path, same_frame=False))


GEOMETRY = Geometry.from_spacing((3, 4, 5), (3.0, 2.0, 2.0))


def test_nifti_pet_units(tmp_path: Path) -> None:
    values = np.full(GEOMETRY.shape, 5000.0, np.float32)  # Bq/mL
    write_nifti(tmp_path / "pet.nii.gz", values, GEOMETRY)
    with pytest.raises(SuvError, match=r"not plausible as SUVbw.*--pet-units BQML"):
        load_study(pet=tmp_path / "pet.nii.gz")  # Bq/mL taken as SUV: refused
    with pytest.raises(SuvError, match=r"pet_units='BQML'.*suv_factor="):
        load_study(pet=tmp_path / "pet.nii.gz", pet_units="BQML")
    given = load_study(pet=tmp_path / "pet.nii.gz", pet_units="BQML", suv_factor=2e-4)
    assert given.pet.max() == pytest.approx(1.0)
    # ADMIN-like (no timing): 70000 g / 3.5e8 Bq = 2e-4 -> SUV 1.0.
    admin = load_study(pet=tmp_path / "pet.nii.gz", pet_units="bqml", weight_kg=70.0, dose_bq=3.5e8)
    assert admin.pet.max() == pytest.approx(1.0, rel=1e-6)
    # Decayed: 1 h of F-18 (6588 s) -> SUV 2^(3600/6588).
    decayed = load_study(
        pet=tmp_path / "pet.nii.gz", pet_units="BQML", weight_kg=70.0, dose_bq=3.5e8,
        injection_time="2024-03-05T09:00:00", scan_time="2024-03-05T10:00:00", half_life_s=6588.0,
    )  # fmt: skip
    assert decayed.pet.max() == pytest.approx(2 ** (3600 / 6588), rel=1e-6)
    with pytest.raises(ValueError, match="did you mean 'SUV'"):
        load_study(pet=tmp_path / "pet.nii.gz", pet_units="SUVV")


def test_nan_and_empty_pet_name_the_file(tmp_path: Path) -> None:
    values = np.ones(GEOMETRY.shape, np.float32)
    values[1, 1, 1] = np.nan
    write_nifti(tmp_path / "nan.nii.gz", values, GEOMETRY)
    with pytest.raises(ValueError, match=r"nan\.nii\.gz has 1 NaN"):
        load_study(pet=tmp_path / "nan.nii.gz")
    write_nifti(tmp_path / "zero.nii.gz", np.zeros(GEOMETRY.shape, np.float32), GEOMETRY)
    with pytest.raises(ValueError, match=r"zero\.nii\.gz is empty"):
        load_study(pet=tmp_path / "zero.nii.gz")


def test_nifti_ct_resampled_and_case_id_from_folder(tmp_path: Path) -> None:
    case = tmp_path / "case_007"
    write_nifti(case / "pet.nii.gz", np.ones(GEOMETRY.shape, np.float32), GEOMETRY)
    write_nifti(case / "ct.nii.gz", np.full(GEOMETRY.shape, 30.0, np.float32), GEOMETRY)
    study = load_study(pet=case / "pet.nii.gz", ct=case / "ct.nii.gz")
    assert study.patient_id == "case_007"
    np.testing.assert_array_equal(study.ct, 30.0)

"""SUVbw factors: the eight real header fixtures, the two real BQML slices, and the errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petseg.io import load_study
from petseg.io.dicom import read_series
from petseg.io.suv import (
    SuvError,
    check_suv_options,
    check_suv_plausible,
    given_suv_factor,
    header_from_dataset,
    suv_factor,
)

# The cases of suv-headers/expected.json, whose factors are calculate-suv's literal values.
CASES = [
    "BQML_AC_DT_lessThan_S_DT_SIEMENS",
    "CPS_AND_BQML_AC_DT_-_S_DT",
    "GE_MEDICAL_AND_BQML",
    "PHILIPS_BQML",
    "PHILIPS_CNTS_AND_BQML_SUV",
    "PHILIPS_CNTS_AND_SUV",
    "RADIOPHARM_DATETIME_UNDEFINED",
    "SIEMENS",
]


@pytest.fixture
def headers_dir(real_data: Path) -> Path:
    return real_data / "suv-headers"


@pytest.fixture
def slices_dir(real_data: Path) -> Path:
    return real_data / "pet-slices"


def test_every_header_case_is_tested(headers_dir: Path) -> None:
    assert sorted(json.loads((headers_dir / "expected.json").read_text())) == CASES


@pytest.mark.parametrize("case", CASES)
def test_factor_matches_calculate_suv_fixture(headers_dir: Path, case: str) -> None:
    expected = json.loads((headers_dir / "expected.json").read_text())[case]
    headers = json.loads((headers_dir / f"{case}.json").read_text())
    conversion = suv_factor(headers, source=case)
    assert conversion.factor == pytest.approx(expected, rel=1e-6)


def test_time_reference_rules_follow_the_readme_table(headers_dir: Path) -> None:
    # suv-headers/README.md: dt 3254.999995 s from AcquisitionTime (earlier than SeriesTime);
    # PHILIPS_BQML ignores its private factor (0.003515736) and uses dt 3657 s.
    early = suv_factor(
        json.loads((headers_dir / "BQML_AC_DT_lessThan_S_DT_SIEMENS.json").read_text())
    )
    assert early.reference_source == "earliest AcquisitionDateTime"
    assert early.decay_time_s == pytest.approx(3254.999995, abs=1e-6)
    philips = suv_factor(json.loads((headers_dir / "PHILIPS_BQML.json").read_text()))
    assert (philips.rule, philips.decay_time_s) == ("BQML-START", pytest.approx(3657.0))
    assert suv_factor(json.loads((headers_dir / "PHILIPS_CNTS_AND_SUV.json").read_text())).rule == (
        "CNTS-PHILIPS"
    )


# pet-slices/README.md: factor, SUVmax of the slice, mean SUV of the slice.
SLICE_EXPECTED = {
    "acrin-flt-static.dcm": (0.0005942485308006, 7.1943, 0.052591),
    "acrin-flt-dynamic-frame.dcm": (0.0004735489150904, 6.1559, 0.076671),
}


@pytest.mark.parametrize("name", sorted(SLICE_EXPECTED))
def test_real_bqml_slice_gives_readme_factor_and_suv(
    slices_dir: Path, name: str, tmp_path: Path
) -> None:
    factor, suv_max, suv_mean = SLICE_EXPECTED[name]
    volume = read_series([slices_dir / name])
    # The Icon Image Sequence holds a 64x64 nested Pixel Data; the image is 168x168.
    assert volume.array.shape == (1, 168, 168)
    conversion = suv_factor([header_from_dataset(volume.headers[0])], source=name)
    assert conversion.factor == pytest.approx(factor, rel=1e-12)
    suv = volume.array * conversion.factor
    assert round(float(suv.max()), 4) == suv_max
    assert round(float(suv.mean()), 6) == suv_mean
    # Whole path through load_study (a folder holding just this slice).
    shutil.copy(slices_dir / name, tmp_path / name)
    study = load_study(tmp_path)
    assert study.provenance["suv"]["factor"] == pytest.approx(factor, rel=1e-12)
    assert round(float(study.pet.max()), 4) == suv_max


def _bqml(**changes: object) -> list[dict]:
    header = {
        "SeriesDate": "20240102",
        "SeriesTime": "100000",
        "AcquisitionDate": "20240102",
        "AcquisitionTime": "100000",
        "PatientWeight": 80.0,
        "Units": "BQML",
        "DecayCorrection": "START",
        "CorrectedImage": ["ATTN", "DECY"],
        "RadionuclideTotalDose": 4.0e8,
        "RadionuclideHalfLife": 6588.0,
        "RadiopharmaceuticalStartTime": "090000",
    }
    header.update(changes)
    return [header]


def test_start_rule_by_hand() -> None:
    # dt = 3600 s; 80000 g / (4e8 Bq * 2^(-3600/6588)) = 2e-4 * 2^(3600/6588)
    conversion = suv_factor(_bqml())
    assert conversion.factor == pytest.approx(2e-4 * 2 ** (3600 / 6588), rel=1e-12)
    assert conversion.decay_time_s == 3600.0


def test_admin_rule_has_no_decay_term() -> None:
    assert suv_factor(_bqml(DecayCorrection="ADMIN")).factor == pytest.approx(2e-4, rel=1e-12)


def test_gml_is_already_suv() -> None:
    assert suv_factor([{"Units": "GML"}]).factor == 1.0


def test_overrides_replace_header_values() -> None:
    conversion = suv_factor(
        _bqml(PatientWeight=None, RadionuclideTotalDose=None),
        weight_kg=40.0,
        dose_bq=2.0e8,
        injection_time="2024-01-02T09:30:00",
    )
    assert conversion.factor == pytest.approx(2e-4 * 2 ** (1800 / 6588), rel=1e-12)
    assert set(conversion.overrides) == {"PatientWeight", "RadionuclideTotalDose", "injection time"}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"PatientWeight": None}, ["PatientWeight (0010,1030)", "None", "--weight-kg"]),
        ({"PatientWeight": 0}, ["PatientWeight (0010,1030)", "not positive", "--weight-kg"]),
        ({"PatientWeight": 450.0}, ["PatientWeight (0010,1030)", "implausible", "450"]),
        ({"RadionuclideTotalDose": None}, ["RadionuclideTotalDose (0018,1074)", "--dose-bq"]),
        ({"RadionuclideTotalDose": -1.0}, ["RadionuclideTotalDose (0018,1074)", "-1.0"]),
        ({"RadionuclideHalfLife": None}, ["RadionuclideHalfLife (0018,1075)"]),
        (
            {"RadiopharmaceuticalStartTime": None},
            ["RadiopharmaceuticalStartTime", "injection_time"],
        ),
        ({"RadiopharmaceuticalStartTime": "110000"}, ["before the injection", "injection_time"]),
        ({"CorrectedImage": ["ATTN"]}, ["CorrectedImage (0028,0051)", "DECY"]),
        ({"Units": "CNTS"}, ["SUVScaleFactor (7053,1000)", "Philips PET Private Group"]),
        ({"Units": "PROPCPS"}, ["Units (0054,1001)", "PROPCPS"]),
    ],
)
def test_bad_headers_raise_suv_error_naming_field_and_fix(changes: dict, words: list[str]) -> None:
    with pytest.raises(SuvError) as info:
        suv_factor(_bqml(**changes), source="slice.dcm")
    message = str(info.value)
    assert "slice.dcm" in message
    for word in words:
        assert word in message


def test_real_slice_without_weight_names_file_and_fix(slices_dir: Path, tmp_path: Path) -> None:
    # Edit a copy (never the original file): remove Patient's Weight.
    ds = pydicom.dcmread(slices_dir / "acrin-flt-static.dcm")
    del ds.PatientWeight
    ds.save_as(tmp_path / "slice.dcm")
    with pytest.raises(SuvError, match=r"slice\.dcm.*PatientWeight \(0010,1030\).*--weight-kg"):
        load_study(tmp_path)
    # The override makes it loadable: factor scales with weight (69.7344 kg in the header).
    study = load_study(tmp_path, weight_kg=69.7344)
    assert study.provenance["suv"]["factor"] == pytest.approx(0.0005942485308006, rel=1e-12)
    assert np.isclose(study.pet.max(), 7.1943, atol=5e-5)


def _bqml_slice_as_nifti(slices_dir: Path, tmp_path: Path) -> Path:
    """The real static BQML slice (Bq/mL after rescale), twice, written as a NIfTI volume."""
    from petseg.io.nifti import write_nifti
    from petseg.study import Geometry

    volume = read_series([slices_dir / "acrin-flt-static.dcm"])
    twice = np.concatenate([volume.array, volume.array])
    return write_nifti(
        tmp_path / "pet.nii.gz", twice, Geometry(volume.geometry.affine, twice.shape)
    )


def test_bqml_nifti_read_as_suv_is_refused(slices_dir: Path, tmp_path: Path) -> None:
    pet = _bqml_slice_as_nifti(slices_dir, tmp_path)
    # README: the slice's maximum is 1327 × 9.12329 = 12106.606 Bq/mL, above 500 g/mL
    with pytest.raises(SuvError, match=r"pet\.nii\.gz: .*maximum 1\.211e\+04 g/mL.*BQML"):
        load_study(pet=pet)
    # explicit override: loaded as given, recorded in the provenance (report.json inputs)
    unchecked = load_study(pet=pet, suv_check=False).provenance["suv"]["plausibility"]
    assert unchecked["checked"] is False
    assert unchecked["max_g_ml"] == pytest.approx(12106.606, abs=1e-3)
    # with its units and the README factor: the README's SUVmax, and the check passed
    study = load_study(pet=pet, pet_units="BQML", suv_factor=0.0005942485308006)
    assert round(float(study.pet.max()), 4) == 7.1943
    assert study.provenance["suv"]["plausibility"]["checked"] is True


def test_check_suv_plausible_by_hand() -> None:
    suv = np.zeros((2, 10, 10), np.float32)
    suv[:, 2:8, 2:8] = 1.0  # body: 72 voxels at SUV 1
    suv[0, 5, 5] = 12.0  # a lesion
    stats = check_suv_plausible(suv, units="GML", source="pet")
    # body = voxels above 1 % of 12 = 72 voxels: 71 at 1, one at 12: median 1
    assert stats == {"max_g_ml": 12.0, "body_median_g_ml": 1.0, "checked": True}
    with pytest.raises(SuvError, match=r"pet: .*maximum 1\.2e\+04.*Units \(0054,1001\) GML"):
        check_suv_plausible(suv * 1000, units="GML", source="pet")
    with pytest.raises(SuvError, match=r"body median 30 g/mL"):  # maximum 360 < 500
        check_suv_plausible(suv * 30, units="SUV (as given)", source="pet")
    with pytest.raises(SuvError, match=r"maximum 0\.0012 g/mL.*Drop --pet-units BQML"):
        check_suv_plausible(suv * 1e-4, units="BQML", source="pet")
    assert (
        check_suv_plausible(suv * 1e-4, units="BQML", source="pet", check=False)["checked"] is False
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"suv_factor": 2e-4}, ["--suv-factor", "taken as SUVbw", "--pet-units BQML"]),
        ({"weight_kg": 70.0}, ["--weight-kg", "taken as SUVbw", "drop it"]),
        ({"dose_bq": 3e8, "weight_kg": 70.0}, ["--weight-kg", "--dose-bq", "drop them"]),
        (
            {"pet_units": "BQML", "suv_factor": 2e-4, "dose_bq": 3e8},
            ["--suv-factor", "replaces the factor that --dose-bq", "drop one"],
        ),
    ],
)
def test_nifti_options_that_do_not_apply_are_refused(
    slices_dir: Path, tmp_path: Path, options: dict, words: list[str]
) -> None:
    pet = _bqml_slice_as_nifti(slices_dir, tmp_path)
    with pytest.raises(SuvError) as info:
        load_study(pet=pet, **options)
    assert str(info.value).startswith(str(pet))
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"weight_kg": 70.0}, ["--weight-kg", "Units (0054,1001) GML", "drop it"]),
        ({"injection_time": "2020-01-01T10:00"}, ["--injection-time", "GML"]),
        ({"suv_factor": 2.0}, ["--suv-factor", "already are SUVbw"]),
    ],
)
def test_dicom_gml_options_that_do_not_apply_are_refused(
    sts_study, options: dict, words: list[str]
) -> None:
    with pytest.raises(SuvError, match=r"STS_019/pet/000000\.dcm") as info:
        load_study(sts_study("STS_019"), **options)
    for word in words:
        assert word in str(info.value)


def test_cnts_takes_no_weight_but_a_given_factor() -> None:
    philips = [{"Units": "CNTS", "PhilipsPETPrivateGroup": {"SUVScaleFactor": "0.000728"}}]
    with pytest.raises(SuvError, match=r"--dose-bq.*CNTS.*Philips SUV Scale Factor"):
        suv_factor(philips, dose_bq=3e8)
    check_suv_options("CNTS", source="s", suv_factor=1e-3)  # replaces the private factor
    with pytest.raises(SuvError, match=r"suv_factor must be a positive number, got nan"):
        given_suv_factor(float("nan"), units="BQML", source="s")


def test_format_specific_options_are_refused_for_the_other_format(
    sts_study, slices_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"STS_019: pet_units= \(--pet-units\) cannot apply"):
        load_study(sts_study("STS_019"), pet_units="BQML")
    with pytest.raises(ValueError, match=r"STS_019: scan_time=, half_life_s= cannot apply"):
        load_study(sts_study("STS_019"), scan_time="2020-01-01T10:00", half_life_s=6588.0)
    pet = _bqml_slice_as_nifti(slices_dir, tmp_path)
    with pytest.raises(ValueError, match=r"pet\.nii\.gz: series_uid= \(--pet-series\) cannot"):
        load_study(pet=pet, pet_units="BQML", suv_factor=6e-4, series_uid="1.2.3")

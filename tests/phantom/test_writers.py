"""write_dataset and ``petseg phantom``: case folders, reproducibility from the recorded
seeds, DICOM PET whose own headers give back the SUV, refusal to overwrite."""

from __future__ import annotations

import datetime as dt
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from petseg.io.atomic import ForeignOutputError, OutputExistsError
from petseg.phantom import (
    CU64_HALF_LIFE_S,
    PhantomConfig,
    generate_study,
    phantom_geometry,
    write_dataset,
)

ABDOMEN = PhantomConfig(axial_range_mm=(400.0, 720.0))


def test_written_dataset_opens_with_nibabel_and_is_reproducible(tmp_path):
    out = write_dataset(tmp_path / "ds", n=1, seed=9, negatives=1, config=ABDOMEN, progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["synthetic"] is True
    assert meta["cases"] == ["phantom_0000", "control_0000"]
    assert meta["negative_controls"] == ["control_0000"]
    geometry = phantom_geometry((4.0, 4.0, 4.0), ABDOMEN)
    for case_id in meta["cases"]:
        truth = json.loads((out / case_id / "truth.json").read_text())
        assert truth["synthetic"] is True and "synthetic phantom" in truth["note"].lower()
        assert truth["negative_control"] is (case_id == "control_0000")
        images = {
            name: nib.load(out / case_id / f"{name}.nii.gz")
            for name in ("pet", "ct", "lesions", "organs")
        }
        corner = np.array([5, 7, 9])  # NIfTI (i, j, k) = petseg (k, j, i) reversed
        x, y, z = geometry.index_to_patient(corner[::-1])
        for image in images.values():
            # NIfTI voxel axes are petseg's reversed; its world is RAS = (-x, -y, z) of LPS
            assert image.shape == geometry.shape[::-1]
            np.testing.assert_allclose(image.header.get_zooms(), (4.0, 4.0, 4.0))
            np.testing.assert_allclose((image.affine @ [*corner, 1])[:3], [-x, -y, z], atol=1e-4)
        again = generate_study(
            meta["case_seeds"][case_id],
            negative_control=truth["negative_control"],
            config=ABDOMEN,
            patient_id=case_id,
        )
        pet = np.asarray(images["pet"].dataobj).transpose(2, 1, 0)
        np.testing.assert_allclose(pet, again.study.pet, rtol=1e-6)
        labels = np.asarray(images["lesions"].dataobj).transpose(2, 1, 0)
        np.testing.assert_array_equal(labels, again.lesions)
        assert len(truth["lesions"]) == int(labels.max())


def test_existing_dataset_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        write_dataset(out, n=1, seed=1, config=ABDOMEN, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(ForeignOutputError, match="not written by petseg"):  # not petseg's
        write_dataset(out, n=1, seed=1, config=ABDOMEN, progress=False, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    write_dataset(out, n=1, seed=1, config=ABDOMEN, progress=False, force=True)  # empty
    write_dataset(out, n=1, seed=2, config=ABDOMEN, progress=False, force=True)  # petseg's
    assert (out / "phantom_0000" / "pet.nii.gz").is_file()


def test_dicom_pet_reproduces_suv_from_its_own_headers(tmp_path):
    """SUV = Bq/mL × weight (g) / (dose × 2^(−Δt/T½)), Δt from injection to series start,
    computed here from the raw headers with pydicom."""
    config = PhantomConfig(axial_range_mm=(500.0, 540.0))
    out = write_dataset(tmp_path / "ds", n=1, seed=4, config=config, dicom=True, progress=False)
    case = out / "phantom_0000"
    pet = np.asarray(nib.load(case / "pet.nii.gz").dataobj).transpose(2, 1, 0)
    files = sorted((case / "dicom" / "pet").glob("*.dcm"))
    assert (
        len(files) == pet.shape[0]
        and len(list((case / "dicom" / "ct").glob("*.dcm"))) == pet.shape[0]
    )
    geometry = phantom_geometry((4.0, 4.0, 4.0), config)
    for path in files[:3]:
        ds = pydicom.dcmread(path)
        assert ds.Units == "BQML" and ds.Modality == "PT"
        info = ds.RadiopharmaceuticalInformationSequence[0]
        half_life = float(info.RadionuclideHalfLife)
        dose = float(info.RadionuclideTotalDose)
        weight = float(ds.PatientWeight)
        assert half_life == CU64_HALF_LIFE_S and 50 <= weight <= 110 and 150e6 <= dose <= 250e6
        start = dt.datetime.strptime(
            f"{ds.SeriesDate}{ds.SeriesTime}".split(".")[0], "%Y%m%d%H%M%S"
        )
        injected = dt.datetime.strptime(
            str(info.RadiopharmaceuticalStartDateTime).split(".")[0], "%Y%m%d%H%M%S"
        )
        delay = (start - injected).total_seconds()
        assert 55 * 60 - 1 <= delay <= 65 * 60 + 1
        bqml = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        suv = bqml * weight * 1000 / (dose * 2 ** (-delay / half_life))
        k = round(float(geometry.patient_to_index(np.asarray(ds.ImagePositionPatient, float))[0]))
        np.testing.assert_allclose(suv, pet[k], atol=2e-3 * float(pet.max()))


def test_cli_writes_refuses_and_forces(tmp_path, capsys):
    from petseg.cli import main

    out = tmp_path / "cli"
    args = [
        "phantom",
        "--out",
        str(out),
        "--n",
        "1",
        "--seed",
        "3",
        "--spacing",
        "8,8,8",
        "--no-progress",
    ]
    assert main(args) == 0
    truth = json.loads((out / "phantom_0000" / "truth.json").read_text())
    assert truth["geometry"]["spacing_mm_zyx"] == [8.0, 8.0, 8.0]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0

"""The dataset layer: case ids, case folders, dataset listing (docs/dataset-layout.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from petseg.io import load_study
from petseg.io.dataset import (
    check_case_id,
    find_lesion_maps,
    is_case_folder,
    is_case_id,
    is_dataset,
    list_cases,
    read_dataset_info,
    study_folders,
)
from petseg.io.nifti import write_nifti
from petseg.study import Geometry


@pytest.mark.parametrize(
    "case_id", ["p1", "STS_001", "case-2.b", "0", "A" + "b" * 127, "1.2.840.113619"]
)
def test_valid_case_ids(case_id: str) -> None:
    assert is_case_id(case_id) and check_case_id(case_id, "here") == case_id


@pytest.mark.parametrize(
    "case_id",
    ["", ".hidden", "_x", "-x", "a/b", "a..b", "..", "a b", "é", "a\n", "A" + "b" * 128, 7, None],
)
def test_invalid_case_ids_name_where_they_come_from(case_id: object) -> None:
    assert not is_case_id(case_id)
    with pytest.raises(ValueError, match=r"^cases\.csv line 3: case id .* may only hold letters"):
        check_case_id(case_id, "cases.csv line 3")


def _case(folder: Path, *, lesions: bool = True, ct: bool = False) -> Path:
    geometry = Geometry.from_spacing((2, 3, 4), (3.0, 2.0, 2.0))
    pet = np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 1
    write_nifti(folder / "pet.nii.gz", pet, geometry)
    if ct:
        write_nifti(folder / "ct.nii.gz", np.full((2, 3, 4), -5.0, np.float32), geometry)
    if lesions:
        write_nifti(folder / "lesions.nii.gz", (pet > 20).astype(np.int16), geometry)
    return folder


def test_cases_are_the_folders_holding_a_pet(tmp_path: Path) -> None:
    _case(tmp_path / "b")
    _case(tmp_path / "a", lesions=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cache").mkdir()
    assert is_dataset(tmp_path) and is_case_folder(tmp_path / "a")
    assert not is_case_folder(tmp_path / "notes") and not is_dataset(tmp_path / "notes")
    assert list_cases(tmp_path) == ["a", "b"]
    with pytest.raises(FileNotFoundError, match=r"a: a case folder needs pet\.nii\.gz and lesions"):
        list_cases(tmp_path, labelled=True)
    assert [p.name for p in study_folders(tmp_path)] == ["a", "b", "notes"]


def test_dataset_json_lists_the_cases_in_its_order(tmp_path: Path) -> None:
    _case(tmp_path / "b")
    _case(tmp_path / "a")
    (tmp_path / "dataset.json").write_text(json.dumps({"cases": ["b", "a"], "synthetic": True}))
    assert read_dataset_info(tmp_path)["synthetic"] is True
    assert list_cases(tmp_path, labelled=True) == ["b", "a"]
    (tmp_path / "dataset.json").write_text(json.dumps({"cases": ["b", "../a"]}))
    with pytest.raises(ValueError, match=r"dataset\.json: case id '\.\./a'"):
        list_cases(tmp_path)
    (tmp_path / "dataset.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"dataset\.json: must hold a JSON object, got list"):
        read_dataset_info(tmp_path)
    (tmp_path / "dataset.json").write_text("{")
    with pytest.raises(ValueError, match=r"dataset\.json: not valid JSON"):
        read_dataset_info(tmp_path)


def test_empty_or_missing_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no case folders"):
        list_cases(tmp_path)
    with pytest.raises(NotADirectoryError):
        list_cases(tmp_path / "missing")
    assert not is_dataset(tmp_path / "missing") and not is_dataset(None)


def test_a_folder_named_as_no_case_can_be_is_refused(tmp_path: Path) -> None:
    _case(tmp_path / "ok")
    (tmp_path / "bad name").mkdir()
    with pytest.raises(ValueError, match="bad name: case id 'bad name'"):
        study_folders(tmp_path)


def test_lesion_maps_of_case_folders_and_flat_files(tmp_path: Path) -> None:
    _case(tmp_path / "folders" / "p1")
    _case(tmp_path / "folders" / "p2", lesions=False)  # no lesion map: not a result
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "p1.nii.gz").write_bytes(b"")
    (flat / "p2.nii").write_bytes(b"")
    (flat / "readme.txt").write_text("ignored")
    assert list(find_lesion_maps(tmp_path / "folders")) == ["p1"]
    assert {k: v.name for k, v in find_lesion_maps(flat).items()} == {
        "p1": "p1.nii.gz",
        "p2": "p2.nii",
    }
    (flat / "p1.nii").write_bytes(b"")
    with pytest.raises(ValueError, match="case 'p1' appears twice"):
        find_lesion_maps(flat)


def test_load_study_reads_a_case_folder(tmp_path: Path) -> None:
    folder = _case(tmp_path / "c7", ct=True)
    study = load_study(folder)
    assert study.patient_id == "c7" and study.pet.shape == (2, 3, 4)
    assert float(study.pet[1, 2, 3]) == 24.0 and study.ct is not None
    assert float(study.ct[0, 0, 0]) == -5.0

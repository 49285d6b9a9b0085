"""Finding a cohort's studies (folders and CSV manifests) and the completion manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from petseg.cohort.discover import StudyInput, discover_studies, read_manifest_csv
from petseg.cohort.manifest import (
    clean_partial_outputs,
    input_checksums,
    parameters_hash,
    sha256_file,
    skip_reason,
)


def test_folder_discovery_kinds_order_and_ignored_entries(tmp_path: Path) -> None:
    root = tmp_path / "cohort"
    (root / "b_nifti").mkdir(parents=True)
    (root / "b_nifti" / "pet.nii.gz").write_bytes(b"x")
    (root / "b_nifti" / "ct.nii.gz").write_bytes(b"y")
    (root / "a_dicom" / "pet").mkdir(parents=True)
    (root / "a_dicom" / "pet" / "1.dcm").write_bytes(b"z")
    (root / ".hidden").mkdir()
    (root / "dataset.json").write_text("{}")
    studies = discover_studies(root)
    assert [s.id for s in studies] == ["a_dicom", "b_nifti"]
    assert [s.kind for s in studies] == ["dicom", "nifti"]
    assert studies[0].dicom == root / "a_dicom"
    assert studies[1].pet == root / "b_nifti" / "pet.nii.gz"
    assert studies[1].ct == root / "b_nifti" / "ct.nii.gz"
    assert studies[0].input_files() == [root / "a_dicom" / "pet" / "1.dcm"]


def test_empty_or_missing_cohort_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no study folders"):
        discover_studies(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_studies(tmp_path / "nope")


def test_csv_manifest_relative_paths_and_reference_sphere(tmp_path: Path) -> None:
    (tmp_path / "p2.nii.gz").write_bytes(b"2")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        'id,pet,ct,dicom,ref_sphere\ns2,p2.nii.gz,,,"10, -20.5, 30, 15"\ns1,,,dicomdir/s1,\n',
        encoding="utf-8",
    )
    s1, s2 = read_manifest_csv(manifest)
    assert (s1.id, s1.dicom, s1.pet, s1.ref_sphere) == ("s1", tmp_path / "dicomdir/s1", None, None)
    assert (s2.pet, s2.ct, s2.ref_sphere) == (
        tmp_path / "p2.nii.gz",
        None,
        (10.0, -20.5, 30.0, 15.0),
    )
    assert discover_studies(manifest) == [s1, s2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,pet\na,x.nii\na,y.nii\n", "line 3: study id 'a' appears twice"),
        ("id,pet,dicom\na,x.nii,d\n", "line 2: .*exactly one of a PET file or a DICOM folder"),
        ('id,pet,ref_sphere\na,x.nii,"1,2,3"\n', "line 2: ref_sphere must be 'x,y,z,r'"),
        ("id,pet,weight\na,x.nii,70\n", "unknown: \\['weight'\\]"),
        ("id,pet\n../a,x.nii\n", "line 2: .*may only hold letters"),
    ],
)
def test_csv_manifest_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_manifest_csv(manifest)


def test_sha256_matches_the_fips_test_vector(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    # FIPS 180-2, appendix B.1: SHA-256("abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_parameters_hash_ignores_key_order_but_not_values() -> None:
    assert parameters_hash({"a": 1, "b": 2.5}) == parameters_hash({"b": 2.5, "a": 1})
    assert parameters_hash({"a": 1, "b": 2.5}) != parameters_hash({"a": 1, "b": 2.6})
    text = '{"a":1,"b":2.5}'  # canonical JSON: sorted keys, no spaces
    assert parameters_hash({"b": 2.5, "a": 1}) == hashlib.sha256(text.encode()).hexdigest()


def test_changed_content_with_same_size_and_mtime_is_not_skipped(tmp_path: Path) -> None:
    pet = tmp_path / "pet.nii.gz"
    pet.write_bytes(b"AAAA")
    study = StudyInput("s", pet=pet)
    sums = input_checksums(study)
    record = {"status": "done", "parameters_hash": "h", "inputs": sums}
    assert skip_reason(record, input_checksums(study), "h") is None
    stat = pet.stat()
    pet.write_bytes(b"AAAB")  # same size; restore the modification time as well
    os.utime(pet, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert pet.stat().st_size == stat.st_size and pet.stat().st_mtime_ns == stat.st_mtime_ns
    assert skip_reason(record, input_checksums(study), "h") == "inputs changed: pet"
    assert skip_reason(record, sums, "other") == "parameters changed"
    assert skip_reason(None, sums, "h") == "not finished"


def test_clean_partial_outputs_removes_only_temporaries(tmp_path: Path) -> None:
    (tmp_path / "case_1").mkdir()
    (tmp_path / ".case_2.x7q.partial").mkdir()
    (tmp_path / ".case_3.old-123").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / ".case_2.log.abc.partial.log").write_text("")
    (tmp_path / "logs" / "case_1.log").write_text("")
    removed = clean_partial_outputs(tmp_path)
    assert sorted(p.name for p in removed) == [
        ".case_2.log.abc.partial.log",
        ".case_2.x7q.partial",
        ".case_3.old-123",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_1", "logs"]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["case_1.log"]

"""Every command that writes: ``--out`` never replaces or holds an input, and ``--force``
replaces only what petseg wrote (petseg.io.atomic)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from petseg.cli import EXIT_USER_ERROR, main
from petseg.io.nifti import write_nifti

FIXED = ["--method", "fixed", "--threshold", "8"]


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def data(tmp_path: Path, toy_study) -> Path:  # type: ignore[no-untyped-def]
    """``data/case01``: the toy study as a case folder (pet.nii.gz, lesions.nii.gz)."""
    study, _ = toy_study
    case = tmp_path / "data" / "case01"
    case.mkdir(parents=True)
    write_nifti(case / "pet.nii.gz", study.pet, study.geometry)
    write_nifti(case / "lesions.nii.gz", (study.pet >= 8).astype(np.uint8), study.geometry)
    return case


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stderr and stdout of ``petseg ARGV``."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def overlap_cases(case: Path) -> dict[str, list[str]]:
    """A command line per writing command whose output is an input or holds one."""
    data = case.parent
    pet = case / "pet.nii.gz"
    lesions = case / "lesions.nii.gz"
    elsewhere = data.parent / "elsewhere"
    return {
        "segment into the study": ["segment", str(case), *FIXED, "--out", str(case)],
        "segment into the study's parent": ["segment", str(case), *FIXED, "--out", str(data)],
        "segment onto the PET file": ["segment", "--pet", str(pet), *FIXED, "--out", str(pet)],
        "segment with a mask inside": [
            "segment", str(elsewhere), *FIXED, "--ref-mask", str(lesions), "--out", str(data)
        ],
        "import rtstruct onto its reference": [
            "import", "rtstruct", str(elsewhere / "rs.dcm"), "--reference", str(pet),
            "--out", str(pet),
        ],
        "evaluate into the truth": [
            "evaluate", "--pred", str(elsewhere), "--truth", str(data), "--out", str(data)
        ],
        "evaluate into a prediction's parent": [
            "evaluate", "--pred", f"a={case}", "--truth", str(elsewhere), "--out", str(data)
        ],
        "export rtstruct onto the lesion map": [
            "export", "rtstruct", str(lesions), "--reference", str(elsewhere), "--out", str(lesions)
        ],
        "export seg over the reference": [
            "export", "seg", str(lesions), "--reference", str(case), "--out", str(data)
        ],
        "train into the dataset": ["train", str(data), "--out", str(data)],
        "predict into the study": ["predict", str(case), "--out", str(case)],
        "predict into the model": ["predict", str(elsewhere), "--model", str(case), "--out", str(data)],
        "run into the cohort": ["run", str(data), *FIXED, "--out", str(data), "--workers", "0"],
        "slices build into the dataset": ["slices", "build", str(data), "--out", str(data)],
        "slices experiment onto its slices": [
            "slices", "experiment", str(pet), "--out", str(pet)
        ],
        "slices predict into the study": [
            "slices", "predict", "--models", str(elsewhere), "--study", str(case), "--out", str(case)
        ],
        "nnunet import into the study": [
            "nnunet", "import", "--pred", str(lesions), str(case), "--out", str(case)
        ],
    }  # fmt: skip


@pytest.mark.parametrize("name", list(overlap_cases(Path("x/y"))))
@pytest.mark.parametrize("force", [False, True])
def test_output_that_is_or_holds_an_input_is_refused(
    data: Path, name: str, force: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = overlap_cases(data)[name] + (["--force"] if force else [])
    before = snapshot(data.parent)
    code, err, _ = run(argv, capsys)
    assert code == EXIT_USER_ERROR, err
    assert "the input" in err and "choose" in err and len(err.strip().splitlines()) == 1
    assert snapshot(data.parent) == before


def test_nnunet_export_never_replaces_its_dataset(tmp_path: Path, toy_study, capsys) -> None:  # type: ignore[no-untyped-def]
    study, _ = toy_study
    dataset = tmp_path / "raw" / "Dataset501_NEN"  # the raw folder's own dataset name
    write_nifti(dataset / "case01" / "pet.nii.gz", study.pet, study.geometry)
    write_nifti(
        dataset / "case01" / "lesions.nii.gz", (study.pet >= 8).astype(np.uint8), study.geometry
    )
    before = snapshot(dataset)
    argv = ["nnunet", "export", str(dataset), "--raw", str(tmp_path / "raw"), "--force"]
    code, err, _ = run(argv, capsys)
    assert code == EXIT_USER_ERROR and "is the input" in err
    assert snapshot(dataset) == before


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("not petseg's")
    return path


def test_force_refuses_folders_petseg_did_not_write(data: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mine = user_folder(tmp_path / "mine")
    commands = [
        ["segment", str(data), *FIXED, "--out", str(mine)],
        ["phantom", "--n", "1", "--seed", "1", "--out", str(mine)],
        ["demo", "--out", str(mine)],
        ["evaluate", "--pred", str(data.parent), "--truth", str(data.parent), "--out", str(mine)],
        ["run", str(data.parent), *FIXED, "--out", str(mine), "--workers", "0"],
        ["train", str(data.parent), "--out", str(mine), "--epochs", "1"],
        ["predict", "--pet", str(data / "pet.nii.gz"), "--out", str(mine)],
        ["nnunet", "import", "--pred", str(data / "lesions.nii.gz"),
         "--pet", str(data / "pet.nii.gz"), "--out", str(mine)],
    ]  # fmt: skip
    for argv in commands:
        code, err, _ = run([*argv, "--force"], capsys)
        assert code == EXIT_USER_ERROR, (argv, err)
        assert "not written by petseg" in err, (argv, err)
        assert snapshot(mine) == {"notes.txt": hashlib.sha256(b"not petseg's").hexdigest()}


@pytest.mark.parametrize(
    "kind", ["export rtstruct", "export seg", "import rtstruct", "slices build"]
)
def test_force_refuses_files_petseg_did_not_write(
    data: Path, tmp_path: Path, kind: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    suffix = (
        ".nii.gz" if kind == "import rtstruct" else ".npz" if kind == "slices build" else ".dcm"
    )
    theirs = tmp_path / f"theirs{suffix}"
    theirs.write_bytes(b"someone else's file")
    lesions = data / "lesions.nii.gz"
    argv = {
        "export rtstruct": ["export", "rtstruct", str(lesions), "--reference", str(data)],
        "export seg": ["export", "seg", str(lesions), "--reference", str(data)],
        "import rtstruct": ["import", "rtstruct", str(lesions), "--reference", str(data)],
        "slices build": ["slices", "build", str(data.parent)],
    }[kind]
    code, err, _ = run([*argv, "--out", str(theirs), "--force"], capsys)
    assert code == EXIT_USER_ERROR and "not written by petseg" in err, err
    assert theirs.read_bytes() == b"someone else's file"


def test_force_replaces_what_petseg_wrote_and_keeps_reviews(
    data: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "seg"
    assert run(["segment", str(data), *FIXED, "--out", str(out)], capsys)[0] == 0
    code, err, _ = run(["segment", str(data), *FIXED, "--out", str(out)], capsys)
    assert code == EXIT_USER_ERROR and "--force" in err
    (out / "review" / "v001").mkdir(parents=True)
    (out / "review" / "v001" / "report.json").write_text('{"review": {}}')
    first = json.loads((out / "report.json").read_text())["result_id"]
    assert (
        run(
            ["segment", str(data), *FIXED, "--threshold", "9", "--out", str(out), "--force"], capsys
        )[0]
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["result_id"] != first and report["threshold_suv"] == 9.0
    assert (out / "review" / "v001" / "report.json").read_text() == '{"review": {}}'


def test_run_folder_is_claimed_once_and_resumed(data: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    argv = ["run", str(data.parent), *FIXED, "--out", str(out), "--workers", "0", "--no-progress"]
    assert run(argv, capsys)[0] == 0
    assert json.loads((out / ".petseg-output.json").read_text())["kind"] == "cohort run"
    code, _, printed = run(argv, capsys)  # resumed: the study is skipped
    assert code == 0 and "0 done, 1 skipped" in printed
    seg = tmp_path / "seg"
    assert run(["segment", str(data), *FIXED, "--out", str(seg)], capsys)[0] == 0
    code, err, _ = run(
        ["run", str(data.parent), *FIXED, "--out", str(seg), "--workers", "0"], capsys
    )
    assert code == EXIT_USER_ERROR and "not a cohort run folder" in err

"""The ``petseg`` command's error handling and option checks: one line per error, never a
traceback; an internal error's traceback goes to a log file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from petseg.cli import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, main, run_command
from petseg.io.nifti import write_nifti


@pytest.fixture
def pet(tmp_path: Path, toy_study) -> Path:  # type: ignore[no-untyped-def]
    study, _ = toy_study
    path = tmp_path / "case01" / "pet.nii.gz"
    write_nifti(path, study.pet, study.geometry)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_internal_error_names_the_log_file_holding_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETSEG_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("PETSEG_DEBUG", raising=False)

    def broken() -> int:
        return {"a": 1}["b"]

    assert run_command("segment", broken, ["segment", "x"]) == EXIT_INTERNAL_ERROR
    err = one_error_line(capsys)
    assert err.startswith("petseg segment: internal error (KeyError: 'b')")
    (log,) = (tmp_path / "logs").iterdir()
    assert str(log) in err
    text = log.read_text()
    assert "command: petseg segment x" in text and "Traceback" in text and "broken" in text
    monkeypatch.setenv("PETSEG_DEBUG", "1")
    with pytest.raises(KeyError):
        run_command("segment", broken, ["segment", "x"])


def test_user_errors_are_one_line_with_status_2(
    pet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.nii.gz"
    argv = ["segment", "--pet", str(missing), "--threshold", "4", "--out", str(tmp_path / "o")]
    assert main(argv) == EXIT_USER_ERROR
    assert str(missing) in one_error_line(capsys)

    def multiline() -> int:
        raise ValueError("first line\nsecond line")

    assert run_command("x", multiline, ["x"]) == EXIT_USER_ERROR
    assert one_error_line(capsys) == "petseg x: error: first line second line\n"


def test_an_uncaught_error_never_reaches_the_terminal_as_a_traceback(tmp_path: Path) -> None:
    """The installed command, as a user runs it: ``--min-volume-ml inf`` (a traceback before)."""
    env_out = tmp_path / "o"
    result = subprocess.run(
        [sys.executable, "-m", "petseg", "segment", "--pet", str(tmp_path / "x.nii.gz"),
         "--threshold", "4", "--min-volume-ml", "inf", "--out", str(env_out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == EXIT_USER_ERROR
    assert (
        result.stderr.count("\n") == 1 and "min_volume_ml must be a finite volume" in result.stderr
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (["--min-volume-ml", "nan"], "min_volume_ml must be a finite volume"),
        (["--min-volume-ml", "inf"], "min_volume_ml must be a finite volume"),
        (["--min-volume-ml", "-1"], "min_volume_ml must be a finite volume"),
        (["--threshold", "nan"], "threshold must be a positive SUV"),
        (["--threshold", "-3"], "threshold must be a positive SUV"),
        (["--method", "liver", "--threshold", "4"], "does not apply to method 'liver'"),
        (["--method", "fixed", "--threshold", "4", "--percent-max", "0.3"], "--percent-max"),
        (["--threshold", "4", "--ref-units", "voxel"], "--ref-units"),
        (["--threshold", "4", "--no-body-mask", "--body-threshold", "0.2"], "--no-body-mask"),
        (["--threshold", "4", "--ref-sphere", "1,2,3,15"], "does not apply to method 'fixed'"),
        (["--threshold", "4", "--ref-mask", "MASK"], "reference mask does not apply"),
        (["--method", "percent_max", "--percent-max", "1.5"], r"percent_max must be in \(0, 1\)"),
        (["--threshold", "4", "--suv-factor", "2e-4"], r"--suv-factor .*taken as SUVbw"),
        (["--threshold", "4", "--weight-kg", "70"], r"--weight-kg .*--pet-units BQML"),
        (["--threshold", "4", "--pet-series", "1.2.3"], r"--pet-series\) cannot apply"),
    ],
)
def test_segment_refuses_impossible_and_inapplicable_options(
    pet: Path, tmp_path: Path, options: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = [str(pet) if o == "MASK" else o for o in options]
    out = tmp_path / "out"
    assert main(["segment", "--pet", str(pet), *options, "--out", str(out)]) == EXIT_USER_ERROR
    err = one_error_line(capsys)
    assert re.search(match, err), err
    assert not out.exists()


def test_bqml_read_as_suv_is_refused_unless_the_check_is_switched_off(
    tmp_path: Path, toy_study, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    study, _ = toy_study
    bqml = write_nifti(tmp_path / "bq.nii.gz", study.pet * np.float32(5000), study.geometry)
    argv = ["segment", "--pet", str(bqml), "--threshold", "4"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == EXIT_USER_ERROR
    # toy maximum: SUV 30 x 5000 = 1.5e5
    assert re.search(r"maximum 1\.5e\+05 g/mL.*--pet-units BQML", one_error_line(capsys))
    assert main([*argv, "--no-suv-check", "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["inputs"]["suv"]["plausibility"]["checked"] is False
    assert report["inputs"]["suv"]["plausibility"]["max_g_ml"] == 150000.0


def test_threshold_alone_means_the_fixed_method(pet: Path, tmp_path: Path) -> None:
    import json

    out = tmp_path / "out"
    assert main(["segment", "--pet", str(pet), "--threshold", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "fixed" and report["threshold_suv"] == 8.0
    assert report["patient"]["lesion_count"] == 3  # the toy study's three lesions above 8


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (["--method", "predict", "--threshold", "4"], "--threshold do"),
        (["--method", "predict", "--min-volume-ml", "0.5"], "--min-volume-ml do"),
        (["--method", "predict", "--tracer", "fdg"], "--tracer do"),
        (["--threshold", "4", "--model", "M"], "--model apply to --method predict only"),
        (["--threshold", "4", "--engine", "nnunet"], "--engine apply to --method predict only"),
        (["--threshold", "4", "--device", "cpu"], "--device apply"),
    ],
)
def test_run_refuses_options_of_the_other_method(
    pet: Path, tmp_path: Path, options: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(pet.parent.parent), *options, "--out", str(tmp_path / "run")]
    assert main(argv) == EXIT_USER_ERROR
    assert match in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--negative-limit-ml", "nan"), ("--negative-limit-ml", "inf"), ("--iou", "nan")],
)
def test_evaluate_refuses_impossible_values(
    tmp_path: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    argv = ["evaluate", "--pred", str(truth), "--truth", str(truth), "--out", str(tmp_path / "r")]
    assert main([*argv, option, value]) == EXIT_USER_ERROR
    assert "must be" in one_error_line(capsys)


def test_label_maps_that_are_not_integer_labels_are_refused(
    tmp_path: Path, toy_study, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import nibabel as nib

    study, _ = toy_study
    labels = (study.pet >= 8).astype(np.uint8)
    write_nifti(tmp_path / "truth" / "case01.nii.gz", labels, study.geometry)
    probabilities = np.where(labels > 0, 0.9, 0.1).astype(np.float32)
    write_nifti(tmp_path / "probabilities" / "case01.nii.gz", probabilities, study.geometry)
    # int64 labels of 2**40 (petseg never writes them; nibabel does)
    (tmp_path / "huge").mkdir()
    huge = nib.load(tmp_path / "truth" / "case01.nii.gz")
    values = np.asarray(huge.dataobj).astype(np.int64) * 2**40
    image = nib.Nifti1Image(values, huge.affine, huge.header)
    image.set_data_dtype(np.int64)
    nib.save(image, tmp_path / "huge" / "case01.nii.gz")
    for name, fix in (("probabilities", "threshold"), ("huge", "2**31")):
        argv = ["evaluate", "--pred", str(tmp_path / name), "--truth", str(tmp_path / "truth")]
        assert main([*argv, "--out", str(tmp_path / f"report-{name}")]) == EXIT_USER_ERROR
        err = one_error_line(capsys)
        assert str(tmp_path / name / "case01.nii.gz") in err and fix in err, err


def test_quiet_turns_progress_off_for_the_command_only(monkeypatch, tmp_path):
    import petseg.cli.demo
    from petseg.progress import enabled

    seen = []
    monkeypatch.setattr(petseg.cli.demo, "_run", lambda args: seen.append(enabled()) or 0)
    assert main(["--quiet", "demo", "--out", str(tmp_path / "a")]) == 0
    assert main(["demo", "--out", str(tmp_path / "b")]) == 0
    assert seen == [False, True]
    assert enabled()


def test_a_single_slice_study_is_one_line(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    shutil.copy(real_data / "pet-slices" / "acrin-flt-static.dcm", tmp_path / "slice.dcm")
    argv = ["segment", str(tmp_path), "--threshold", "2.5", "--out", str(tmp_path / "out")]
    assert main(argv) == EXIT_USER_ERROR
    assert "single 2D slice (168, 168)" in one_error_line(capsys)


def test_skip_unreadable_is_recorded_in_the_report(
    sts_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    study = tmp_path / "pet"
    shutil.copytree(sts_study("STS_019") / "pet", study)
    damaged = study / "000000.dcm"
    damaged.write_bytes(damaged.read_bytes()[:600])
    argv = ["segment", str(study), "--threshold", "3", "--out", str(tmp_path / "out")]
    assert main(argv) == EXIT_USER_ERROR
    assert f"{damaged}: DICOM header cut short" in one_error_line(capsys)
    assert main([*argv, "--skip-unreadable"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (skipped,) = report["inputs"]["dicom"]["skipped"]
    assert skipped.startswith(f"{damaged}: DICOM header cut short")

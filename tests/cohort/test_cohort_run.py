"""Cohort runs for real on Dask (LocalCluster with worker processes): equality with the
sequential run, failures as rows, resume after SIGKILL, parameters guard, the CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from petseg.cli import main
from petseg.cohort import PredictPipeline, SegmentPipeline, run_cohort
from petseg.cohort.manifest import DONE_RECORD
from petseg.io.atomic import OutputExistsError
from petseg.io.nifti import read_nifti, write_nifti
from petseg.pipeline import SegmentParams

MEASURES = (
    "lesion_count",
    "total_tumour_volume_ml",
    "lowest_lesion_suv_mean",
    "highest_suv_max",
    "total_tlg_g",
)
FIXED4 = SegmentPipeline(SegmentParams(method="fixed", threshold=4.0), rtstruct=False)


def table(out: Path) -> list[dict[str, str]]:
    with open(out / "cohort.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def results(out: Path) -> dict[str, tuple]:
    """Per study: its measures in the table and its lesion map (what must not depend on
    the number of workers or on interruptions)."""
    found = {}
    for row in table(out):
        labels = (
            read_nifti(out / row["id"] / "lesions.nii.gz")[0] if row["status"] != "failed" else None
        )
        found[row["id"]] = (
            tuple(row[m] for m in MEASURES),
            None if labels is None else labels.tobytes(),
        )
    return found


def test_two_dask_workers_equal_the_sequential_run(tmp_path, make_cohort, expected) -> None:
    cohort = make_cohort(tmp_path / "cohort", 4)
    seq = run_cohort(cohort, tmp_path / "seq", FIXED4, workers=0, progress=False)
    par = run_cohort(cohort, tmp_path / "par", FIXED4, workers=2, progress=False)
    assert seq.workers == "in-process" and par.workers == 2
    assert par.counts == {"done": 4, "skipped": 0, "failed": 0}
    assert results(tmp_path / "seq") == results(tmp_path / "par")
    for case, row in enumerate(table(tmp_path / "par")):
        assert row["id"] == f"case_{case:03d}" and row["status"] == "done"
        for name, value in expected(case).items():
            assert float(row[name]) == pytest.approx(value, rel=1e-6), (case, name)
    record = json.loads((tmp_path / "par" / "case_002" / DONE_RECORD).read_text())
    assert record["parameters"]["threshold"] == 4.0 and list(record["inputs"]) == ["pet"]


def test_network_prediction_on_two_dask_workers_equals_the_sequential_run(
    tmp_path, make_cohort
) -> None:
    """The shipped demonstration network (fold 0) through the cohort runner: each Dask
    worker loads the model once and writes the sequential run's lesion maps."""
    cohort = make_cohort(tmp_path / "cohort", 3)
    for case in range(3):
        folder = cohort / f"case_{case:03d}"
        pet, geometry = read_nifti(folder / "pet.nii.gz")
        write_nifti(folder / "ct.nii.gz", np.full(pet.shape, 40.0, np.float32), geometry)
    pipeline = PredictPipeline(folds="0", rtstruct=False).with_checksum()
    seq = run_cohort(cohort, tmp_path / "seq", pipeline, workers=0, progress=False)
    par = run_cohort(cohort, tmp_path / "par", pipeline, workers=2, progress=False)
    assert seq.counts == par.counts == {"done": 3, "skipped": 0, "failed": 0}
    assert results(tmp_path / "seq") == results(tmp_path / "par")
    record = json.loads((tmp_path / "par" / "case_001" / DONE_RECORD).read_text())
    assert record["parameters"]["pipeline"] == "predict"
    assert record["parameters"]["engine"] == "builtin"
    assert record["parameters"]["model_sha256"] == pipeline.model_sha256
    assert sorted(record["inputs"]) == ["ct", "pet"]


def test_nnunet_engine_needs_a_model() -> None:
    with pytest.raises(ValueError, match="--engine nnunet needs --model"):
        PredictPipeline(engine="nnunet").with_checksum()


def test_broken_study_is_a_failed_row_and_is_redone_when_fixed(
    tmp_path, make_cohort, phantom_pet, capsys
) -> None:
    cohort = make_cohort(tmp_path / "cohort", 3, broken=(1,))
    out = tmp_path / "out"
    argv = ["run", str(cohort), "--out", str(out), "--method", "fixed", "--threshold", "4",
            "--no-rtstruct", "--workers", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 1  # a failed study makes the exit status 1
    printed = capsys.readouterr().out
    assert "3 studies: 2 done, 0 skipped (already finished), 1 failed" in printed
    assert "case_001: ValueError:" in printed
    rows = {r["id"]: r for r in table(out)}
    assert rows["case_001"]["status"] == "failed"
    assert (
        "ValueError" in rows["case_001"]["error"]
        and "empty (all voxels are 0)" in rows["case_001"]["error"]
    )
    assert rows["case_001"]["lesion_count"] == ""
    assert not (out / "case_001").exists()
    assert "Traceback" in (out / "logs" / "case_001.log").read_text()
    # fix the input: only the failed study runs again
    from .conftest import GEOMETRY, case_pet

    write_nifti(cohort / "case_001" / "pet.nii.gz", case_pet(1), GEOMETRY, force=True)
    again = run_cohort(cohort, out, FIXED4, workers=0, progress=False)
    assert {r["id"]: r["status"] for r in again.rows} == {
        "case_000": "skipped",
        "case_001": "done",
        "case_002": "skipped",
    }


def test_other_parameters_need_force(tmp_path, make_cohort) -> None:
    cohort = make_cohort(tmp_path / "cohort", 1)
    run_cohort(cohort, tmp_path / "out", FIXED4, workers=0, progress=False)
    other = SegmentPipeline(SegmentParams(method="fixed", threshold=3.0), rtstruct=False)
    with pytest.raises(OutputExistsError, match=r"changed: threshold.*--force"):
        run_cohort(cohort, tmp_path / "out", other, workers=0, progress=False)
    redo = run_cohort(cohort, tmp_path / "out", other, workers=0, progress=False, force=True)
    assert redo.counts["done"] == 1


def _done_ids(out: Path) -> list[str]:
    """Finished study folders (not a temporary folder whose record is not renamed yet)."""
    folders = (p.parent for p in out.glob(f"*/{DONE_RECORD}"))
    return sorted(f.name for f in folders if not f.name.startswith("."))


def test_sigkill_mid_run_then_resume_loses_nothing_and_redoes_nothing(
    tmp_path, make_cohort
) -> None:
    n = 10
    cohort = make_cohort(tmp_path / "cohort", n)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "petseg", "run", str(cohort), "--out", str(out),
               "--method", "fixed", "--threshold", "4", "--no-rtstruct", "--workers", "1",
               "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(tmp_path / "killed.txt", "w") as output:
        proc = subprocess.Popen(
            command, start_new_session=True, stdout=output, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 90
    while len(_done_ids(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _done_ids(out)
    assert 2 <= len(finished) < n, (finished, (tmp_path / "killed.txt").read_text())
    before = {i: (out / i / DONE_RECORD).stat() for i in finished}
    # nothing half-written is visible as a study folder
    assert all((out / p.name / DONE_RECORD).is_file() for p in out.glob("case_*"))

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _done_ids(out) == [f"case_{c:03d}" for c in range(n)]
    assert not [p.name for p in out.iterdir() if ".partial" in p.name or ".old-" in p.name]
    for study_id, stat in before.items():  # finished studies were not processed again
        now = (out / study_id / DONE_RECORD).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    statuses = {r["id"]: r["status"] for r in table(out)}
    assert {i for i, s in statuses.items() if s == "skipped"} == set(finished)
    log = (out / "logs" / "run.log").read_text()
    for case in range(n):  # each study processed once over both runs (a study finished
        study_id = f"case_{case:03d}"  # just before the kill may not have reached the log)
        assert log.count(f"{study_id}: done") <= 1
        assert log.count(f"{study_id}: skipped") == (study_id in finished)

    clean = run_cohort(cohort, tmp_path / "clean", FIXED4, workers=0, progress=False)
    assert clean.counts["done"] == n
    assert results(out) == results(tmp_path / "clean")


def test_truth_runs_petseg_evaluate_at_the_end(tmp_path, make_cohort, phantom_pet) -> None:
    cohort = make_cohort(tmp_path / "cohort", 2)

    for case in range(2):  # the truth: every voxel above SUV 4 (the hand-made balls)
        folder = cohort / f"case_{case:03d}"
        geometry = read_nifti(folder / "pet.nii.gz")[1]
        write_nifti(folder / "lesions.nii.gz", (phantom_pet(case) > 4).astype(np.int16), geometry)
    run = run_cohort(cohort, tmp_path / "out", FIXED4, workers=0, progress=False, truth=cohort)
    assert run.evaluation is not None and run.evaluation["n_cases"] == 2
    # prediction == truth voxel for voxel, so the pixel-wise Dice is exactly 1
    assert run.evaluation["metrics"]["pixel_dice"]["petseg"]["mean"] == 1.0
    assert (tmp_path / "out" / "evaluation").is_dir()


def test_csv_manifest_with_a_real_dicom_study(tmp_path, sts_study, make_cohort) -> None:
    """A real GE FDG-PET study (DICOM, already SUVbw) beside a NIfTI case, through a CSV
    manifest: the DICOM one gets an RTSTRUCT, and its row equals petseg segment's result."""
    from petseg.io import load_study
    from petseg.pipeline import segment_study

    make_cohort(tmp_path / "nifti", 1)
    dicom = sts_study("STS_019")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"id,pet,dicom\nsts019,,{dicom}\nphantom,nifti/case_000/pet.nii.gz,\n")
    pipeline = SegmentPipeline(SegmentParams(method="fixed", threshold=2.5))
    run = run_cohort(manifest, tmp_path / "out", pipeline, workers=0, progress=False)
    rows = {r["id"]: r for r in run.rows}
    assert [rows[i]["status"] for i in ("phantom", "sts019")] == ["done", "done"]
    assert rows["sts019"]["input"] == "dicom" and rows["phantom"]["input"] == "nifti"
    assert (tmp_path / "out" / "sts019" / "rtstruct.dcm").is_file()
    assert not (tmp_path / "out" / "phantom" / "rtstruct.dcm").exists()
    direct = segment_study(load_study(dicom), SegmentParams(method="fixed", threshold=2.5))
    assert rows["sts019"]["lesion_count"] == direct.patient.lesion_count
    assert rows["sts019"]["total_tumour_volume_ml"] == direct.patient.total_tumour_volume_ml
    record = json.loads((tmp_path / "out" / "sts019" / DONE_RECORD).read_text())
    # every file of the study folder is checksummed: the RTSTRUCT and each PET slice
    assert "dicom/pet-rtstruct.dcm" in record["inputs"]
    assert len(record["inputs"]) == 1 + len(list((dicom / "pet").iterdir()))


def test_organ_maps_from_the_manifest_remove_uptake_and_rerun_when_changed(
    tmp_path, make_cohort, expected
) -> None:
    """case_001 has two lesions (SUV 6 at (4, 6, 12), SUV 7 at (8, 11, 12)); its organ map
    puts the first in the left kidney, so DOTATATE removes it: one lesion is left."""
    make_cohort(tmp_path / "c", 2)
    _, geometry = read_nifti(tmp_path / "c" / "case_001" / "pet.nii.gz")
    organs = np.zeros(geometry.shape, np.uint8)
    organs[2:7, 4:9, 10:15] = 1  # a box around lesion 0 of every case
    organ_file = write_nifti(tmp_path / "c" / "organs_001.nii.gz", organs, geometry)
    (tmp_path / "c" / "organs_001.json").write_text('{"1": "kidney_left"}')
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "id,pet,organs\n"
        "case_000,c/case_000/pet.nii.gz,\n"
        "case_001,c/case_001/pet.nii.gz,c/organs_001.nii.gz\n"
    )
    out = tmp_path / "out"
    argv = ["run", str(manifest), "--out", str(out), "--method", "fixed", "--threshold", "4"]
    argv += ["--tracer", "dotatate", "--workers", "0", "--no-progress", "--no-rtstruct"]
    assert main(argv) == 0
    rows = {row["id"]: row for row in table(out)}
    assert int(rows["case_000"]["lesion_count"]) == expected(0)["lesion_count"] == 1
    assert int(rows["case_001"]["lesion_count"]) == expected(1)["lesion_count"] - 1 == 1
    report = json.loads((out / "case_001" / "report.json").read_text())
    assert [r["organ"] for r in report["organs"]["removed"]] == ["kidneys"]
    assert not (out / "case_000" / "removed.nii.gz").exists()
    record = json.loads((out / "case_001" / DONE_RECORD).read_text())
    assert set(record["inputs"]) == {"pet", "organs/organs_001.nii.gz"}
    # a changed organ map is a changed input: that study runs again, the other is skipped
    organs[:] = 0
    organs[10:14, 18:22, 2:6] = 1  # the kidney away from the lesions
    write_nifti(organ_file, organs, geometry, force=True)
    assert main(argv) == 0
    rows = {row["id"]: row for row in table(out)}
    assert (rows["case_000"]["status"], rows["case_001"]["status"]) == ("skipped", "done")
    assert int(rows["case_001"]["lesion_count"]) == 2
    # a path for every study is refused: it names one study's map
    assert main([*argv, "--organs", str(organ_file)]) == 2


def _review(case_dir: Path, reviewer: str) -> str:
    """Save a review of ``case_dir`` that removes its first lesion; return the version."""
    from petseg.review.cases import CaseData
    from petseg.review.session import CaseSession

    session = CaseSession.open(CaseData.load(case_dir, case_dir.name))
    session.remove(1)
    saved = session.save(
        base_version=session.base_version, reviewer=reviewer, score=2, comment="", active_seconds=5
    )
    return str(saved["version"])


@pytest.mark.parametrize("trigger", ["input changed", "--force with new parameters"])
def test_a_redone_study_keeps_its_reviews_marked_as_older(tmp_path, make_cohort, trigger) -> None:
    from petseg.review.cases import CaseData, Cohort
    from petseg.review.session import CaseSession

    from .conftest import GEOMETRY, case_pet

    cohort = make_cohort(tmp_path / "cohort", 2)
    out = tmp_path / "out"
    run_cohort(cohort, out, FIXED4, workers=0, progress=False)
    assert _review(out / "case_001", "dr a") == "v001"
    pipeline = FIXED4
    if trigger == "input changed":
        write_nifti(cohort / "case_001" / "pet.nii.gz", case_pet(4), GEOMETRY, force=True)
    else:
        pipeline = SegmentPipeline(SegmentParams(method="fixed", threshold=3.0), rtstruct=False)
    redo = run_cohort(cohort, out, pipeline, workers=0, progress=False, force=True)
    assert {r["id"]: r["status"] for r in redo.rows}["case_001"] == "done"
    review = out / "case_001" / "review" / "v001"
    assert (review / "lesions.nii.gz").is_file() and (review / "report.json").is_file()
    status = {row["case_id"]: row for row in Cohort(out).status()}["case_001"]
    assert status["older_result_versions"] == ["v001"]
    assert status["versions"] == 0 and status["status"] == "not reviewed"
    session = CaseSession.open(CaseData.load(out / "case_001", "case_001"))
    assert session.base_version == 0  # the new segmentation, not the older-result review
    assert _review(out / "case_001", "dr b") == "v002"  # numbering continues
    status = {row["case_id"]: row for row in Cohort(out).status()}["case_001"]
    assert status["latest_version"] == "v002" and status["reviewer"] == "dr b"


def test_a_failed_redo_leaves_no_stale_result(tmp_path, make_cohort, phantom_pet) -> None:
    from petseg.cohort.run import REDO_RECORD
    from petseg.evaluate import evaluate_cohort

    from .conftest import GEOMETRY, case_pet

    cohort = make_cohort(tmp_path / "cohort", 2)
    for case in range(2):
        labels = (phantom_pet(case) > 4).astype(np.int16)
        write_nifti(cohort / f"case_{case:03d}" / "lesions.nii.gz", labels, GEOMETRY)
    out = tmp_path / "out"
    first = run_cohort(cohort, out, FIXED4, workers=0, progress=False, truth=cohort)
    assert first.evaluation is not None
    _review(out / "case_000", "dr a")
    write_nifti(cohort / "case_000" / "pet.nii.gz", np.zeros(GEOMETRY.shape, np.float32),
                GEOMETRY, force=True)  # fmt: skip
    again = run_cohort(cohort, out, FIXED4, workers=0, progress=False, truth=cohort)
    assert {r["id"]: r["status"] for r in again.rows} == {
        "case_000": "failed",
        "case_001": "skipped",
    }
    assert again.evaluation is None  # not on a partial cohort
    folder = out / "case_000"
    assert not (folder / "lesions.nii.gz").exists() and not (folder / DONE_RECORD).exists()
    assert json.loads((folder / REDO_RECORD).read_text())["reason"].startswith("inputs changed")
    assert (folder / "review" / "v001" / "lesions.nii.gz").is_file()  # the review is kept
    assert {r["id"]: r["lesion_count"] for r in table(out)}["case_000"] == ""
    with pytest.raises(ValueError, match=r"no prediction for case\(s\) \['case_000'\]"):
        evaluate_cohort({"petseg": out}, cohort, tmp_path / "evaluation")
    write_nifti(cohort / "case_000" / "pet.nii.gz", case_pet(0), GEOMETRY, force=True)
    fixed = run_cohort(cohort, out, FIXED4, workers=0, progress=False, truth=cohort)
    assert fixed.counts == {"done": 1, "skipped": 1, "failed": 0} and fixed.evaluation
    assert (folder / "review" / "v001" / "lesions.nii.gz").is_file()
    assert not (folder / REDO_RECORD).exists()


def test_a_study_folder_petseg_did_not_write_is_never_replaced(tmp_path, make_cohort) -> None:
    cohort = make_cohort(tmp_path / "cohort", 2)
    out = tmp_path / "out"
    run_cohort(cohort, out, FIXED4, workers=0, progress=False)
    mine = out / "case_002"  # not a study of this cohort: a folder someone put there
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (out / "case_001" / DONE_RECORD).unlink()  # unfinished: case_001 is redone
    (out / "case_001" / ".petseg-output.json").unlink()  # ...and no longer marked
    again = run_cohort(cohort, out, FIXED4, workers=0, progress=False)
    rows = {r["id"]: r for r in again.rows}
    assert rows["case_001"]["status"] == "failed"
    assert "not written by petseg" in rows["case_001"]["error"]
    assert (out / "case_001" / "lesions.nii.gz").is_file()  # left as it was
    assert (mine / "notes.txt").read_text() == "mine" and "case_002" not in rows


def test_liver_method_without_ref_sphere_places_the_reference(tmp_path) -> None:
    """No ref_sphere column: each study's VOI is placed automatically; a study's
    ref_sphere in the manifest still overrides it."""
    from petseg.phantom import write_dataset

    dataset = write_dataset(tmp_path / "ds", n=2, seed=5, spacing=(6.0, 6.0, 6.0), progress=False)
    given, auto = sorted(p for p in dataset.iterdir() if p.is_dir())
    x, y, z = json.loads((given / "truth.json").read_text())["reference"]["liver"]["centre_mm"]
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "id,pet,ct,ref_sphere\n"
        f"auto,{auto}/pet.nii.gz,{auto}/ct.nii.gz,\n"
        f'given,{given}/pet.nii.gz,{given}/ct.nii.gz,"{x},{y},{z},15"\n'
    )
    pipeline = SegmentPipeline(SegmentParams(method="liver"), rtstruct=False)
    run = run_cohort(manifest, tmp_path / "out", pipeline, workers=0, progress=False)
    assert run.counts == {"done": 2, "skipped": 0, "failed": 0}
    found = json.loads((tmp_path / "out" / "auto" / "report.json").read_text())["reference"]
    kept = json.loads((tmp_path / "out" / "given" / "report.json").read_text())["reference"]
    assert found["automatic"]["source"] == "CT" and found["organ"] == "liver"
    assert "automatic" not in kept and kept["description"].startswith("liver sphere centre")

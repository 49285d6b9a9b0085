"""The case folder written by write_segmentation_outputs: files, report fields, atomicity."""

import csv
import json

import numpy as np
import pytest

from petseg.io.atomic import ForeignOutputError, OutputExistsError
from petseg.io.nifti import read_nifti
from petseg.pipeline import SegmentParams, segment_study
from petseg.report import write_segmentation_outputs


def test_case_folder_contents(toy_study, tmp_path):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    out = write_segmentation_outputs(tmp_path / "case", study, result)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        ".petseg-output.json",
        "lesions.csv",
        "lesions.nii.gz",
        "mip.png",
        "pet_suv.nii.gz",
        "report.json",
    ]
    labels, geometry = read_nifti(out / "lesions.nii.gz")
    assert np.array_equal(labels, result.labels) and geometry.same_grid(study.geometry)
    report = json.loads((out / "report.json").read_text())
    assert report["patient"]["lesion_count"] == 3
    assert report["threshold_suv"] == 8.0
    assert report["parameters"]["min_voxels"] == 2
    assert report["petseg_version"] and report["created_utc"]
    assert report["synthetic"] is False and "note" not in report
    with open(out / "lesions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["label"]) for r in rows] == [1, 2, 3]
    assert float(rows[0]["volume_ml"]) == pytest.approx(27 * 0.064)
    # PNG signature
    assert (out / "mip.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_existing_folder_and_leaves_nothing_half_written(toy_study, tmp_path):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    write_segmentation_outputs(tmp_path / "case", study, result)
    with pytest.raises(OutputExistsError, match="--force"):
        write_segmentation_outputs(tmp_path / "case", study, result)
    write_segmentation_outputs(tmp_path / "case", study, result, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]  # no temporary leftovers


def test_force_keeps_reviews_and_refuses_what_petseg_did_not_write(toy_study, tmp_path):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    case = write_segmentation_outputs(tmp_path / "case", study, result, mip=False)
    (case / "review" / "v001").mkdir(parents=True)
    (case / "review" / "v001" / "report.json").write_text("{}")
    first_id = json.loads((case / "report.json").read_text())["result_id"]
    write_segmentation_outputs(case, study, result, mip=False, force=True)
    assert (case / "review" / "v001" / "report.json").read_text() == "{}"
    assert json.loads((case / "report.json").read_text())["result_id"] != first_id
    (case / "notes.txt").write_text("physician's notes")
    with pytest.raises(ForeignOutputError, match=r"notes\.txt"):
        write_segmentation_outputs(case, study, result, mip=False, force=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.txt").write_text("x")
    with pytest.raises(ForeignOutputError, match="not written by petseg"):
        write_segmentation_outputs(mine, study, result, mip=False, force=True)
    assert (mine / "data.txt").read_text() == "x" and (case / "notes.txt").is_file()


def test_synthetic_study_says_so(toy_study, tmp_path):
    study, _ = toy_study
    study.provenance["synthetic"] = True
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    report = json.loads(
        (
            write_segmentation_outputs(tmp_path / "c", study, result, mip=False) / "report.json"
        ).read_text()
    )
    assert report["synthetic"] is True and "SYNTHETIC" in report["note"]


def test_extras_are_written_inside_the_atomic_folder(toy_study, tmp_path):
    study, _ = toy_study
    result = segment_study(study, SegmentParams(method="fixed", threshold=8.0))

    def extra(folder):
        assert folder.name != "case"  # still the temporary folder, renamed afterwards
        (folder / "extra.txt").write_text("x")
        return ["extra.txt"]

    out = write_segmentation_outputs(tmp_path / "case", study, result, mip=False, extras=extra)
    assert (out / "extra.txt").read_text() == "x"
    assert "extra.txt" in json.loads((out / "report.json").read_text())["outputs"]

    def failing(folder):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_segmentation_outputs(tmp_path / "other", study, result, mip=False, extras=failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]  # nothing half-written


def test_mip_outlines_the_reference_voi(toy_study, tmp_path):
    from PIL import Image

    from petseg.report import REFERENCE_COLOUR, reference_overlay

    study, _ = toy_study
    centre = study.geometry.index_to_patient((10, 17, 13))
    with_voi = segment_study(study, SegmentParams(method="liver", ref_sphere=(*centre, 12.0)))
    without = segment_study(study, SegmentParams(method="fixed", threshold=8.0))
    (overlay,) = reference_overlay(with_voi)
    assert overlay.name == "liver reference VOI" and overlay.colour == REFERENCE_COLOUR
    assert np.array_equal(overlay.mask, with_voi.reference_mask) and overlay.mask.sum() > 10
    assert reference_overlay(without) == []

    def magenta_pixels(result, name):
        out = write_segmentation_outputs(tmp_path / name, study, result)
        rgb = np.asarray(Image.open(out / "mip.png").convert("RGB")).astype(int)
        return int(np.sum((rgb[..., 0] > 200) & (rgb[..., 1] < 80) & (rgb[..., 2] > 200)))

    assert magenta_pixels(with_voi, "voi") > 50
    assert magenta_pixels(without, "none") == 0

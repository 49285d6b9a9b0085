"""`petseg demo` end to end on the embedded phantom (the README's main-job command)."""

import json

import numpy as np
import pytest

from petseg.cli import main


def test_demo_writes_outputs_and_finds_lesions(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "liver-corrected" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic"] is True
    rows = summary["rows"]
    corrected, automatic = rows["liver-corrected"], rows["liver-threshold"]
    # removing physiological uptake by label only removes false positives
    assert corrected["lesion_fp"] <= automatic["lesion_fp"]
    assert corrected["pixel_dice"] > automatic["pixel_dice"]
    assert corrected["lesion_sensitivity"] > 0.4  # most lesions are above the liver threshold
    # no coordinate given: the automatic VOI matches the physician-corrected row
    assert rows["liver-automatic"]["pixel_dice"] == pytest.approx(corrected["pixel_dice"], abs=0.02)
    assert rows["liver-automatic"]["lesion_fp"] == 0
    for folder in ("phantom", "liver-threshold", "liver-threshold-corrected", "liver-automatic"):
        assert (out / folder).is_dir()
    report = json.loads((out / "liver-threshold-corrected" / "report.json").read_text())
    assert report["synthetic"] is True and report["reference"]["organ"] == "liver"
    report = json.loads((out / "liver-automatic" / "report.json").read_text())
    automatic = report["reference"]["automatic"]
    assert (automatic["source"], automatic["organ"], automatic["switch"]) == (
        "organ map",
        "liver",
        None,
    )
    assert report["threshold_suv"] == pytest.approx(automatic["threshold_suv"])
    assert summary["automatic_reference"]["centre_mm"] == automatic["centre_mm"]
    # refuses to overwrite without --force
    assert main(["demo", "--out", str(out), "--seed", "7"]) == 2


@pytest.mark.slow
def test_demo_with_the_shipped_network(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--ai"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "ai-ensemble" in summary["rows"]
    report = json.loads((out / "ai-ensemble" / "report.json").read_text())
    assert report["model"]["trained_on_synthetic_data"] is True
    assert "MODEL_CARD.md" in report["model"]["note"]
    assert (out / "ai-ensemble" / "uncertainty.nii.gz").is_file()
    row = summary["rows"]["ai-ensemble"]
    assert 0 <= row["review_first_false_positives"] <= row["false_positives"]
    assert row["review_first"] == sum(u["review_first"] for u in report["lesions"])


def test_review_flags_count_flagged_false_positives():
    from petseg.demo import review_flags
    from petseg.lesions import patient_stats
    from petseg.result import SegmentationResult
    from petseg.uncertainty import LesionUncertainty

    labels = np.array([[[1, 1, 0, 2, 0, 3]]], np.int32)
    truth = np.array([[[0, 1, 0, 0, 0, 1]]])  # lesions 1 and 3 are true, 2 is false
    flags = [(1, True), (2, True), (3, False)]
    result = SegmentationResult(
        labels=labels,
        lesions=[],
        patient=patient_stats([]),
        method="network",
        parameters={},
        lesion_uncertainty=[LesionUncertainty(k, 0.1, 0.2, 3, 5, f) for k, f in flags],
    )
    assert review_flags(result, truth) == {
        "review_first": 2,
        "false_positives": 1,
        "review_first_false_positives": 1,
    }

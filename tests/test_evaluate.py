"""petseg.evaluate and ``petseg evaluate``: per-case rows, cohort report, input checks."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from petseg.evaluate import EvaluationParams, evaluate_case, evaluate_cohort
from petseg.io import nifti
from petseg.io.dataset import find_lesion_maps
from petseg.study import Geometry

GEOM = Geometry.from_spacing((6, 10, 12), (3.0, 2.0, 2.0))  # 0.012 mL voxels


def _run_cli(argv: list[str]) -> int:
    """Parse with the evaluate subcommand alone (the other subcommands are not needed)."""
    from petseg.cli import evaluate as cli_evaluate

    parser = argparse.ArgumentParser(prog="petseg")
    cli_evaluate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def _truth(kind: str) -> np.ndarray:
    t = np.zeros(GEOM.shape, np.int32)
    if kind == "lesions":
        t[1:3, 1:3, 1:3] = 1  # 8 voxels
        t[4, 6:8, 6:9] = 2  # 6 voxels
    return t


def _write_dataset(root: Path) -> None:
    """Truth in case folders; model 'good' in case folders, model 'poor' flat."""
    cases = {"p1": "lesions", "p2": "lesions", "p3": "lesions", "neg1": "none", "neg2": "none"}
    for k, (case, kind) in enumerate(cases.items()):
        truth = _truth(kind)
        nifti.write_nifti(root / "truth" / case / "lesions.nii.gz", truth, GEOM)
        good = truth > 0
        if k == 0:
            good[1, 1, 1] = False  # case p1 loses one voxel
        poor = truth == 1  # the second lesion is missed everywhere
        if kind == "none":
            good = np.zeros(GEOM.shape, bool)
            poor = np.zeros(GEOM.shape, bool)
            poor[0, 0, 0 : k + 1] = True  # 4 and 5 voxels of false positive
        nifti.write_nifti(root / "good" / case / "lesions.nii.gz", good.astype(np.uint8), GEOM)
        nifti.write_nifti(root / "poor" / f"{case}.nii.gz", poor.astype(np.uint8), GEOM)


def test_evaluate_case_by_hand():
    truth = _truth("lesions")
    pred = truth > 0
    pred[4, 6:8, 6:9] = False  # lesion 2 missed (6 voxels)
    pred[0, 9, 0:2] = True  # FP component, 2 voxels
    row = evaluate_case(pred, truth, GEOM)
    # TP 8, FP 2, FN 6: Dice 16/24; precision 8/10; sensitivity 8/14
    assert row["pixel_dice"] == pytest.approx(16 / 24)
    assert row["pixel_precision"] == pytest.approx(0.8)
    assert row["pixel_sensitivity"] == pytest.approx(8 / 14)
    # lesions: 2 true, 2 predicted, TP 1, FP 1, FN 1 -> lesion Dice 2/4
    assert (row["lesion_tp"], row["lesion_fp"], row["lesion_fn"]) == (1, 1, 1)
    assert row["lesion_dice_f1"] == pytest.approx(0.5)
    # autoPET volumes: FP 2 voxels, FN 6 voxels of 0.012 mL
    assert row["fp_volume_ml"] == pytest.approx(0.024)
    assert row["fn_volume_ml"] == pytest.approx(0.072)
    # Table 1: 1 missed, 1 FP -> 3
    assert row["score"] == 3
    # slices with tumour: z1, z2 Dice 1, z4 Dice 0 -> median 1
    assert row["median_slice_dice"] == 1.0
    assert row["negative_control"] is False


def test_find_cases_layouts(tmp_path):
    _write_dataset(tmp_path)
    assert sorted(find_lesion_maps(tmp_path / "truth")) == ["neg1", "neg2", "p1", "p2", "p3"]
    assert find_lesion_maps(tmp_path / "poor")["p1"].name == "p1.nii.gz"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no cases"):
        find_lesion_maps(tmp_path / "empty")


def test_cli_report(tmp_path):
    _write_dataset(tmp_path)
    out = tmp_path / "report"
    thresholds = tmp_path / "thr.csv"
    thresholds.write_text("optimal,predicted\n0.2,0.25\n0.4,0.41\n0.6,0.62\n0.5,0.45\n")
    argv = ["evaluate", "--pred", f"good={tmp_path / 'good'}", "--pred", str(tmp_path / "poor")]
    argv += ["--name", "poor", "--truth", str(tmp_path / "truth"), "--out", str(out)]
    argv += ["--thresholds", str(thresholds)]
    assert _run_cli(argv) == 0
    assert {p.name for p in out.iterdir()} == {
        ".petseg-output.json",
        "per_case.csv",
        "summary.json",
        "summary.md",
        "summary.html",
        "dice.png",
        "thresholds.png",
    }
    rows = list(csv.DictReader((out / "per_case.csv").read_text().splitlines()))
    assert len(rows) == 10  # 2 models × 5 cases
    report = json.loads((out / "summary.json").read_text())
    assert report["models"] == ["good", "poor"]
    assert report["parameters"]["connectivity"] == 26
    assert report["petseg_version"]
    assert (report["n_cases_with_lesions"], report["n_negative_controls"]) == (3, 2)
    # good: p1 Dice 2·13/(13+14), p2 and p3 Dice 1
    good = report["metrics"]["pixel_dice"]["good"]
    assert good["mean"] == pytest.approx((26 / 27 + 2) / 3)
    # poor: every case TP 8, FN 6 -> 16/22; lesion Dice 2/3; score 3 (one missed)
    poor = report["metrics"]["pixel_dice"]["poor"]
    assert poor["mean"] == pytest.approx(16 / 22) and poor["sd"] == pytest.approx(0.0)
    assert report["metrics"]["lesion_dice_f1"]["poor"]["median"] == pytest.approx(2 / 3)
    assert report["best"]["pixel_dice"]["mean"] == ["good"]
    assert report["scores"]["good"] == {"1": 3, "2": 0, "3": 0, "4": 0, "5": 0}
    assert report["scores"]["poor"]["3"] == 3
    # negative controls: good segments nothing; poor segments 4 and 5 voxels (0.048, 0.06 mL)
    neg = report["negative_controls"]
    assert neg["good"]["share_none"] == 1.0
    assert neg["poor"]["share_none"] == 0.0
    assert neg["poor"]["median_volume_ml"] == pytest.approx(0.054)
    # paired tests between the two models on the 3 cases with lesions
    test = report["tests"]["pixel_dice"][0]
    assert (test["a"], test["b"], test["n"]) == ("good", "poor", 3)
    from scipy import stats as sps

    a = [26 / 27, 1.0, 1.0]
    b = [16 / 22] * 3
    assert test["wilcoxon_pvalue"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert test["t_pvalue"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    # Rainio Fig. 3 fit of the thresholds table
    assert report["threshold_fit"]["n"] == 4
    md = (out / "summary.md").read_text()
    assert "| Pixel-wise Dice | **0.988 (0.021)** | 0.727 (0.000) |" in md
    # refuses to overwrite without --force, replaces with it
    with pytest.raises(FileExistsError, match="--force"):
        _run_cli(argv)
    assert _run_cli([*argv, "--force"]) == 0


def test_missing_case_is_named(tmp_path):
    _write_dataset(tmp_path)
    (tmp_path / "poor" / "p2.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"model 'poor' has no prediction for case\(s\) \['p2'\]"):
        evaluate_cohort({"poor": tmp_path / "poor"}, tmp_path / "truth", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (Geometry.from_spacing((6, 10, 11), (3.0, 2.0, 2.0)), "grid"),
        (Geometry.from_spacing((6, 10, 12), (3.0, 2.0, 2.5)), "voxel spacing"),
        (Geometry.from_spacing((6, 10, 12), (3.0, 2.0, 2.0), origin=(5, 0, 0)), "affine"),
    ],
)
def test_mismatched_grids_are_refused(tmp_path, geometry, message):
    _write_dataset(tmp_path)
    nifti.write_nifti(
        tmp_path / "poor" / "p3.nii.gz", np.zeros(geometry.shape, np.uint8), geometry, force=True
    )
    with pytest.raises(ValueError, match=rf"case 'p3'.*{message}"):
        evaluate_cohort({"poor": tmp_path / "poor"}, tmp_path / "truth", tmp_path / "out")


def test_probability_map_is_not_scored_as_labels(tmp_path):
    """A probability map (0.7 where the lesions are) would score Dice 1.000 if cast to
    labels; it is refused, naming the file."""
    _write_dataset(tmp_path)
    probability = (_truth("lesions") > 0) * np.float32(0.7)
    nifti.write_nifti(tmp_path / "poor" / "p2.nii.gz", probability, GEOM, force=True)
    with pytest.raises(ValueError, match=r"p2\.nii\.gz holds non-integer values.*probability"):
        evaluate_cohort({"poor": tmp_path / "poor"}, tmp_path / "truth", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_params_are_checked():
    with pytest.raises(ValueError, match="did you mean 'one-to-one'"):
        EvaluationParams(matching="one-to-on")
    with pytest.raises(ValueError, match="iou_threshold"):
        EvaluationParams(criterion="iou", iou_threshold=0.0)


def test_empty_truth_case_row():
    pred = np.zeros(GEOM.shape, bool)
    pred[0, 0, 0:3] = True
    row = evaluate_case(pred, _truth("none"), GEOM)
    assert row["negative_control"] is True
    assert math.isnan(row["autopet_dice"]) and math.isnan(row["fn_volume_ml"])
    assert row["fp_volume_ml"] == pytest.approx(0.036)
    assert (row["pred_components"], row["score"]) == (1, 3)

"""petseg.metrics: hand-computed tiny cases, panoptica and autoPET III fixtures."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from petseg.metrics import (
    ComponentPair,
    PixelMetrics,
    autopet_from_components,
    autopet_metrics,
    label_pair,
    match_components,
    match_lesions,
    negative_control_case,
    negative_control_summary,
    pixel_metrics,
    score_case,
    score_from_match,
    slice_dice,
)

FIXTURES = Path(__file__).resolve().parent / "data" / "panoptica"


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MF = _load_fixture_module()
CASES = MF.make_cases()
EXPECTED = json.loads((FIXTURES / "fixtures.json").read_text())


def _vol(shape=(3, 6, 6)):
    return np.zeros(shape, dtype=bool)


# --------------------------------------------------------------------------- pixel-wise


def test_pixel_metrics_hand_case():
    truth, pred = _vol(), _vol()
    truth[1, 1:4, 1:4] = True  # 9 voxels
    pred[1, 1:4, 2:5] = True  # 9 voxels, 6 shared
    m = pixel_metrics(pred, truth)
    # TP 6, FP 3, FN 3: Dice 12/18, precision 6/9, sensitivity 6/9
    assert (m.tp, m.fp, m.fn) == (6, 3, 3)
    assert m.dice == pytest.approx(12 / 18)
    assert m.precision == pytest.approx(6 / 9)
    assert m.sensitivity == pytest.approx(6 / 9)


def test_pixel_metrics_label_maps_are_binarised():
    truth, pred = np.zeros((2, 3, 3), np.int32), np.zeros((2, 3, 3), np.int32)
    truth[0, 0, :2] = [1, 2]
    pred[0, 0, 0] = 7
    # TP 1, FP 0, FN 1: Dice 2/3
    assert pixel_metrics(pred, truth).dice == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("policy", "both_empty", "empty_truth", "empty_pred"),
    [
        # (dice, precision, sensitivity) for: both empty / truth empty, 2 FP voxels /
        # prediction empty, 2 FN voxels. Defined ratios: 0/2 = 0.
        ("nan", (math.nan,) * 3, (0.0, 0.0, math.nan), (0.0, math.nan, 0.0)),
        ("one", (1.0, 1.0, 1.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
        ("zero", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ("autopet", (math.nan,) * 3, (math.nan,) * 3, (0.0, math.nan, 0.0)),
    ],
)
def test_pixel_empty_policies(policy, both_empty, empty_truth, empty_pred):
    empty, two = _vol(), _vol()
    two[0, 0, :2] = True
    for pred, truth, expected in (
        (empty, empty, both_empty),
        (two, empty, empty_truth),
        (empty, two, empty_pred),
    ):
        m = pixel_metrics(pred, truth, empty=policy)
        np.testing.assert_equal((m.dice, m.precision, m.sensitivity), expected)


def test_pixel_metrics_errors_name_the_problem():
    with pytest.raises(ValueError, match="same shape"):
        pixel_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="did you mean 'nan'"):
        pixel_metrics(_vol(), _vol(), empty="nans")


def test_pixel_metrics_from_counts():
    # TP 6, FP 3, FN 3 (the hand case above) without any array
    m = PixelMetrics.from_counts(6, 3, 3)
    assert (m.dice, m.precision, m.sensitivity) == (12 / 18, 6 / 9, 6 / 9)
    # empty truth, 2 FP voxels: autoPET leaves every ratio undefined, "zero" makes 0/0 = 0
    assert np.isnan(PixelMetrics.from_counts(0, 2, 0, empty="autopet").dice)
    assert PixelMetrics.from_counts(0, 2, 0, empty="zero").sensitivity == 0.0
    with pytest.raises(ValueError, match="≥ 0"):
        PixelMetrics.from_counts(1, -1, 0)
    with pytest.raises(ValueError, match="did you mean 'one'"):
        PixelMetrics.from_counts(1, 0, 0, empty="ones")


def test_slice_dice():
    truth, pred = _vol(), _vol()
    truth[0, 0, 0:2] = True
    pred[0, 0, 0] = True  # slice 0: 2·1/(1+2)
    truth[2, 1, 1] = True
    pred[2, 1, 1] = True  # slice 2: 1; slice 1 empty on both sides: NaN
    np.testing.assert_allclose(slice_dice(pred, truth), [2 / 3, np.nan, 1.0])
    np.testing.assert_allclose(slice_dice(pred, truth, empty="one"), [2 / 3, 1.0, 1.0])


# --------------------------------------------------------------------------- lesion-wise


def _lesion_case():
    """Truth: A (z0, 2×2), B (z2, 2×2), C (z4, 1 voxel). Prediction: covers A exactly,
    half of B plus 2 outside voxels joined to it, a lone FP voxel; C is missed."""
    truth = np.zeros((5, 6, 6), bool)
    pred = np.zeros_like(truth)
    truth[0, 0:2, 0:2] = True  # A, 4 voxels
    truth[2, 0:2, 0:2] = True  # B, 4 voxels
    truth[4, 5, 5] = True  # C, 1 voxel
    pred[0, 0:2, 0:2] = True  # = A
    pred[2, 0:2, 0] = True  # half of B ...
    pred[2, 2:4, 0] = True  # ... extended by 2 voxels: component of 4, 2 shared with B
    pred[4, 0, 5] = True  # false positive
    return pred, truth


def test_lesion_counts_and_lesion_dice_by_hand():
    pred, truth = _lesion_case()
    m = match_lesions(pred, truth)  # overlap, many-to-many, 26-connectivity
    # 3 true, 3 predicted; A and B detected, C missed; the lone voxel is a FP.
    assert (m.n_true, m.n_pred, m.detected_true, m.missed, m.false_positive) == (3, 3, 2, 1, 1)
    assert m.sensitivity == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(2 / 3)
    # lesion-wise Dice 2·2/(2·2+1+1) = 4/6
    assert m.lesion_dice_f1 == pytest.approx(4 / 6)
    # per-lesion Dice: A 1; B 2·2/(4+4) = 0.5; C missed
    np.testing.assert_allclose(m.per_lesion_dice, [1.0, 0.5, np.nan])
    assert m.mean_matched_dice == pytest.approx(0.75)


def test_iou_criterion_rejects_weak_overlap():
    pred, truth = _lesion_case()
    # B pair: intersection 2, union 4+4-2 = 6, IoU 1/3 < 0.5 -> B becomes missed and
    # its prediction a false positive.
    m = match_lesions(pred, truth, criterion="iou", iou_threshold=0.5)
    assert (m.detected_true, m.missed, m.false_positive) == (1, 2, 2)
    assert m.lesion_dice_f1 == pytest.approx(2 / (2 + 2 + 2))
    m = match_lesions(pred, truth, criterion="iou", iou_threshold=0.3)
    assert m.detected_true == 2


def test_matching_modes_on_split_and_merge():
    truth = np.zeros((1, 3, 9), bool)
    pred = np.zeros_like(truth)
    truth[0, 1, 0:2] = True  # T1, 2 voxels
    truth[0, 1, 3:5] = True  # T2, 2 voxels
    pred[0, 1, 0:5] = True  # P1 merges T1 and T2 (5 voxels)
    truth[0, 1, 7:9] = True  # T3, 2 voxels
    pred[0, 1, 7] = True  # P2 overlaps T3 (1 voxel)
    pred[0, 0, 8] = True  # P3 touches P2 only diagonally (separate at 6) and no truth
    kw = {"connectivity": 6}
    many = match_lesions(pred, truth, matching="many-to-many", **kw)
    # T1, T2 detected by P1, T3 by P2; P3 is the only FP
    assert (many.detected_true, many.matched_pred, many.false_positive) == (3, 2, 1)
    # per-lesion Dice: T1 and T2 2·2/(2+5), T3 2·1/(2+1)
    np.testing.assert_allclose(many.per_lesion_dice, [4 / 7, 4 / 7, 2 / 3])
    one = match_lesions(pred, truth, matching="one-to-one", **kw)
    # IoU: P2–T3 1/2 first; P1–T1 and P1–T2 tie at 2/5, the lower true label wins
    assert (one.detected_true, one.missed, one.false_positive) == (2, 1, 1)
    assert one.pairs_true.tolist() == [1, 3]
    m2o = match_lesions(pred, truth, matching="many-to-one", **kw)
    # each prediction to its best true lesion: P1 -> T1, P2 -> T3; T2 missed
    assert (m2o.detected_true, m2o.missed, m2o.false_positive) == (2, 1, 1)


def test_connectivity_changes_lesion_count():
    case = CASES["corner_touching"]
    assert match_lesions(case["pred"], case["truth"], connectivity=26).n_true == 1
    assert match_lesions(case["pred"], case["truth"], connectivity=18).n_true == 2
    with pytest.raises(ValueError, match="connectivity must be one of"):
        match_lesions(case["pred"], case["truth"], connectivity=8)


def test_lesion_empty_cases():
    empty = _vol()
    one = _vol()
    one[1, 1, 1] = True
    m = match_lesions(one, empty)  # FP only: sensitivity 0/0, precision 0/1, F1 0/1
    assert math.isnan(m.sensitivity) and m.precision == 0.0 and m.lesion_dice_f1 == 0.0
    m = match_lesions(empty, empty)
    assert math.isnan(m.lesion_dice_f1)
    assert match_lesions(empty, empty, empty="one").lesion_dice_f1 == 1.0


def test_label_pair_reads_components_at_the_union_voxels():
    pred, truth = _lesion_case()
    pair = label_pair(pred, truth)
    # union: A 4, B 4 + 2 outside, C 1, lone FP 1 = 12 voxels
    assert pair.pred_labels.shape == pair.true_labels.shape == (12,)
    assert (pair.n_pred, pair.n_true, pair.connectivity) == (3, 3, 26)
    # TP = A 4 + half of B 2; FP = 2 outside B + lone voxel; FN = half of B 2 + C 1
    assert pair.voxel_counts == (6, 3, 3)
    none = label_pair(_vol(), _vol())
    assert (none.n_pred, none.n_true, none.pred_labels.size, none.voxel_counts) == (
        0,
        0,
        0,
        (0, 0, 0),
    )
    with pytest.raises(ValueError, match="same voxels"):
        ComponentPair(np.zeros(3, np.int64), 0, np.zeros(2, np.int64), 0, 26)


def test_label_pair_crop_keeps_components_at_the_border():
    # Lesions on the volume's faces: the crop margin is clipped, components stay whole.
    truth = np.zeros((4, 5, 6), bool)
    truth[0, 0, 0:3] = True
    truth[3, 4, 5] = True
    pred = truth.copy()
    pred[3, 4, 5] = False
    pair = label_pair(pred, truth)
    assert (pair.n_true, pair.n_pred) == (2, 1)
    assert pair.voxel_counts == (3, 0, 1)


def test_match_and_autopet_from_one_labelling_equal_the_array_functions():
    pred, truth = _lesion_case()
    pair = label_pair(pred, truth, connectivity=18)
    for kw in ({}, {"criterion": "iou", "iou_threshold": 0.3}, {"matching": "one-to-one"}):
        a = match_components(pair, **kw)
        b = match_lesions(pred, truth, connectivity=18, **kw)
        assert a.to_dict() == pytest.approx(b.to_dict(), nan_ok=True)
    assert autopet_from_components(pair, 0.012) == autopet_metrics(pred, truth, 0.012)
    with pytest.raises(ValueError, match="voxel_volume_ml must be positive"):
        autopet_from_components(pair, 0.0)
    with pytest.raises(ValueError, match="did you mean 'iou'"):
        match_components(pair, criterion="ious")


# --------------------------------------------------------------------------- panoptica / autoPET


@pytest.mark.parametrize("name", sorted(EXPECTED["cases"]))
@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_same_as_panoptica_naive_threshold_matching(name, connectivity):
    """Fixture from panoptica 2.1.7 NaiveThresholdMatching(IoU, 0.5), see make_fixtures.py."""
    case = CASES[name]
    expected = EXPECTED["cases"][name]["panoptica"][str(connectivity)]
    m = match_lesions(
        case["pred"],
        case["truth"],
        connectivity=connectivity,
        criterion="iou",
        iou_threshold=0.5,
        matching="one-to-one",
    )
    assert (m.n_true, m.n_pred) == (expected["n_ref"], expected["n_pred"])
    assert (m.detected_true, m.false_positive, m.missed) == (
        expected["tp"],
        expected["fp"],
        expected["fn"],
    )
    np.testing.assert_allclose(np.sort(m.pairs_dice), expected["pair_dice"], rtol=1e-12)
    if expected["global_dice"] is not None:
        assert pixel_metrics(case["pred"], case["truth"]).dice == pytest.approx(
            expected["global_dice"], rel=1e-12
        )


@pytest.mark.parametrize("name", sorted(EXPECTED["cases"]))
def test_same_as_autopet_iii_formulas(name):
    """Fixture from the autoPET III formulas (18-connectivity, scipy labels), see make_fixtures.py."""
    case = CASES[name]
    expected = EXPECTED["cases"][name]["autopet"]
    voxel_ml = float(np.prod(MF.SPACINGS[case["spacing"]])) / 1000.0
    got = autopet_metrics(case["pred"], case["truth"], voxel_ml)
    for key, value in (
        ("dice", got.dice),
        ("fp_volume_ml", got.fp_volume_ml),
        ("fn_volume_ml", got.fn_volume_ml),
    ):
        if expected[key] is None:
            assert math.isnan(value), key
        else:
            assert value == pytest.approx(expected[key], rel=1e-12, abs=1e-15), key


def test_panoptica_live_if_installed():
    panoptica = pytest.importorskip(
        "panoptica",
        reason="panoptica is not in petseg's environment (numpy/cc3d pins); fixtures cover it",
    )
    assert panoptica is not None
    for name, case in CASES.items():
        live = MF._panoptica(case["pred"], case["truth"], 26)
        assert live == EXPECTED["cases"][name]["panoptica"]["26"]


def test_autopet_hand_case_and_spacing():
    truth, pred = _vol(), _vol()
    truth[0, 0, 0:2] = True  # touched by prediction
    truth[2, 4, 4] = True  # untouched: FN, 1 voxel
    pred[0, 0, 1:3] = True  # touches truth
    pred[2, 0, 5] = True  # FP, 1 voxel
    # 2×2×3 mm = 0.012 mL per voxel; Dice 2·1/(3+3)
    got = autopet_metrics(pred, truth, 0.012)
    assert got.dice == pytest.approx(1 / 3)
    assert got.fp_volume_ml == pytest.approx(0.012)
    assert got.fn_volume_ml == pytest.approx(0.012)
    # (1, 1, 2) shares only an edge with (0, 0, 2): at 18-connectivity it joins the
    # component that touches the truth, at 6-connectivity it is one more FP voxel
    pred[1, 1, 2] = True
    assert autopet_metrics(pred, truth, 0.012).fp_volume_ml == pytest.approx(0.012)
    assert autopet_metrics(pred, truth, 0.012, connectivity=6).fp_volume_ml == pytest.approx(0.024)


# --------------------------------------------------------------------------- Table 1 score


@pytest.mark.parametrize(
    ("counts", "score"),
    [
        # (n_true, n_missed, n_false_positive, n_minor)
        ((5, 0, 0, 0), 1),  # row 1: no FP/FN at all
        ((0, 0, 0, 0), 1),  # negative control without segmentation
        ((5, 0, 0, 2), 2),  # row 2: all found, only minor errors
        ((5, 1, 0, 0), 3),  # row 3: 1 missed
        ((5, 3, 2, 1), 3),  # row 3 limits: 3 missed, 2 FP, minor allowed
        ((5, 0, 1, 0), 3),  # gap: nothing missed, 1 FP -> first row whose limits it meets
        ((0, 0, 2, 0), 3),  # negative control with 2 FP
        ((10, 4, 0, 0), 4),  # row 4: 4 missed
        ((10, 6, 4, 3), 4),  # row 4 limits
        ((5, 0, 3, 0), 4),  # gap: 3 FP
        ((20, 7, 0, 0), 5),  # ≥ 7 missed
        ((3, 3, 0, 0), 5),  # no lesion found, fewer than 7 present
        ((5, 0, 5, 0), 5),  # ≥ 5 FP
    ],
)
def test_score_case_rows(counts, score):
    assert score_case(*counts) == score


def test_score_case_rejects_impossible_counts():
    with pytest.raises(ValueError, match="cannot exceed n_true"):
        score_case(2, 3, 0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        score_case(2, -1, 0, 0)


def _blobs(n: int, shape=(4, 12, 40)) -> tuple[np.ndarray, list[tuple[slice, ...]]]:
    """n separate 2×2×2 lesions along x, 4 voxels apart."""
    truth = np.zeros(shape, bool)
    boxes = []
    for k in range(n):
        box = (slice(1, 3), slice(1, 3), slice(4 * k, 4 * k + 2))
        truth[box] = True
        boxes.append(box)
    return truth, boxes


def _fp(pred: np.ndarray, count: int) -> None:
    for k in range(count):
        pred[0, 10, 4 * k] = True


@pytest.mark.parametrize(
    ("n_true", "missed", "fps", "minor", "score"),
    [
        (5, 0, 0, 0, 1),
        (5, 0, 0, 1, 2),
        (5, 2, 1, 0, 3),
        (8, 5, 3, 1, 4),
        (9, 7, 0, 0, 5),
        (3, 0, 5, 0, 5),
    ],
)
def test_score_from_arrays_reaches_every_row(n_true, missed, fps, minor, score):
    truth, boxes = _blobs(n_true)
    pred = truth.copy()
    for box in boxes[:missed]:
        pred[box] = False
    for box in boxes[missed : missed + minor]:
        # keep 1 of 8 voxels: per-lesion Dice 2·1/(8+1) = 0.22 < 0.5 -> minor
        pred[box] = False
        pred[box[0].start, box[1].start, box[2].start] = True
    _fp(pred, fps)
    result = score_from_match(match_lesions(pred, truth))
    assert (result.n_missed, result.n_false_positive, result.n_minor) == (missed, fps, minor)
    assert result.score == score


# --------------------------------------------------------------------------- negative controls


def test_negative_control_case_and_summary():
    pred = _vol()
    pred[0, 0, 0:2] = True
    pred[2, 4, 4] = True
    assert negative_control_case(pred, 0.012) == (2, pytest.approx(0.036))
    # Ten controls shaped like Carlsen's: 5 empty, 4 small, one with 56 volumes, 68.6 mL.
    counts = [0, 0, 0, 0, 0, 1, 2, 1, 3, 56]
    volumes = [0, 0, 0, 0, 0, 0.3, 0.5, 1.5, 1.2, 68.6]
    s = negative_control_summary(counts, volumes)
    assert s["share_none"] == 0.5  # 5/10
    assert s["share_at_most_limit"] == 0.9  # 9/10 ≤ 1.5 mL (1.5 itself included)
    assert s["median_volume_ml"] == pytest.approx(0.15)  # (0 + 0.3)/2, zeros included
    assert (s["max_n_volumes"], s["max_volume_ml"]) == (56, 68.6)

"""Segmentation metrics of Carlsen et al. 2022 and Rainio et al. 2023, on arrays.

Every function here is pure: it takes ``(Z, Y, X)`` (or 2D slice) arrays and returns
numbers. Any array with values ``> 0`` is read as a binary mask (a lesion map with labels
1..N is binarised first: lesions are always re-derived as connected components, so a
prediction and a truth are compared the same way whatever labels they were saved with).

Contents
--------
Pixel-wise (Carlsen "Testing of models", Rainio "Evaluation of the models")
    :func:`pixel_metrics`: Dice = 2TP/(2TP+FP+FN), precision = TP/(TP+FP),
    sensitivity = TP/(TP+FN) over voxels, with a declared :data:`EMPTY_POLICIES` choice
    for 0/0.
Lesion-wise
    :func:`match_lesions`: connected components of prediction and truth, matched by
    overlap (``criterion="overlap"``: at least one shared voxel) or by IoU
    (``criterion="iou"``: IoU ≥ ``iou_threshold``), in one of :data:`MATCHING_MODES`.
    :class:`LesionMatch` gives lesion-wise sensitivity, precision, the lesion-detection
    F1 (``lesion_dice_f1``) and the per-lesion Dice of detected lesions.
autoPET detection volumes
    :func:`autopet_metrics`: Dice, false-positive and false-negative volume in mL with
    18-connectivity and the autoPET III empty-case rules.
Carlsen Table 1 scoring scheme
    :func:`score_case` (pure rule on counts) and :func:`score_from_match`.
Negative controls
    :func:`negative_control_case`, :func:`negative_control_summary`.
Rainio threshold analysis
    :func:`dice_curve`, :func:`optimal_threshold`, :func:`best_constant_threshold`,
    :func:`oracle_analysis`, :func:`slice_dice`.

See ``docs/evaluation.md`` for the definitions, the policies and where each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petseg.checks import check_choice
from petseg.lesions import DEFAULT_CONNECTIVITY, check_connectivity, label_components

__all__ = [
    "AUTOPET_CONNECTIVITY",
    "DEFAULT_CRITERION",
    "DEFAULT_MATCHING",
    "EMPTY_POLICIES",
    "MATCHING_MODES",
    "MATCH_CRITERIA",
    "MINOR_DICE_CUT",
    "NEGATIVE_CONTROL_LIMIT_ML",
    "RAINIO_THRESHOLDS",
    "SCORE_NAMES",
    "AutoPETMetrics",
    "LesionMatch",
    "OracleResult",
    "PixelMetrics",
    "ScoreResult",
    "autopet_metrics",
    "best_constant_threshold",
    "dice_curve",
    "match_lesions",
    "negative_control_case",
    "negative_control_summary",
    "optimal_threshold",
    "oracle_analysis",
    "pixel_metrics",
    "score_case",
    "score_from_match",
    "slice_dice",
]

EmptyPolicy = Literal["nan", "one", "zero", "autopet"]
Criterion = Literal["overlap", "iou"]
Matching = Literal["one-to-one", "many-to-one", "many-to-many"]

#: What a ratio whose numerator and denominator are both 0 becomes.
#: ``"nan"`` (default): undefined, excluded from cohort means and medians;
#: ``"one"``: nothing to find and nothing found wrongly counts as perfect (MONAI's
#: ``ignore_empty=False`` convention for Dice); ``"zero"``: counts as a failure;
#: ``"autopet"``: as ``"nan"``, and in addition every pixel metric is NaN whenever the
#: truth is empty (the autoPET III rule: Dice is not computed on negative cases even when
#: the prediction is not empty).
EMPTY_POLICIES: tuple[str, ...] = ("nan", "one", "zero", "autopet")
MATCH_CRITERIA: tuple[str, ...] = ("overlap", "iou")
MATCHING_MODES: tuple[str, ...] = ("one-to-one", "many-to-one", "many-to-many")
DEFAULT_CRITERION: Criterion = "overlap"
DEFAULT_MATCHING: Matching = "many-to-many"
#: autoPET challenge evaluation script: ``cc3d.connected_components(..., connectivity=18)``.
AUTOPET_CONNECTIVITY = 18
#: A detected lesion whose per-lesion Dice is below this is a "minor" error (Carlsen
#: Table 1 footnote: "only parts of a predicted lesion are wrong").
MINOR_DICE_CUT = 0.5
#: Carlsen negative controls: "in 9/10 (90%) cases, the volume segmented was ≤ 1.5 mL".
NEGATIVE_CONTROL_LIMIT_ML = 1.5
#: Rainio's "two-digit threshold value between 0 and 1": k/100 for k = 0..99.
RAINIO_THRESHOLDS: NDArray[np.float64] = np.arange(100) / 100.0


def _binary(name: str, array: ArrayLike) -> NDArray[np.bool_]:
    out = np.asarray(array)
    if out.dtype != np.bool_:
        out = out > 0
    return out


def _pair(pred: ArrayLike, truth: ArrayLike, ndim: int | None = 3) -> tuple[NDArray[np.bool_], ...]:
    p, t = _binary("prediction", pred), _binary("truth", truth)
    if p.shape != t.shape:
        raise ValueError(
            f"prediction and truth must have the same shape, got {p.shape} and {t.shape}"
        )
    if ndim is not None and p.ndim != ndim:
        raise ValueError(f"expected {ndim}D (Z, Y, X) arrays, got {p.ndim}D of shape {p.shape}")
    return p, t


def _ratio(num: float, den: float, empty: str) -> float:
    """``num/den``; ``0/0`` follows the empty policy."""
    if den > 0:
        return float(num) / float(den)
    if empty == "one":
        return 1.0
    if empty == "zero":
        return 0.0
    return float("nan")


# ----------------------------------------------------------------------------- pixel-wise


@dataclass(frozen=True)
class PixelMetrics:
    """Voxel counts and the three ratios of Carlsen's "Testing of models".

    ``tp``, ``fp``, ``fn`` are voxel counts; ``dice``, ``precision``, ``sensitivity`` are
    in [0, 1] or NaN where the empty policy says so.
    """

    tp: int
    fp: int
    fn: int
    dice: float
    precision: float
    sensitivity: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp_voxels": self.tp,
            "fp_voxels": self.fp,
            "fn_voxels": self.fn,
            "pixel_dice": self.dice,
            "pixel_precision": self.precision,
            "pixel_sensitivity": self.sensitivity,
        }


def _pixel_from_counts(tp: int, fp: int, fn: int, empty: str) -> PixelMetrics:
    if empty == "autopet" and tp + fn == 0:
        nan = float("nan")
        return PixelMetrics(tp, fp, fn, nan, nan, nan)
    return PixelMetrics(
        tp=tp,
        fp=fp,
        fn=fn,
        dice=_ratio(2 * tp, 2 * tp + fp + fn, empty),
        precision=_ratio(tp, tp + fp, empty),
        sensitivity=_ratio(tp, tp + fn, empty),
    )


def pixel_metrics(pred: ArrayLike, truth: ArrayLike, *, empty: EmptyPolicy = "nan") -> PixelMetrics:
    """Pixel-wise Dice, precision and sensitivity of one case.

    Parameters
    ----------
    pred, truth : (Z, Y, X) arrays (or any equal shapes), read as ``> 0``
    empty : one of :data:`EMPTY_POLICIES`
        Value of a 0/0 ratio. With both masks empty every ratio is 0/0; with an empty
        truth and a non-empty prediction, Dice and precision are 0 and sensitivity is
        0/0; with an empty prediction and a non-empty truth, Dice and sensitivity are 0
        and precision is 0/0.

    Returns
    -------
    PixelMetrics
    """
    check_choice("empty", empty, EMPTY_POLICIES)
    p, t = _pair(pred, truth, ndim=None)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return _pixel_from_counts(tp, fp, fn, empty)


def slice_dice(
    pred: ArrayLike, truth: ArrayLike, *, axis: int = 0, empty: EmptyPolicy = "nan"
) -> NDArray[np.float64]:
    """Dice of every 2D slice along ``axis`` (Rainio evaluates transaxial slices, axis 0).

    Returns
    -------
    (n_slices,) float64 ndarray; slices where both masks are empty follow ``empty``.
    """
    check_choice("empty", empty, EMPTY_POLICIES)
    p, t = _pair(pred, truth, ndim=None)
    p = np.moveaxis(p, axis, 0).reshape(p.shape[axis], -1)
    t = np.moveaxis(t, axis, 0).reshape(t.shape[axis], -1)
    tp = np.count_nonzero(p & t, axis=1)
    den = np.count_nonzero(p, axis=1) + np.count_nonzero(t, axis=1)
    out = np.empty(den.shape, dtype=np.float64)
    ok = den > 0
    out[ok] = 2.0 * tp[ok] / den[ok]
    out[~ok] = _ratio(0, 0, empty)
    if empty == "autopet":
        out[np.count_nonzero(t, axis=1) == 0] = np.nan
    return out


# ----------------------------------------------------------------------------- lesion-wise


@dataclass(frozen=True)
class LesionMatch:
    """Result of matching predicted to true lesions in one case.

    Attributes
    ----------
    n_true, n_pred : number of connected components in truth and prediction
    detected_true : true lesions with at least one match (lesion-wise TP)
    matched_pred : predicted lesions with at least one match
    true_sizes, pred_sizes : (n_true,), (n_pred,) voxel counts of each component
        (index ``i`` is label ``i + 1``)
    pairs_true, pairs_pred : (n_pairs,) labels of the matched pairs
    pairs_intersection : (n_pairs,) shared voxels of each pair
    per_lesion_dice : (n_true,) Dice of each true lesion against the union of the
        predicted lesions matched to it; NaN for undetected lesions
    empty : the empty policy used by the ratios
    """

    n_true: int
    n_pred: int
    detected_true: int
    matched_pred: int
    true_sizes: NDArray[np.int64]
    pred_sizes: NDArray[np.int64]
    pairs_true: NDArray[np.int64]
    pairs_pred: NDArray[np.int64]
    pairs_intersection: NDArray[np.int64]
    per_lesion_dice: NDArray[np.float64]
    criterion: str
    matching: str
    connectivity: int
    empty: str = "nan"

    @property
    def missed(self) -> int:
        """True lesions with no match (lesion-wise FN)."""
        return self.n_true - self.detected_true

    @property
    def false_positive(self) -> int:
        """Predicted lesions with no match (lesion-wise FP)."""
        return self.n_pred - self.matched_pred

    @property
    def sensitivity(self) -> float:
        """Detected true lesions / true lesions."""
        return _ratio(self.detected_true, self.n_true, self.empty)

    @property
    def precision(self) -> float:
        """Matched predicted lesions / predicted lesions."""
        return _ratio(self.matched_pred, self.n_pred, self.empty)

    @property
    def lesion_dice_f1(self) -> float:
        """Carlsen's "lesion-wise Dice" read as 2·TP/(2·TP+FP+FN) on lesion counts.

        TP = detected true lesions, FP = unmatched predicted lesions, FN = missed true
        lesions. With one-to-one matching this is the F1 score of lesion detection.
        """
        tp = self.detected_true
        return _ratio(2 * tp, 2 * tp + self.false_positive + self.missed, self.empty)

    @property
    def mean_matched_dice(self) -> float:
        """Mean per-lesion Dice over detected true lesions (NaN when none was detected)."""
        found = self.per_lesion_dice[~np.isnan(self.per_lesion_dice)]
        return float(found.mean()) if found.size else float("nan")

    @property
    def pairs_dice(self) -> NDArray[np.float64]:
        """(n_pairs,) Dice of each matched (predicted, true) component pair."""
        sizes = self.true_sizes[self.pairs_true - 1] + self.pred_sizes[self.pairs_pred - 1]
        return 2.0 * self.pairs_intersection / sizes

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_true_lesions": self.n_true,
            "n_pred_lesions": self.n_pred,
            "lesion_tp": self.detected_true,
            "lesion_fp": self.false_positive,
            "lesion_fn": self.missed,
            "lesion_sensitivity": self.sensitivity,
            "lesion_precision": self.precision,
            "lesion_dice_f1": self.lesion_dice_f1,
            "mean_matched_lesion_dice": self.mean_matched_dice,
        }


def _component_sizes(labels_fg: NDArray[np.integer], n: int) -> NDArray[np.int64]:
    return np.bincount(labels_fg, minlength=n + 1)[1:].astype(np.int64)


def _match_components(
    pred_fg: NDArray[np.integer],
    n_pred: int,
    true_fg: NDArray[np.integer],
    n_true: int,
    *,
    criterion: str,
    iou_threshold: float,
    matching: str,
    connectivity: int,
    empty: str,
) -> LesionMatch:
    """Match components given their labels at the foreground voxels (pred ∪ truth) only."""
    pred_fg = pred_fg.astype(np.int64, copy=False)
    true_fg = true_fg.astype(np.int64, copy=False)
    pred_sizes = _component_sizes(pred_fg, n_pred)
    true_sizes = _component_sizes(true_fg, n_true)
    both = (pred_fg > 0) & (true_fg > 0)
    keys = pred_fg[both] * (n_true + 1) + true_fg[both]
    keys, inter = np.unique(keys, return_counts=True)
    cand_pred, cand_true = np.divmod(keys, n_true + 1)
    inter = inter.astype(np.int64)
    union = pred_sizes[cand_pred - 1] + true_sizes[cand_true - 1] - inter
    iou = inter / union
    if criterion == "iou":
        ok = iou >= iou_threshold
    else:
        ok = inter > 0
    cand_pred, cand_true, inter, iou = cand_pred[ok], cand_true[ok], inter[ok], iou[ok]

    if matching != "many-to-many" and cand_pred.size:
        # Highest IoU first; ties broken by the lower true, then predicted, label.
        order = np.lexsort((cand_pred, cand_true, -iou))
        cand_pred, cand_true, inter = cand_pred[order], cand_true[order], inter[order]
        if matching == "many-to-one":
            _, first = np.unique(cand_pred, return_index=True)
            keep = np.sort(first)
        else:  # one-to-one: greedy, each lesion used at most once
            used_p: set[int] = set()
            used_t: set[int] = set()
            keep_list = []
            for k, (p, t) in enumerate(zip(cand_pred.tolist(), cand_true.tolist(), strict=True)):
                if p not in used_p and t not in used_t:
                    used_p.add(p)
                    used_t.add(t)
                    keep_list.append(k)
            keep = np.asarray(keep_list, dtype=np.int64)
        cand_pred, cand_true, inter = cand_pred[keep], cand_true[keep], inter[keep]

    order = np.lexsort((cand_pred, cand_true))
    cand_pred, cand_true, inter = cand_pred[order], cand_true[order], inter[order]
    inter_sum = np.bincount(cand_true, weights=inter, minlength=n_true + 1)[1:]
    pred_sum = np.bincount(cand_true, weights=pred_sizes[cand_pred - 1], minlength=n_true + 1)[1:]
    detected = np.zeros(n_true, dtype=bool)
    detected[cand_true - 1] = True
    per_lesion = np.full(n_true, np.nan)
    per_lesion[detected] = 2.0 * inter_sum[detected] / (true_sizes[detected] + pred_sum[detected])
    return LesionMatch(
        n_true=n_true,
        n_pred=n_pred,
        detected_true=int(detected.sum()),
        matched_pred=int(np.unique(cand_pred).size),
        true_sizes=true_sizes,
        pred_sizes=pred_sizes,
        pairs_true=cand_true.astype(np.int64),
        pairs_pred=cand_pred.astype(np.int64),
        pairs_intersection=inter,
        per_lesion_dice=per_lesion,
        criterion=criterion,
        matching=matching,
        connectivity=connectivity,
        empty=empty,
    )


def _check_match_options(criterion: str, iou_threshold: float, matching: str, empty: str) -> None:
    check_choice("criterion", criterion, MATCH_CRITERIA)
    check_choice("matching", matching, MATCHING_MODES)
    check_choice("empty", empty, EMPTY_POLICIES)
    if criterion == "iou" and not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")


def match_lesions(
    pred: ArrayLike,
    truth: ArrayLike,
    *,
    connectivity: int = DEFAULT_CONNECTIVITY,
    criterion: Criterion = DEFAULT_CRITERION,
    iou_threshold: float = 0.5,
    matching: Matching = DEFAULT_MATCHING,
    empty: EmptyPolicy = "nan",
) -> LesionMatch:
    """Match the connected components of a prediction to those of the truth.

    Parameters
    ----------
    pred, truth : (Z, Y, X) arrays, read as ``> 0``; lesions are their connected
        components (:func:`petseg.lesions.label_components`)
    connectivity : 6, 18 or 26 (default 26, petseg's lesion definition)
    criterion : ``"overlap"`` (a pair qualifies when it shares at least one voxel) or
        ``"iou"`` (IoU ≥ ``iou_threshold``, as panoptica's ``NaiveThresholdMatching``)
    iou_threshold : used with ``criterion="iou"``
    matching : ``"one-to-one"``: qualifying pairs taken greedily by decreasing IoU, each
        lesion used at most once (panoptica ``allow_many_to_one=False``);
        ``"many-to-one"``: each predicted lesion goes to its best qualifying true lesion,
        a true lesion may collect several predictions (panoptica
        ``allow_many_to_one=True``); ``"many-to-many"`` (default): every qualifying pair
        counts, so a true lesion is detected when any qualifying prediction touches it and
        a predicted lesion is a false positive only when it qualifies with no true lesion
        (with ``"overlap"`` this is the autoPET FP/FN component rule).
    empty : policy for 0/0 in the lesion-wise ratios (see :data:`EMPTY_POLICIES`)

    Returns
    -------
    LesionMatch
    """
    connectivity = check_connectivity(connectivity)
    _check_match_options(criterion, iou_threshold, matching, empty)
    p, t = _pair(pred, truth)
    lp = label_components(p, connectivity)
    lt = label_components(t, connectivity)
    fg = np.flatnonzero(p | t)
    return _match_components(
        lp.ravel()[fg],
        int(lp.max(initial=0)),
        lt.ravel()[fg],
        int(lt.max(initial=0)),
        criterion=criterion,
        iou_threshold=iou_threshold,
        matching=matching,
        connectivity=connectivity,
        empty=empty,
    )


# ----------------------------------------------------------------------------- autoPET


@dataclass(frozen=True)
class AutoPETMetrics:
    """autoPET III evaluation of one case.

    ``dice`` is NaN when the truth is empty; ``fp_volume_ml`` is the volume of predicted
    components touching no true voxel (0 for an empty prediction); ``fn_volume_ml`` is the
    volume of true components touching no predicted voxel (NaN when the truth is empty).
    """

    dice: float
    fp_volume_ml: float
    fn_volume_ml: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "autopet_dice": self.dice,
            "fp_volume_ml": self.fp_volume_ml,
            "fn_volume_ml": self.fn_volume_ml,
        }


def _untouched_voxels(labels_fg: NDArray[np.integer], n: int, other_fg: NDArray[np.bool_]) -> int:
    """Voxels of the components (labels at foreground voxels) that share no voxel with ``other``."""
    sizes = np.bincount(labels_fg, minlength=n + 1)
    touched = np.bincount(labels_fg[other_fg], minlength=n + 1) > 0
    return int(sizes[1:][~touched[1:]].sum())


def _autopet_from_fg(
    pred_l: NDArray[np.integer],
    n_pred: int,
    true_l: NDArray[np.integer],
    n_true: int,
    voxel_volume_ml: float,
) -> AutoPETMetrics:
    p = pred_l > 0
    t = true_l > 0
    n_t = int(t.sum())
    if n_t == 0:
        dice = float("nan")
        fn_ml = float("nan")
    else:
        dice = 2.0 * int((p & t).sum()) / (int(p.sum()) + n_t)
        fn_ml = float(_untouched_voxels(true_l, n_true, p) * voxel_volume_ml)
    fp_ml = float(_untouched_voxels(pred_l, n_pred, t) * voxel_volume_ml)
    return AutoPETMetrics(dice=dice, fp_volume_ml=fp_ml, fn_volume_ml=fn_ml)


def autopet_metrics(
    pred: ArrayLike,
    truth: ArrayLike,
    voxel_volume_ml: float,
    *,
    connectivity: int = AUTOPET_CONNECTIVITY,
) -> AutoPETMetrics:
    """Dice, false-positive and false-negative volume as in the autoPET III evaluation.

    Parameters
    ----------
    pred, truth : (Z, Y, X) arrays, read as ``> 0``
    voxel_volume_ml : volume of one voxel in mL (``Geometry.voxel_volume_ml``)
    connectivity : component connectivity, 18 in the challenge script

    Returns
    -------
    AutoPETMetrics
        Empty truth: Dice NaN (excluded), FN volume NaN, FP volume as computed;
        empty prediction: FP volume 0, Dice 0 and FN volume = truth volume when the
        truth is not empty.
    """
    connectivity = check_connectivity(connectivity)
    if voxel_volume_ml <= 0:
        raise ValueError(f"voxel_volume_ml must be positive, got {voxel_volume_ml}")
    p, t = _pair(pred, truth)
    lp = label_components(p, connectivity)
    lt = label_components(t, connectivity)
    fg = np.flatnonzero(p | t)
    return _autopet_from_fg(
        lp.ravel()[fg],
        int(lp.max(initial=0)),
        lt.ravel()[fg],
        int(lt.max(initial=0)),
        voxel_volume_ml,
    )


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoreResult:
    """Carlsen Table 1 score (1–5) and the counts it was derived from."""

    score: int
    n_true: int
    n_missed: int
    n_false_positive: int
    n_minor: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "score_missed": self.n_missed,
            "score_false_positive": self.n_false_positive,
            "score_minor": self.n_minor,
        }


#: Carlsen Table 1 ratings.
SCORE_NAMES = {
    1: "Perfect/optimal",
    2: "Optimal with minor adjustments",
    3: "Acceptable with minor adjustments",
    4: "Acceptable with major adjustments",
    5: "Non-usable",
}


def score_case(n_true: int, n_missed: int, n_false_positive: int, n_minor: int) -> int:
    """Carlsen et al. 2022 Table 1 rating from lesion counts.

    Rules, checked in this order:

    5. ≥ 7 missed, or no lesion found although lesions are present (``n_true > 0`` and
       ``n_missed == n_true``), or ≥ 5 false-positive lesions;
    1. nothing missed, no false positive, no minor error;
    2. nothing missed, no false positive, only minor errors;
    3. ≤ 3 missed and ≤ 2 false positives (minor errors allowed);
    4. otherwise (then ≤ 6 missed and ≤ 4 false positives).

    The table leaves gaps (e.g. nothing missed but 1–2 false positives): a case takes the
    first of rows 3, 4 whose missed and false-positive limits it meets. A case without
    true lesions (negative control) is rated by its false positives alone.

    Parameters
    ----------
    n_true : true lesions in the case
    n_missed : true lesions not detected
    n_false_positive : predicted lesions matching no true lesion
    n_minor : detected lesions that are only partly right (see :data:`MINOR_DICE_CUT`)
    """
    for name, value in (
        ("n_true", n_true),
        ("n_missed", n_missed),
        ("n_false_positive", n_false_positive),
        ("n_minor", n_minor),
    ):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    if n_missed > n_true:
        raise ValueError(f"n_missed ({n_missed}) cannot exceed n_true ({n_true})")
    if n_minor > n_true - n_missed:
        raise ValueError(
            f"n_minor ({n_minor}) cannot exceed the detected lesions ({n_true - n_missed})"
        )
    if n_missed >= 7 or (n_true > 0 and n_missed == n_true) or n_false_positive >= 5:
        return 5
    if n_missed == 0 and n_false_positive == 0:
        return 1 if n_minor == 0 else 2
    if n_missed <= 3 and n_false_positive <= 2:
        return 3
    return 4


def score_from_match(match: LesionMatch, *, minor_dice: float = MINOR_DICE_CUT) -> ScoreResult:
    """Table 1 score of one case: missed and false-positive lesions from ``match``; a
    *minor* error is a detected true lesion whose per-lesion Dice is below ``minor_dice``."""
    if not 0.0 <= minor_dice <= 1.0:
        raise ValueError(f"minor_dice must be in [0, 1], got {minor_dice}")
    found = match.per_lesion_dice[~np.isnan(match.per_lesion_dice)]
    n_minor = int(np.count_nonzero(found < minor_dice))
    score = score_case(match.n_true, match.missed, match.false_positive, n_minor)
    return ScoreResult(score, match.n_true, match.missed, match.false_positive, n_minor)


# ----------------------------------------------------------------------------- negative controls


def negative_control_case(
    pred: ArrayLike, voxel_volume_ml: float, *, connectivity: int = DEFAULT_CONNECTIVITY
) -> tuple[int, float]:
    """Number of segmented volumes (connected components) and their total volume in mL."""
    mask = _binary("prediction", pred)
    labels = label_components(mask, check_connectivity(connectivity))
    return int(labels.max(initial=0)), float(np.count_nonzero(mask) * voxel_volume_ml)


def negative_control_summary(
    n_volumes: ArrayLike, volumes_ml: ArrayLike, *, limit_ml: float = NEGATIVE_CONTROL_LIMIT_ML
) -> dict[str, Any]:
    """Cohort summary of negative controls as Carlsen reports it.

    Returns ``n_cases``, ``n_none`` / ``share_none`` (no segmented volume),
    ``n_at_most_limit`` / ``share_at_most_limit`` (total volume ≤ ``limit_ml`` mL),
    ``median_volume_ml`` (median total volume over all cases, zeros included),
    ``max_volume_ml`` and ``max_n_volumes``. Shares are fractions in [0, 1]; NaN without
    cases.
    """
    counts = np.asarray(n_volumes, dtype=np.int64).ravel()
    vols = np.asarray(volumes_ml, dtype=np.float64).ravel()
    if counts.shape != vols.shape:
        raise ValueError(f"n_volumes and volumes_ml differ in length: {counts.size} vs {vols.size}")
    n = int(counts.size)
    none = int(np.count_nonzero(counts == 0))
    small = int(np.count_nonzero(vols <= limit_ml))
    nan = float("nan")
    return {
        "n_cases": n,
        "n_none": none,
        "share_none": none / n if n else nan,
        "limit_ml": float(limit_ml),
        "n_at_most_limit": small,
        "share_at_most_limit": small / n if n else nan,
        "median_volume_ml": float(np.median(vols)) if n else nan,
        "max_volume_ml": float(vols.max()) if n else nan,
        "max_n_volumes": int(counts.max()) if n else 0,
    }


# ----------------------------------------------------------------------------- Rainio thresholds


def dice_curve(
    image: ArrayLike,
    truth: ArrayLike,
    thresholds: ArrayLike = RAINIO_THRESHOLDS,
    *,
    empty: EmptyPolicy = "nan",
) -> NDArray[np.float64]:
    """Dice of ``image > t`` against ``truth`` for every threshold ``t`` (strict ``>``).

    Sorts the values once and counts with ``searchsorted``, so a 64×64 slice over the
    100-step grid takes tens of microseconds.

    Parameters
    ----------
    image : array of any shape (a slice scaled to [0, 1] in Rainio)
    truth : array of the same shape, read as ``> 0``
    thresholds : 1D array
    empty : policy when both ``image > t`` and the truth are empty

    Returns
    -------
    (len(thresholds),) float64 ndarray
    """
    check_choice("empty", empty, EMPTY_POLICIES)
    img = np.asarray(image, dtype=np.float64)
    t = _binary("truth", truth)
    if img.shape != t.shape:
        raise ValueError(f"image and truth must have the same shape, got {img.shape} and {t.shape}")
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    values = np.sort(img.ravel())
    positives = np.sort(img[t])
    n_pred = values.size - np.searchsorted(values, thr, side="right")
    tp = positives.size - np.searchsorted(positives, thr, side="right")
    den = n_pred + positives.size
    out = np.empty(thr.shape, dtype=np.float64)
    ok = den > 0
    out[ok] = 2.0 * tp[ok] / den[ok]
    out[~ok] = _ratio(0, 0, empty)
    if empty == "autopet" and positives.size == 0:
        out[:] = np.nan
    return out


def optimal_threshold(
    image: ArrayLike, truth: ArrayLike, thresholds: ArrayLike = RAINIO_THRESHOLDS
) -> tuple[float, float]:
    """Rainio's optimal threshold of one slice: the grid value maximising Dice.

    Pixels are positive when strictly greater than the threshold; when several thresholds
    give the same maximal Dice the first (lowest) wins.

    Returns
    -------
    (threshold, dice)

    Raises
    ------
    ValueError
        If the truth is empty (Dice is then 0 or undefined at every threshold; Rainio's
        slices all contain tumour).
    """
    if not np.any(_binary("truth", truth)):
        raise ValueError("optimal_threshold needs a slice whose truth mask is not empty")
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    curve = dice_curve(image, truth, thr)
    k = int(np.argmax(curve))
    return float(thr[k]), float(curve[k])


def _stack(images: ArrayLike, truths: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    imgs = np.asarray(images, dtype=np.float64)
    tru = _binary("truths", truths)
    if imgs.shape != tru.shape or imgs.ndim < 2:
        raise ValueError(
            "images and truths must be stacks of equal shape (n_slices, ...), "
            f"got {imgs.shape} and {tru.shape}"
        )
    return imgs, tru


def _curves(
    imgs: NDArray[np.float64], tru: NDArray[np.bool_], thr: NDArray[np.float64]
) -> NDArray[np.float64]:
    return np.stack([dice_curve(i, t, thr) for i, t in zip(imgs, tru, strict=True)])


def best_constant_threshold(
    images: ArrayLike,
    truths: ArrayLike,
    thresholds: ArrayLike = RAINIO_THRESHOLDS,
    *,
    statistic: Literal["median", "mean"] = "median",
) -> tuple[float, float]:
    """The single grid threshold that maximises the median (Rainio) or mean Dice over a set.

    Parameters
    ----------
    images, truths : (n_slices, H, W) stacks
    thresholds : 1D grid; first maximum wins

    Returns
    -------
    (threshold, statistic of the Dice over the set at that threshold)
    """
    check_choice("statistic", statistic, ("median", "mean"))
    imgs, tru = _stack(images, truths)
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    curves = _curves(imgs, tru, thr)
    agg = np.nanmedian(curves, axis=0) if statistic == "median" else np.nanmean(curves, axis=0)
    k = int(np.argmax(agg))
    return float(thr[k]), float(agg[k])


@dataclass(frozen=True)
class OracleResult:
    """Rainio's oracle analysis of a set of slices.

    ``optimal_thresholds`` / ``optimal_dice``: per slice, the best grid threshold and its
    Dice; ``constant_threshold``: the best single threshold (by median Dice) and
    ``constant_dice`` the per-slice Dice with it.
    """

    optimal_thresholds: NDArray[np.float64]
    optimal_dice: NDArray[np.float64]
    constant_threshold: float
    constant_dice: NDArray[np.float64]

    def summary(self) -> dict[str, float]:
        from petseg.stats import median_iqr

        o_med, o_iqr = median_iqr(self.optimal_dice)
        c_med, c_iqr = median_iqr(self.constant_dice)
        return {
            "n_slices": int(self.optimal_dice.size),
            "optimal_median_dice": o_med,
            "optimal_iqr_dice": o_iqr,
            "constant_threshold": self.constant_threshold,
            "constant_median_dice": c_med,
            "constant_iqr_dice": c_iqr,
        }


def oracle_analysis(
    images: ArrayLike, truths: ArrayLike, thresholds: ArrayLike = RAINIO_THRESHOLDS
) -> OracleResult:
    """Per-slice optimal thresholds and the best constant threshold (Rainio "Results").

    Parameters
    ----------
    images, truths : (n_slices, H, W) stacks; every truth slice must contain tumour
    """
    imgs, tru = _stack(images, truths)
    empty = ~tru.reshape(tru.shape[0], -1).any(axis=1)
    if empty.any():
        raise ValueError(
            f"oracle_analysis needs tumour in every truth slice; slices {np.flatnonzero(empty).tolist()} are empty"
        )
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    curves = _curves(imgs, tru, thr)
    best = np.argmax(curves, axis=1)
    k = int(np.argmax(np.median(curves, axis=0)))
    return OracleResult(
        optimal_thresholds=thr[best],
        optimal_dice=curves[np.arange(curves.shape[0]), best],
        constant_threshold=float(thr[k]),
        constant_dice=curves[:, k].copy(),
    )

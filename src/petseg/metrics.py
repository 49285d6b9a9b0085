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
Per-slice
    :func:`slice_dice`: Dice of every transaxial slice (Rainio evaluates slices).
Lesion-wise
    :func:`match_lesions`: connected components of prediction and truth, matched by
    overlap (``criterion="overlap"``: at least one shared voxel) or by IoU
    (``criterion="iou"``: IoU ≥ ``iou_threshold``), in one of :data:`MATCHING_MODES`.
    :class:`LesionMatch` gives lesion-wise sensitivity, precision, the lesion-detection
    F1 (``lesion_dice_f1``) and the per-lesion Dice of detected lesions.
    :func:`label_pair` labels both sides once; :func:`match_components` and
    :func:`autopet_from_components` then reuse those labels (what a cohort evaluation
    does for every case).
autoPET detection volumes
    :func:`autopet_metrics`: Dice, false-positive and false-negative volume in mL with
    18-connectivity and the autoPET III empty-case rules.
Carlsen Table 1 scoring scheme
    :func:`score_case` (pure rule on counts) and :func:`score_from_match`.
Negative controls
    :func:`negative_control_case`, :func:`negative_control_summary`.

Rainio's optimal-threshold search lives with the slice methods that use it,
:mod:`petseg.slices.threshold_search`.

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
    "CASE_METRICS",
    "DEFAULT_CRITERION",
    "DEFAULT_MATCHING",
    "EMPTY_POLICIES",
    "MATCHING_MODES",
    "MATCH_CRITERIA",
    "MINOR_DICE_CUT",
    "NEGATIVE_CONTROL_LIMIT_ML",
    "SCORE_NAMES",
    "AutoPETMetrics",
    "ComponentPair",
    "LesionMatch",
    "PixelMetrics",
    "ScoreResult",
    "autopet_from_components",
    "autopet_metrics",
    "label_pair",
    "match_components",
    "match_lesions",
    "negative_control_case",
    "negative_control_summary",
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

#: The per-case metrics a cohort evaluation summarises: (``per_case.csv`` column,
#: label, higher is better).
CASE_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("pixel_dice", "Pixel-wise Dice", True),
    ("pixel_precision", "Pixel-wise precision", True),
    ("pixel_sensitivity", "Pixel-wise sensitivity", True),
    ("lesion_dice_f1", "Lesion-wise Dice (detection F1)", True),
    ("lesion_sensitivity", "Lesion-wise sensitivity", True),
    ("lesion_precision", "Lesion-wise precision", True),
    ("mean_matched_lesion_dice", "Mean Dice of detected lesions", True),
    ("median_slice_dice", "Median slice Dice (tumour slices)", True),
    ("autopet_dice", "autoPET Dice", True),
    ("fp_volume_ml", "autoPET FP volume (mL)", False),
    ("fn_volume_ml", "autoPET FN volume (mL)", False),
)


def _binary(array: ArrayLike) -> NDArray[np.bool_]:
    out = np.asarray(array)
    if out.dtype != np.bool_:
        out = out > 0
    return out


def _pair(pred: ArrayLike, truth: ArrayLike, ndim: int | None = 3) -> tuple[NDArray[np.bool_], ...]:
    p, t = _binary(pred), _binary(truth)
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

    Attributes
    ----------
    tp, fp, fn : int
        True-positive, false-positive and false-negative voxel counts.
    dice, precision, sensitivity : float
        In [0, 1], or NaN where the empty policy says so.
    """

    tp: int
    fp: int
    fn: int
    dice: float
    precision: float
    sensitivity: float

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int, *, empty: EmptyPolicy = "nan") -> PixelMetrics:
        """The three ratios from voxel counts.

        Parameters
        ----------
        tp, fp, fn : int
            True-positive, false-positive and false-negative voxel counts (≥ 0).
        empty : str
            One of :data:`EMPTY_POLICIES`, the value of a 0/0 ratio.

        Returns
        -------
        PixelMetrics
        """
        check_choice("empty", empty, EMPTY_POLICIES)
        if min(tp, fp, fn) < 0:
            raise ValueError(f"voxel counts must be ≥ 0, got tp={tp}, fp={fp}, fn={fn}")
        if empty == "autopet" and tp + fn == 0:
            nan = float("nan")
            return cls(tp, fp, fn, nan, nan, nan)
        return cls(
            tp=tp,
            fp=fp,
            fn=fn,
            dice=_ratio(2 * tp, 2 * tp + fp + fn, empty),
            precision=_ratio(tp, tp + fp, empty),
            sensitivity=_ratio(tp, tp + fn, empty),
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts and ratios under the ``per_case.csv`` column names."""
        return {
            "tp_voxels": self.tp,
            "fp_voxels": self.fp,
            "fn_voxels": self.fn,
            "pixel_dice": self.dice,
            "pixel_precision": self.precision,
            "pixel_sensitivity": self.sensitivity,
        }


def pixel_metrics(pred: ArrayLike, truth: ArrayLike, *, empty: EmptyPolicy = "nan") -> PixelMetrics:
    """Pixel-wise Dice, precision and sensitivity of one case.

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Prediction and truth (or any two equal shapes), read as ``> 0``.
    empty : str
        One of :data:`EMPTY_POLICIES`, the value of a 0/0 ratio. With both masks empty every ratio is 0/0; with an empty
        truth and a non-empty prediction, Dice and precision are 0 and sensitivity is
        0/0; with an empty prediction and a non-empty truth, Dice and sensitivity are 0
        and precision is 0/0.

    Returns
    -------
    PixelMetrics
    """
    p, t = _pair(pred, truth, ndim=None)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return PixelMetrics.from_counts(tp, fp, fn, empty=empty)


def slice_dice(
    pred: ArrayLike, truth: ArrayLike, *, axis: int = 0, empty: EmptyPolicy = "nan"
) -> NDArray[np.float64]:
    """Dice of every 2D slice along ``axis`` (Rainio evaluates transaxial slices, axis 0).

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Prediction and truth (or any two equal shapes), read as ``> 0``.
    axis : int
        The slicing axis (0: transaxial slices of a ``(Z, Y, X)`` volume, or the images
        of an ``(N, H, W)`` stack).
    empty : str
        One of :data:`EMPTY_POLICIES`: the Dice of a slice where both masks are empty
        (``"autopet"``: NaN on every slice whose truth is empty).

    Returns
    -------
    (n_slices,) float64 ndarray
        Dice in [0, 1], or NaN where the policy says so.
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
    n_true, n_pred : int
        Number of connected components in truth and prediction.
    detected_true : int
        True lesions with at least one match (lesion-wise TP).
    matched_pred : int
        Predicted lesions with at least one match.
    true_sizes, pred_sizes : (n_true,), (n_pred,) int64 ndarray
        Voxel count of each component (index ``i`` is label ``i + 1``).
    pairs_true, pairs_pred : (n_pairs,) int64 ndarray
        Labels of the matched pairs.
    pairs_intersection : (n_pairs,) int64 ndarray
        Shared voxels of each pair.
    per_lesion_dice : (n_true,) float64 ndarray
        Dice of each true lesion against the union of the predicted lesions matched to
        it; NaN for undetected lesions.
    criterion, matching : str
        The matching rule (:func:`match_lesions`).
    connectivity : int
        6, 18 or 26, the connectivity of the components.
    empty : str
        The empty policy used by the ratios (:data:`EMPTY_POLICIES`).
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
        """Lesion counts and ratios under the ``per_case.csv`` column names."""
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


@dataclass(frozen=True)
class ComponentPair:
    """Connected components of a prediction and a truth, read at the voxels of their union.

    Matching and the autoPET volumes need only the voxels where either mask is set, so
    both sides are labelled once (:func:`label_pair`) and kept as two label vectors over
    those voxels.

    Attributes
    ----------
    pred_labels : (V,) int64 ndarray
        Prediction component (1..``n_pred``, 0 = none) of each of the V voxels of
        prediction ∪ truth.
    n_pred : int
        Number of predicted components.
    true_labels : (V,) int64 ndarray
        Truth component (1..``n_true``, 0 = none) of the same voxels.
    n_true : int
        Number of true components.
    connectivity : int
        6, 18 or 26, the connectivity the components were labelled with.
    """

    pred_labels: NDArray[np.int64]
    n_pred: int
    true_labels: NDArray[np.int64]
    n_true: int
    connectivity: int

    def __post_init__(self) -> None:
        if self.pred_labels.shape != self.true_labels.shape or self.pred_labels.ndim != 1:
            raise ValueError(
                "pred_labels and true_labels must be 1D vectors over the same voxels, got "
                f"shapes {self.pred_labels.shape} and {self.true_labels.shape}"
            )

    @property
    def voxel_counts(self) -> tuple[int, int, int]:
        """``(tp, fp, fn)`` voxel counts of the two masks."""
        in_p, in_t = self.pred_labels > 0, self.true_labels > 0
        tp = int(np.count_nonzero(in_p & in_t))
        return tp, int(np.count_nonzero(in_p)) - tp, int(np.count_nonzero(in_t)) - tp


def _union_box(union: NDArray[np.bool_]) -> tuple[slice, ...] | None:
    """Bounding box of ``union`` with one voxel of margin (components stay whole)."""
    box = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        hit = np.flatnonzero(union.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(max(hit[0] - 1, 0), hit[-1] + 2))
    return tuple(box)


def label_pair(
    pred: ArrayLike, truth: ArrayLike, connectivity: int = DEFAULT_CONNECTIVITY
) -> ComponentPair:
    """Label the connected components of a prediction and a truth once, for reuse.

    Labelling runs on the bounding box of prediction ∪ truth (one voxel of margin), which
    gives the same components as the whole volume at a fraction of the cost.

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Prediction and truth, read as ``> 0``.
    connectivity : int
        6, 18 or 26 (default 26, petseg's lesion definition).

    Returns
    -------
    ComponentPair
    """
    connectivity = check_connectivity(connectivity)
    p, t = _pair(pred, truth)
    box = _union_box(p | t)
    if box is None:
        none = np.zeros(0, dtype=np.int64)
        return ComponentPair(none, 0, none.copy(), 0, connectivity)
    p, t = p[box], t[box]
    fg = np.flatnonzero(p | t)
    lp = label_components(p, connectivity)
    lt = label_components(t, connectivity)
    return ComponentPair(
        pred_labels=lp.ravel()[fg].astype(np.int64),
        n_pred=int(lp.max()),
        true_labels=lt.ravel()[fg].astype(np.int64),
        n_true=int(lt.max()),
        connectivity=connectivity,
    )


def _component_sizes(labels: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    return np.bincount(labels, minlength=n + 1)[1:].astype(np.int64)


def _greedy_one_to_one(
    cand_pred: NDArray[np.int64], cand_true: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Indices of the pairs kept when each lesion may be used once, in the given order."""
    used_p: set[int] = set()
    used_t: set[int] = set()
    keep = []
    for k, (p, t) in enumerate(zip(cand_pred.tolist(), cand_true.tolist(), strict=True)):
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            keep.append(k)
    return np.asarray(keep, dtype=np.int64)


def match_components(
    pair: ComponentPair,
    *,
    criterion: Criterion = DEFAULT_CRITERION,
    iou_threshold: float = 0.5,
    matching: Matching = DEFAULT_MATCHING,
    empty: EmptyPolicy = "nan",
) -> LesionMatch:
    """Match the labelled components of a prediction to those of the truth.

    Parameters
    ----------
    pair : ComponentPair
        Both sides' components, from :func:`label_pair`.
    criterion : str
        ``"overlap"`` or ``"iou"`` (see :func:`match_lesions`).
    iou_threshold : float
        In (0, 1]; used with ``criterion="iou"``.
    matching : str
        ``"one-to-one"``, ``"many-to-one"`` or ``"many-to-many"`` (see
        :func:`match_lesions`).
    empty : str
        Policy for 0/0 in the lesion-wise ratios (see :data:`EMPTY_POLICIES`).

    Returns
    -------
    LesionMatch
        The qualifying pairs kept and the per-lesion Dice of every true lesion.
    """
    _check_match_options(criterion, iou_threshold, matching, empty)
    pred_l, true_l = pair.pred_labels, pair.true_labels
    n_pred, n_true = pair.n_pred, pair.n_true
    pred_sizes = _component_sizes(pred_l, n_pred)
    true_sizes = _component_sizes(true_l, n_true)
    both = (pred_l > 0) & (true_l > 0)
    keys, inter = np.unique(pred_l[both] * (n_true + 1) + true_l[both], return_counts=True)
    cand_pred, cand_true = np.divmod(keys, n_true + 1)
    inter = inter.astype(np.int64)
    iou = inter / (pred_sizes[cand_pred - 1] + true_sizes[cand_true - 1] - inter)
    ok = iou >= iou_threshold if criterion == "iou" else inter > 0
    cand_pred, cand_true, inter, iou = cand_pred[ok], cand_true[ok], inter[ok], iou[ok]

    if matching != "many-to-many" and cand_pred.size:
        # Highest IoU first; ties broken by the lower true, then predicted, label.
        order = np.lexsort((cand_pred, cand_true, -iou))
        cand_pred, cand_true, inter = cand_pred[order], cand_true[order], inter[order]
        if matching == "many-to-one":
            keep = np.sort(np.unique(cand_pred, return_index=True)[1])
        else:
            keep = _greedy_one_to_one(cand_pred, cand_true)
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
        connectivity=pair.connectivity,
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
    criterion: Criterion = DEFAULT_CRITERION,
    iou_threshold: float = 0.5,
    matching: Matching = DEFAULT_MATCHING,
    empty: EmptyPolicy = "nan",
    connectivity: int = DEFAULT_CONNECTIVITY,
) -> LesionMatch:
    """Match the connected components of a prediction to those of the truth.

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Prediction and truth, read as ``> 0``; lesions are their connected components
        (:func:`petseg.lesions.label_components`).
    criterion : str
        ``"overlap"`` (a pair qualifies when it shares at least one voxel) or ``"iou"``
        (IoU ≥ ``iou_threshold``, as panoptica's ``NaiveThresholdMatching``).
    iou_threshold : float
        In (0, 1]; used with ``criterion="iou"``.
    matching : str
        ``"one-to-one"``: qualifying pairs taken greedily by decreasing IoU, each
        lesion used at most once (panoptica ``allow_many_to_one=False``);
        ``"many-to-one"``: each predicted lesion goes to its best qualifying true lesion,
        a true lesion may collect several predictions (panoptica
        ``allow_many_to_one=True``); ``"many-to-many"`` (default): every qualifying pair
        counts, so a true lesion is detected when any qualifying prediction touches it and
        a predicted lesion is a false positive only when it qualifies with no true lesion
        (with ``"overlap"`` this is the autoPET FP/FN component rule).
    empty : {"nan", "one", "zero", "autopet"}
        What a 0/0 lesion-wise ratio is (:data:`EMPTY_POLICIES`).
    connectivity : int
        6, 18 or 26 (default 26, petseg's lesion definition).

    Returns
    -------
    LesionMatch
        As :func:`match_components`, on the components labelled here.
    """
    return match_components(
        label_pair(pred, truth, connectivity),
        criterion=criterion,
        iou_threshold=iou_threshold,
        matching=matching,
        empty=empty,
    )


# ----------------------------------------------------------------------------- autoPET


@dataclass(frozen=True)
class AutoPETMetrics:
    """autoPET III evaluation of one case.

    Attributes
    ----------
    dice : float
        Pixel-wise Dice; NaN when the truth is empty.
    fp_volume_ml : float
        Volume in mL of the predicted components touching no true voxel (0 for an empty
        prediction).
    fn_volume_ml : float
        Volume in mL of the true components touching no predicted voxel (NaN when the
        truth is empty).
    """

    dice: float
    fp_volume_ml: float
    fn_volume_ml: float

    def to_dict(self) -> dict[str, Any]:
        """The three values under the ``per_case.csv`` column names."""
        return {
            "autopet_dice": self.dice,
            "fp_volume_ml": self.fp_volume_ml,
            "fn_volume_ml": self.fn_volume_ml,
        }


def _untouched_voxels(labels: NDArray[np.int64], n: int, other: NDArray[np.bool_]) -> int:
    """Voxels of the components in ``labels`` that share no voxel with ``other``."""
    sizes = np.bincount(labels, minlength=n + 1)
    touched = np.bincount(labels[other], minlength=n + 1) > 0
    return int(sizes[1:][~touched[1:]].sum())


def autopet_from_components(pair: ComponentPair, voxel_volume_ml: float) -> AutoPETMetrics:
    """autoPET III Dice and FP/FN volumes from already labelled components.

    Parameters
    ----------
    pair : ComponentPair
        Both sides' components (:func:`label_pair`; the challenge uses 18-connectivity).
    voxel_volume_ml : float
        Volume of one voxel in mL (``Geometry.voxel_volume_ml``).

    Returns
    -------
    AutoPETMetrics
        As :func:`autopet_metrics`.
    """
    if not voxel_volume_ml > 0:
        raise ValueError(f"voxel_volume_ml must be positive, got {voxel_volume_ml}")
    p = pair.pred_labels > 0
    t = pair.true_labels > 0
    n_t = int(t.sum())
    if n_t == 0:
        dice = float("nan")
        fn_ml = float("nan")
    else:
        dice = 2.0 * int((p & t).sum()) / (int(p.sum()) + n_t)
        fn_ml = float(_untouched_voxels(pair.true_labels, pair.n_true, p) * voxel_volume_ml)
    fp_ml = float(_untouched_voxels(pair.pred_labels, pair.n_pred, t) * voxel_volume_ml)
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
    pred, truth : (Z, Y, X) ndarray
        Prediction and truth, read as ``> 0``.
    voxel_volume_ml : float
        Volume of one voxel in mL (``Geometry.voxel_volume_ml``).
    connectivity : int
        Component connectivity, 18 in the challenge script.

    Returns
    -------
    AutoPETMetrics
        Empty truth: Dice NaN (excluded), FN volume NaN, FP volume as computed;
        empty prediction: FP volume 0, Dice 0 and FN volume = truth volume when the
        truth is not empty.
    """
    return autopet_from_components(label_pair(pred, truth, connectivity), voxel_volume_ml)


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoreResult:
    """Carlsen Table 1 score (1–5) and the counts it was derived from.

    Attributes
    ----------
    score : int
        The rating, 1 (perfect) to 5 (non-usable); see :data:`SCORE_NAMES`.
    n_true : int
        True lesions.
    n_missed : int
        True lesions with no predicted lesion.
    n_false_positive : int
        Predicted lesions with no true lesion.
    n_minor : int
        Detected lesions whose per-lesion Dice is below :data:`MINOR_DICE_CUT` (a minor
        adjustment).
    """

    score: int
    n_true: int
    n_missed: int
    n_false_positive: int
    n_minor: int

    def to_dict(self) -> dict[str, Any]:
        """Score and counts under the ``per_case.csv`` column names."""
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
    n_true : int
        True lesions in the case.
    n_missed : int
        True lesions not detected.
    n_false_positive : int
        Predicted lesions matching no true lesion.
    n_minor : int
        Detected lesions that are only partly right (see :data:`MINOR_DICE_CUT`).

    Returns
    -------
    int
        The score, 1 (perfect) to 5 (non-usable); names in :data:`SCORE_NAMES`.
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
    """Table 1 score of one case from its lesion matching.

    Parameters
    ----------
    match : LesionMatch
        Missed and false-positive lesions come from here.
    minor_dice : float
        In [0, 1]: a detected true lesion whose per-lesion Dice is below this is a
        *minor* error.

    Returns
    -------
    ScoreResult
    """
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
    """Number of segmented volumes (connected components) and their total volume.

    Parameters
    ----------
    pred : (Z, Y, X) ndarray
        Prediction of a case without true lesions, read as ``> 0``.
    voxel_volume_ml : float
        Volume of one voxel in mL.
    connectivity : int
        6, 18 or 26.

    Returns
    -------
    n_volumes : int
        Connected components of the prediction.
    volume_ml : float
        Their total volume in mL.
    """
    mask = _binary(pred)
    labels = label_components(mask, check_connectivity(connectivity))
    return int(labels.max(initial=0)), float(np.count_nonzero(mask) * voxel_volume_ml)


def negative_control_summary(
    n_volumes: ArrayLike, volumes_ml: ArrayLike, *, limit_ml: float = NEGATIVE_CONTROL_LIMIT_ML
) -> dict[str, Any]:
    """Cohort summary of negative controls as Carlsen reports it.

    Parameters
    ----------
    n_volumes : (n_cases,) int ndarray
        Segmented volumes (components) per case.
    volumes_ml : (n_cases,) float ndarray
        Total segmented volume per case in mL.
    limit_ml : float
        The volume limit in mL (Carlsen: 1.5 mL).

    Returns
    -------
    dict
        ``n_cases``, ``n_none`` / ``share_none`` (no segmented volume),
        ``n_at_most_limit`` / ``share_at_most_limit`` (total volume ≤ ``limit_ml`` mL),
        ``median_volume_ml`` (median total volume over all cases, zeros included),
        ``max_volume_ml`` and ``max_n_volumes``. Shares are fractions in [0, 1]; NaN
        without cases.
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

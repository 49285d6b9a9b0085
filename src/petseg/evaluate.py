"""Cohort evaluation: match prediction and truth cases, compute every metric, summarise.

The array part (:func:`evaluate_case`, :func:`summarize_cohort`) is pure; the file part
(:func:`evaluate_cohort`) finds lesion maps with :func:`petseg.io.dataset.find_lesion_maps`,
reads them with :func:`petseg.io.nifti.read_nifti` and writes the report folder atomically:

``OUT/``
    ``per_case.csv``   one row per (model, case) with every metric
    ``summary.json``   parameters, inputs, summaries, score distribution, negative
                       controls, paired tests, petseg version
    ``summary.md``, ``summary.html``  the same tables for reading
    ``dice.png``       per-case Dice distributions per model
    ``thresholds.png`` Rainio Fig. 3 style fit (only with a thresholds table)

Case folders are matched by id. A *negative control* is a case whose truth has no
lesion voxel: it is summarised as in Carlsen (number and volume of segmented volumes)
and left out of the metric summaries, score distribution and tests, which are over the
cases with lesions (Carlsen's test cohort).
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from petseg.checks import check_choice
from petseg.jsonable import to_jsonable
from petseg.lesions import CONNECTIVITIES, DEFAULT_CONNECTIVITY, check_connectivity
from petseg.metrics import (
    AUTOPET_CONNECTIVITY,
    CASE_METRICS,
    DEFAULT_CRITERION,
    DEFAULT_MATCHING,
    EMPTY_POLICIES,
    MATCH_CRITERIA,
    MATCHING_MODES,
    MINOR_DICE_CUT,
    NEGATIVE_CONTROL_LIMIT_ML,
    SCORE_NAMES,
    Criterion,
    EmptyPolicy,
    Matching,
    PixelMetrics,
    autopet_from_components,
    label_pair,
    match_components,
    negative_control_summary,
    score_from_match,
    slice_dice,
)
from petseg.progress import progress
from petseg.stats import linear_fit, pairwise_tests, summarize
from petseg.study import Geometry

__all__ = [
    "EvaluationParams",
    "evaluate_case",
    "evaluate_cohort",
    "summarize_cohort",
]


@dataclass(frozen=True)
class EvaluationParams:
    """Every choice the evaluation makes (saved with each report).

    Attributes
    ----------
    connectivity : int
        Lesion connectivity (6, 18, 26) for matching, scoring and negative controls.
    criterion, matching : str
        Lesion matching (:func:`petseg.metrics.match_lesions`).
    iou_threshold : float
        In (0, 1], with ``criterion="iou"``.
    autopet_connectivity : int
        Connectivity of the autoPET FP/FN volumes (18 in the challenge).
    empty : str
        Policy for 0/0 ratios (:data:`petseg.metrics.EMPTY_POLICIES`).
    minor_dice : float
        Per-lesion Dice in [0, 1] below which a detected lesion is a minor error.
    negative_limit_ml : float
        The negative-control volume limit in mL (Carlsen: 1.5 mL).
    """

    connectivity: int = field(
        default=DEFAULT_CONNECTIVITY,
        metadata={"choices": CONNECTIVITIES, "help": "lesion connectivity (matching, scoring)"},
    )
    criterion: Criterion = field(
        default=DEFAULT_CRITERION,
        metadata={"help": "lesion match criterion: any shared voxel, or IoU ≥ --iou"},
    )
    iou_threshold: float = field(
        default=0.5, metadata={"help": "IoU threshold for --criterion iou, in (0, 1]"}
    )
    matching: Matching = field(default=DEFAULT_MATCHING, metadata={"help": "lesion matching mode"})
    autopet_connectivity: int = field(
        default=AUTOPET_CONNECTIVITY,
        metadata={
            "choices": CONNECTIVITIES,
            "help": "connectivity of the autoPET FP/FN volumes",
        },
    )
    empty: EmptyPolicy = field(
        default="nan",
        metadata={"help": "value of a 0/0 ratio (empty truth and/or prediction)"},
    )
    minor_dice: float = field(
        default=MINOR_DICE_CUT,
        metadata={"help": "a detected lesion with Dice below this is a minor error"},
    )
    negative_limit_ml: float = field(
        default=NEGATIVE_CONTROL_LIMIT_ML,
        metadata={"help": "negative-control volume limit in mL"},
    )

    def __post_init__(self) -> None:
        check_connectivity(self.connectivity)
        check_connectivity(self.autopet_connectivity)
        check_choice("criterion", self.criterion, MATCH_CRITERIA)
        check_choice("matching", self.matching, MATCHING_MODES)
        check_choice("empty", self.empty, EMPTY_POLICIES)
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if not 0.0 <= self.minor_dice <= 1.0:
            raise ValueError(f"minor_dice must be in [0, 1], got {self.minor_dice}")
        if not math.isfinite(self.negative_limit_ml) or self.negative_limit_ml < 0:
            raise ValueError(
                f"negative_limit_ml must be a finite volume ≥ 0 mL, got {self.negative_limit_ml}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The choices as a JSON-ready dict (``summary.json`` ``parameters``)."""
        return asdict(self)


# ----------------------------------------------------------------------------- one case


def evaluate_case(
    pred: ArrayLike,
    truth: ArrayLike,
    geometry: Geometry,
    params: EvaluationParams | None = None,
) -> dict[str, Any]:
    """Every metric of one case, as one flat row.

    Parameters
    ----------
    pred, truth : (Z, Y, X) ndarray
        Lesion maps or masks on ``geometry``, read as ``> 0``.
    geometry : Geometry
        The grid of both (its voxel volume gives mL).
    params : EvaluationParams, optional
        Evaluation choices (defaults: :class:`EvaluationParams`).

    Returns
    -------
    dict
        Voxel counts, pixel-wise Dice/precision/sensitivity, lesion counts and lesion-wise
        sensitivity/precision/detection-F1, mean Dice of detected lesions, median Dice of
        the transaxial slices with tumour, autoPET Dice and FP/FN volumes (mL), Table 1
        score with its counts, and the negative-control quantities (``pred_components``,
        ``pred_volume_ml``). Undefined values are NaN.
    """
    params = params or EvaluationParams()
    p = np.asarray(pred)
    t = np.asarray(truth)
    p = p if p.dtype == np.bool_ else p > 0
    t = t if t.dtype == np.bool_ else t > 0
    if p.shape != t.shape or p.shape != geometry.shape:
        raise ValueError(
            f"prediction {p.shape}, truth {t.shape} and geometry {geometry.shape} must have one shape"
        )
    voxel_ml = geometry.voxel_volume_ml
    slices = slice_dice(p, t, axis=0, empty=params.empty)
    tumour_slices = slices[t.reshape(t.shape[0], -1).any(axis=1)]
    pair = label_pair(p, t, params.connectivity)
    match = match_components(
        pair,
        criterion=params.criterion,
        iou_threshold=params.iou_threshold,
        matching=params.matching,
        empty=params.empty,
    )
    if params.autopet_connectivity != params.connectivity:
        autopet = autopet_from_components(label_pair(p, t, params.autopet_connectivity), voxel_ml)
    else:
        autopet = autopet_from_components(pair, voxel_ml)
    tp, fp, fn = pair.voxel_counts
    pixel = PixelMetrics.from_counts(tp, fp, fn, empty=params.empty)
    score = score_from_match(match, minor_dice=params.minor_dice)
    row: dict[str, Any] = {}
    row.update(pixel.to_dict())
    row.update(match.to_dict())
    row["median_slice_dice"] = (
        float(np.nanmedian(tumour_slices))
        if tumour_slices.size and not np.all(np.isnan(tumour_slices))
        else float("nan")
    )
    row.update(autopet.to_dict())
    row.update(score.to_dict())
    row["negative_control"] = pair.n_true == 0
    row["pred_components"] = pair.n_pred
    row["pred_volume_ml"] = (tp + fp) * voxel_ml
    row["truth_volume_ml"] = (tp + fn) * voxel_ml
    return row


# ----------------------------------------------------------------------------- cohort summary


def _best(values: dict[str, float], higher: bool) -> list[str]:
    finite = {k: v for k, v in values.items() if not math.isnan(v)}
    if not finite:
        return []
    target = max(finite.values()) if higher else min(finite.values())
    return [k for k, v in finite.items() if v == target]


def summarize_cohort(
    rows: Sequence[Mapping[str, Any]], models: Sequence[str], params: EvaluationParams
) -> dict[str, Any]:
    """Summaries of per-case rows, per model.

    Parameters
    ----------
    rows : sequence of mapping
        Rows of :func:`evaluate_case`, each with ``model`` and ``case`` keys added.
    models : sequence of str
        Model names, in report order; every model has a row for every case.
    params : EvaluationParams
        The choices the rows were computed with (negative-control limit).

    Returns
    -------
    dict
        JSON-ready: ``metrics`` (per metric and model: n, mean, sd, median, iqr, q1, q3,
        over the cases with lesions), ``best`` (model(s) with the best mean and median
        per metric), ``scores`` (Table 1 distribution per model), ``negative_controls``
        (per model), ``tests`` (per metric, paired t-test and Wilcoxon between every pair
        of models) and the case counts.
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {m: [] for m in models}
    for row in rows:
        by_model[row["model"]].append(row)
    for m in models:
        by_model[m].sort(key=lambda r: r["case"])
    positives = {m: [r for r in by_model[m] if not r["negative_control"]] for m in models}
    negatives = {m: [r for r in by_model[m] if r["negative_control"]] for m in models}
    metrics: dict[str, Any] = {}
    best: dict[str, Any] = {}
    tests: dict[str, Any] = {}
    for key, _label, higher in CASE_METRICS:
        per_model = {m: np.array([r[key] for r in positives[m]], dtype=float) for m in models}
        metrics[key] = {m: summarize(v) for m, v in per_model.items()}
        best[key] = {
            "mean": _best({m: metrics[key][m]["mean"] for m in models}, higher),
            "median": _best({m: metrics[key][m]["median"] for m in models}, higher),
            "higher_is_better": higher,
        }
        tests[key] = pairwise_tests(per_model) if len(models) > 1 else []
    scores = {
        m: {str(s): sum(1 for r in positives[m] if r["score"] == s) for s in SCORE_NAMES}
        for m in models
    }
    negative = {
        m: negative_control_summary(
            [r["pred_components"] for r in negatives[m]],
            [r["pred_volume_ml"] for r in negatives[m]],
            limit_ml=params.negative_limit_ml,
        )
        for m in models
    }
    first = models[0]
    return {
        "n_cases": len(by_model[first]),
        "n_cases_with_lesions": len(positives[first]),
        "n_negative_controls": len(negatives[first]),
        "metrics": metrics,
        "best": best,
        "scores": scores,
        "negative_controls": negative,
        "tests": tests,
    }


# ----------------------------------------------------------------------------- files


def _check_grids(case: str, model: str, pred: Geometry, truth: Geometry, pred_path: Path) -> None:
    if pred.shape != truth.shape:
        raise ValueError(
            f"case {case!r}, model {model!r}: prediction {pred_path} has grid {pred.shape} but the "
            f"truth has {truth.shape}; petseg does not resample, write predictions on the truth grid"
        )
    if not np.allclose(pred.spacing, truth.spacing, atol=1e-3):
        raise ValueError(
            f"case {case!r}, model {model!r}: prediction {pred_path} has voxel spacing "
            f"{tuple(round(s, 4) for s in pred.spacing)} mm but the truth has "
            f"{tuple(round(s, 4) for s in truth.spacing)} mm; petseg does not resample"
        )
    if not pred.same_grid(truth):
        raise ValueError(
            f"case {case!r}, model {model!r}: prediction {pred_path} has the truth's shape and "
            "spacing but a different position/orientation (affine); petseg does not resample"
        )


def _match_case_sets(truth: dict[str, Path], preds: dict[str, dict[str, Path]]) -> list[str]:
    problems = []
    for model, cases in preds.items():
        missing = sorted(set(truth) - set(cases))
        extra = sorted(set(cases) - set(truth))
        if missing:
            problems.append(f"model {model!r} has no prediction for case(s) {missing}")
        if extra:
            problems.append(f"model {model!r} has case(s) {extra} that are not in the truth folder")
    if problems:
        raise ValueError("cases do not match: " + "; ".join(problems))
    return sorted(truth)


def _read_thresholds(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Columns ``optimal`` and ``predicted`` of a CSV of per-slice thresholds."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "optimal" not in fields or "predicted" not in fields:
            raise ValueError(
                f"{path}: a thresholds table needs columns 'optimal' and 'predicted', got {fields}"
            )
        rows = [(float(r["optimal"]), float(r["predicted"])) for r in reader]
    if len(rows) < 2:
        raise ValueError(f"{path}: a thresholds table needs at least two rows")
    data = np.array(rows)
    return data[:, 0], data[:, 1]


def evaluate_cohort(
    predictions: Mapping[str, str | os.PathLike[str]],
    truth: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    params: EvaluationParams | None = None,
    thresholds: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Evaluate one or more models against a truth folder and write the report folder.

    Parameters
    ----------
    predictions : mapping of str to path
        ``{model name: folder}`` (see :func:`petseg.io.dataset.find_lesion_maps` for the layouts).
    truth : path
        Folder of true lesion maps, same layouts.
    out : path
        Report folder; must not exist unless ``force``.
    params : EvaluationParams, optional
        Evaluation choices (defaults: :class:`EvaluationParams`).
    thresholds : path, optional
        CSV of per-slice ``optimal`` and ``predicted`` thresholds (Rainio Fig. 3): adds
        the least-squares fit to the summary and ``thresholds.png``.
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    dict
        The content of ``summary.json``.

    Raises
    ------
    ValueError
        Missing or extra cases, a prediction on another grid than its truth (the
        message names the case; nothing is resampled), or a map that does not hold integer
        labels (a probability map; the message names the file).
    """
    from petseg import __version__
    from petseg.io.atomic import check_writable_target
    from petseg.io.dataset import find_lesion_maps

    params = params or EvaluationParams()
    if not predictions:
        raise ValueError("give at least one prediction folder")
    out = Path(out)
    check_writable_target(out, force, inputs=[truth, thresholds, *predictions.values()])
    models = list(predictions)
    truth_cases = find_lesion_maps(truth)
    pred_cases = {m: find_lesion_maps(folder) for m, folder in predictions.items()}
    cases = _match_case_sets(truth_cases, pred_cases)
    fit_inputs = _read_thresholds(Path(thresholds)) if thresholds is not None else None

    rows = _evaluate_cases(cases, truth_cases, pred_cases, params)
    summary = summarize_cohort(rows, models, params)
    fit = None
    if fit_inputs is not None:
        fit = linear_fit(*fit_inputs)
        summary["threshold_fit"] = fit
    report = {
        "petseg_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {
            "truth": str(Path(truth).resolve()),
            "predictions": {m: str(Path(p).resolve()) for m, p in predictions.items()},
            "thresholds": str(Path(thresholds).resolve()) if thresholds is not None else None,
            "cases": cases,
        },
        "parameters": params.to_dict(),
        "models": models,
        **summary,
    }
    _write_report(out, rows, report, fit_inputs, force=force)
    return to_jsonable(report)


def _evaluate_cases(
    cases: list[str],
    truth_cases: dict[str, Path],
    pred_cases: dict[str, dict[str, Path]],
    params: EvaluationParams,
) -> list[dict[str, Any]]:
    """One row of :func:`evaluate_case` per case and model, each map read once."""
    from petseg.io.nifti import read_nifti
    from petseg.lesions import as_label_map

    rows: list[dict[str, Any]] = []
    for case in progress(cases, desc="evaluate", unit="case"):
        truth_map, truth_geom = read_nifti(truth_cases[case])
        truth_map = as_label_map(truth_map, str(truth_cases[case]))
        for model, files in pred_cases.items():
            pred_map, pred_geom = read_nifti(files[case])
            pred_map = as_label_map(pred_map, str(files[case]))
            _check_grids(case, model, pred_geom, truth_geom, files[case])
            row = {"model": model, "case": case}
            row.update(evaluate_case(pred_map, truth_map, truth_geom, params))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report writing


#: The metrics drawn in ``dice.png``.
_FIGURE_METRICS = ("pixel_dice", "lesion_dice_f1", "mean_matched_lesion_dice")


def _write_report(
    out: Path,
    rows: list[dict[str, Any]],
    report: dict[str, Any],
    fit_inputs: tuple[np.ndarray, np.ndarray] | None,
    *,
    force: bool,
) -> None:
    from petseg.io.atomic import atomic_dir, write_json_atomic
    from petseg.reporting import (
        csv_text,
        dice_distribution_figure,
        evaluation_html,
        evaluation_markdown,
        threshold_fit_figure,
    )

    data = to_jsonable(report)
    models = report["models"]
    dice = {
        label: {
            m: [r[key] for r in rows if r["model"] == m and not r["negative_control"]]
            for m in models
        }
        for key, label, _higher in CASE_METRICS
        if key in _FIGURE_METRICS
    }
    images = [("dice.png", "per-case Dice per model")]
    if fit_inputs is not None:
        images.append(("thresholds.png", "predicted vs optimal thresholds"))
    with atomic_dir(out, force=force) as tmp:
        (tmp / "per_case.csv").write_text(csv_text(rows), encoding="utf-8", newline="")
        write_json_atomic(tmp / "summary.json", data)
        (tmp / "summary.md").write_text(evaluation_markdown(data), encoding="utf-8")
        (tmp / "summary.html").write_text(evaluation_html(data, images), encoding="utf-8")
        dice_distribution_figure(dice).savefig(tmp / "dice.png")
        if fit_inputs is not None:
            fig = threshold_fit_figure(fit_inputs[0], fit_inputs[1], report["threshold_fit"])
            fig.savefig(tmp / "thresholds.png")

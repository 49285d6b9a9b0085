"""Cohort evaluation: match prediction and truth cases, compute every metric, summarise.

The array part (:func:`evaluate_case`, :func:`summarize_cohort`) is pure; the file part
(:func:`find_cases`, :func:`evaluate_cohort`) reads lesion maps with
:func:`petseg.io.nifti.read_nifti` and writes the report folder atomically:

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from petseg.checks import check_choice
from petseg.jsonable import to_jsonable
from petseg.lesions import DEFAULT_CONNECTIVITY, check_connectivity, label_components
from petseg.metrics import (
    AUTOPET_CONNECTIVITY,
    DEFAULT_CRITERION,
    DEFAULT_MATCHING,
    EMPTY_POLICIES,
    MATCH_CRITERIA,
    MATCHING_MODES,
    MINOR_DICE_CUT,
    NEGATIVE_CONTROL_LIMIT_ML,
    SCORE_NAMES,
    EmptyPolicy,
    _autopet_from_fg,
    _match_components,
    _pixel_from_counts,
    negative_control_summary,
    score_from_match,
    slice_dice,
)
from petseg.stats import linear_fit, pairwise_tests, summarize
from petseg.study import Geometry

__all__ = [
    "METRICS",
    "EvaluationParams",
    "evaluate_case",
    "evaluate_cohort",
    "find_cases",
    "summarize_cohort",
]

#: Summarised metrics: (column, label, higher is better).
METRICS: tuple[tuple[str, str, bool], ...] = (
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

_CASE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_LESION_MAP = "lesions.nii.gz"


@dataclass(frozen=True)
class EvaluationParams:
    """Every choice the evaluation makes (saved with each report).

    connectivity : lesion connectivity for matching, scoring and negative controls
    criterion, iou_threshold, matching : lesion matching (:func:`petseg.metrics.match_lesions`)
    autopet_connectivity : connectivity of the autoPET FP/FN volumes (18 in the challenge)
    empty : policy for 0/0 ratios (:data:`petseg.metrics.EMPTY_POLICIES`)
    minor_dice : per-lesion Dice below which a detected lesion is a minor error
    negative_limit_ml : the negative-control volume limit (Carlsen: 1.5 mL)
    """

    connectivity: int = DEFAULT_CONNECTIVITY
    criterion: str = DEFAULT_CRITERION
    iou_threshold: float = 0.5
    matching: str = DEFAULT_MATCHING
    autopet_connectivity: int = AUTOPET_CONNECTIVITY
    empty: EmptyPolicy = "nan"
    minor_dice: float = MINOR_DICE_CUT
    negative_limit_ml: float = NEGATIVE_CONTROL_LIMIT_ML

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
        return asdict(self)


# ----------------------------------------------------------------------------- one case


def _crop(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union, with one voxel of margin."""
    union = p | t
    box = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        hit = np.flatnonzero(union.any(axis=other))
        if hit.size == 0:
            return p[:0, :0, :0], t[:0, :0, :0]
        box.append(slice(max(hit[0] - 1, 0), hit[-1] + 2))
    return p[tuple(box)], t[tuple(box)]


def evaluate_case(
    pred: ArrayLike,
    truth: ArrayLike,
    geometry: Geometry,
    params: EvaluationParams | None = None,
) -> dict[str, Any]:
    """Every metric of one case, as one flat row.

    Parameters
    ----------
    pred, truth : (Z, Y, X) lesion maps or masks on ``geometry``, read as ``> 0``
    geometry : the grid of both (voxel volume for mL)
    params : evaluation choices (defaults: :class:`EvaluationParams`)

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
    pc, tc = _crop(p, t)
    fg = np.flatnonzero(pc | tc)

    def labelled(conn: int) -> tuple[np.ndarray, int, np.ndarray, int]:
        if fg.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, 0, empty, 0
        lp = label_components(pc, conn)
        lt = label_components(tc, conn)
        return lp.ravel()[fg], int(lp.max()), lt.ravel()[fg], int(lt.max())

    lp_fg, n_pred, lt_fg, n_true = labelled(params.connectivity)
    match = _match_components(
        lp_fg,
        n_pred,
        lt_fg,
        n_true,
        criterion=params.criterion,
        iou_threshold=params.iou_threshold,
        matching=params.matching,
        connectivity=params.connectivity,
        empty=params.empty,
    )
    if params.autopet_connectivity == params.connectivity:
        ap_labels = (lp_fg, n_pred, lt_fg, n_true)
    else:
        ap_labels = labelled(params.autopet_connectivity)
    autopet = _autopet_from_fg(*ap_labels, voxel_ml)
    in_p, in_t = lp_fg > 0, lt_fg > 0
    tp = int(np.count_nonzero(in_p & in_t))
    pixel = _pixel_from_counts(tp, int(in_p.sum()) - tp, int(in_t.sum()) - tp, params.empty)
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
    row["negative_control"] = n_true == 0
    row["pred_components"] = n_pred
    row["pred_volume_ml"] = int(in_p.sum()) * voxel_ml
    row["truth_volume_ml"] = int(in_t.sum()) * voxel_ml
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
    """Summaries of per-case rows (each with ``model`` and ``case`` keys).

    Returns a JSON-ready dict with ``metrics`` (per metric and model: n, mean, sd, median,
    iqr, q1, q3, over the cases with lesions), ``best`` (model(s) with the best mean and
    median per metric), ``scores`` (Table 1 distribution per model), ``negative_controls``
    (per model), ``tests`` (per metric, paired t-test and Wilcoxon between every pair of
    models) and the case counts.
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
    for key, _label, higher in METRICS:
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


def find_cases(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Lesion-map files of a folder, by case id.

    Accepts the folders ``petseg segment`` / ``predict`` and the dataset layout write (one
    sub-folder per case holding ``lesions.nii.gz``) and flat folders of
    ``<case>.nii.gz`` / ``<case>.nii``. Sub-folders without ``lesions.nii.gz`` and
    hidden entries are ignored.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder of cases")
    cases: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            path, case = entry / _LESION_MAP, entry.name
            if not path.is_file():
                continue
        elif entry.name.endswith((".nii.gz", ".nii")):
            path, case = entry, re.sub(r"\.nii(\.gz)?$", "", entry.name)
        else:
            continue
        if not _CASE_ID.match(case):
            raise ValueError(
                f"{entry}: case id {case!r} may only hold letters, digits, '_', '-', '.'"
            )
        if case in cases:
            raise ValueError(f"{root}: case {case!r} appears twice ({cases[case]} and {path})")
        cases[case] = path
    if not cases:
        raise FileNotFoundError(
            f"{root} holds no cases: expected sub-folders with {_LESION_MAP} or <case>.nii.gz files"
        )
    return cases


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
    predictions : ``{model name: folder}`` (see :func:`find_cases` for the layouts)
    truth : folder of true lesion maps, same layouts
    out : report folder; must not exist unless ``force``
    params : evaluation choices
    thresholds : optional CSV of per-slice ``optimal`` and ``predicted`` thresholds
        (Rainio Fig. 3): adds the least-squares fit to the summary and ``thresholds.png``
    force : replace an existing ``out``

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
    from petseg.io.nifti import read_nifti
    from petseg.lesions import as_label_map

    params = params or EvaluationParams()
    if not predictions:
        raise ValueError("give at least one prediction folder")
    out = Path(out)
    check_writable_target(out, force, inputs=[truth, thresholds, *predictions.values()])
    models = list(predictions)
    truth_cases = find_cases(truth)
    pred_cases = {m: find_cases(folder) for m, folder in predictions.items()}
    cases = _match_case_sets(truth_cases, pred_cases)
    fit_inputs = _read_thresholds(Path(thresholds)) if thresholds is not None else None

    rows: list[dict[str, Any]] = []
    for case in cases:
        truth_map, truth_geom = read_nifti(truth_cases[case])
        truth_map = as_label_map(truth_map, str(truth_cases[case]))
        for model in models:
            pred_map, pred_geom = read_nifti(pred_cases[model][case])
            pred_map = as_label_map(pred_map, str(pred_cases[model][case]))
            _check_grids(case, model, pred_geom, truth_geom, pred_cases[model][case])
            row = {"model": model, "case": case}
            row.update(evaluate_case(pred_map, truth_map, truth_geom, params))
            rows.append(row)

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


# ----------------------------------------------------------------------------- report writing


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pct(count: int, share: float | None) -> str:
    return f"{count} ({_fmt(None if share is None else 100.0 * share, 0)}%)"


def _fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"


def _tables(
    report: dict[str, Any],
) -> list[tuple[str, list[str], list[list[tuple[str, bool]]], str]]:
    """(title, header, rows of (text, bold), note) for the Markdown and HTML reports."""
    models = report["models"]
    metrics, best = report["metrics"], report["best"]
    tables = []
    mean_rows, median_rows = [], []
    for key, label, _higher in METRICS:
        mean_rows.append(
            [(label, False)]
            + [
                (
                    f"{_fmt(metrics[key][m]['mean'])} ({_fmt(metrics[key][m]['sd'])})",
                    m in best[key]["mean"] and len(models) > 1,
                )
                for m in models
            ]
        )
        median_rows.append(
            [(label, False)]
            + [
                (
                    f"{_fmt(metrics[key][m]['median'])} [{_fmt(metrics[key][m]['iqr'])}]",
                    m in best[key]["median"] and len(models) > 1,
                )
                for m in models
            ]
        )
    n_pos = report["n_cases_with_lesions"]
    tables.append(
        (
            f"Mean (SD) over the {n_pos} cases with lesions (as Carlsen Table 3)",
            ["Metric", *models],
            mean_rows,
            "SD is the sample SD (ddof=1). Bold: best value of the row. NaN values "
            "(undefined for a case) are left out; n per cell is in summary.json.",
        )
    )
    tables.append(
        (
            f"Median [IQR] over the {n_pos} cases with lesions (as Rainio Table 4)",
            ["Metric", *models],
            median_rows,
            "IQR = 75th − 25th percentile (linear interpolation). Bold: best value of the row.",
        )
    )
    score_rows = []
    for s, name in SCORE_NAMES.items():
        cells = []
        for m in models:
            n = report["scores"][m][str(s)]
            share = 100.0 * n / n_pos if n_pos else float("nan")
            cells.append((f"{n} ({_fmt(share, 0)}%)", False))
        score_rows.append([(f"{s} ({name})", False), *cells])
    params = report["parameters"]
    tables.append(
        (
            "Evaluation score (Carlsen Table 1, automated; distribution as Table 4)",
            ["Score", *models],
            score_rows,
            f"Missed / false-positive lesions from {params['criterion']} matching "
            f"({params['matching']}, {params['connectivity']}-connectivity); minor error = "
            f"detected lesion with Dice < {params['minor_dice']}.",
        )
    )
    neg = report["negative_controls"]
    neg_rows = [
        [("Negative controls", False)] + [(str(neg[m]["n_cases"]), False) for m in models],
        [("No segmented volume", False)]
        + [(_pct(neg[m]["n_none"], neg[m]["share_none"]), False) for m in models],
        [(f"Volume ≤ {params['negative_limit_ml']} mL", False)]
        + [(_pct(neg[m]["n_at_most_limit"], neg[m]["share_at_most_limit"]), False) for m in models],
        [("Median segmented volume (mL)", False)]
        + [(_fmt(neg[m]["median_volume_ml"], 2), False) for m in models],
        [("Largest: volumes / mL", False)]
        + [
            (f"{neg[m]['max_n_volumes']} / {_fmt(neg[m]['max_volume_ml'], 2)}", False)
            for m in models
        ],
    ]
    tables.append(("Negative controls (cases without true lesions)", ["", *models], neg_rows, ""))
    if len(models) > 1:
        test_rows = []
        for key, label, _h in METRICS:
            for t in report["tests"][key]:
                sig_t = t["t_pvalue"] is not None and t["t_pvalue"] < 0.05
                sig_w = t["wilcoxon_pvalue"] is not None and t["wilcoxon_pvalue"] < 0.05
                test_rows.append(
                    [
                        (label, False),
                        (f"{t['a']} vs {t['b']}", False),
                        (str(t["n"]), False),
                        (_fmt_p(t["t_pvalue"]), sig_t),
                        (_fmt_p(t["wilcoxon_pvalue"]), sig_w),
                    ]
                )
        tables.append(
            (
                "Paired tests between models (as Rainio Table 5)",
                ["Metric", "Models", "n", "paired t-test p", "Wilcoxon p"],
                test_rows,
                "Two-sided; bold: p < 0.05. Wilcoxon drops zero differences (zero_method='wilcox').",
            )
        )
    fit = report.get("threshold_fit")
    if fit:
        tables.append(
            (
                "Predicted vs optimal thresholds (as Rainio Fig. 3)",
                ["n", "slope", "intercept", "Pearson r", "R²"],
                [
                    [
                        (str(fit["n"]), False),
                        (_fmt(fit["slope"]), False),
                        (_fmt(fit["intercept"], 4), False),
                        (_fmt(fit["pearson_r"]), False),
                        (_fmt(fit["r_squared"]), False),
                    ]
                ],
                "",
            )
        )
    return tables


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# petseg evaluation",
        "",
        f"petseg {report['petseg_version']}, {report['created_utc']}; truth `{report['inputs']['truth']}`; "
        f"{report['n_cases']} cases ({report['n_negative_controls']} negative controls).",
        "",
    ]
    for title, header, rows, note in _tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in row) + " |")
        lines += ["", note, ""] if note else [""]
    return "\n".join(lines)


def _html(report: dict[str, Any]) -> str:
    from html import escape

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>petseg evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:.5em}"
        "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}td:first-child{text-align:left}"
        "th{background:#eee}.note{color:#555;font-size:90%}</style></head><body>",
        "<h1>petseg evaluation</h1>",
        f"<p>petseg {escape(str(report['petseg_version']))}, {escape(report['created_utc'])}; "
        f"{report['n_cases']} cases ({report['n_negative_controls']} negative controls).</p>",
    ]
    for title, header, rows, note in _tables(report):
        parts.append(f"<h2>{escape(title)}</h2><table><tr>")
        parts.append("".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = "".join(
                f"<td><b>{escape(t)}</b></td>" if b else f"<td>{escape(t)}</td>" for t, b in row
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
        if note:
            parts.append(f"<p class='note'>{escape(note)}</p>")
    parts.append("<img src='dice.png' alt='per-case Dice per model'>")
    if report.get("threshold_fit"):
        parts.append("<img src='thresholds.png' alt='predicted vs optimal thresholds'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _write_report(
    out: Path,
    rows: list[dict[str, Any]],
    report: dict[str, Any],
    fit_inputs: tuple[np.ndarray, np.ndarray] | None,
    *,
    force: bool,
) -> None:
    import json

    from petseg.io.atomic import atomic_dir
    from petseg.plots import dice_distribution_figure, threshold_fit_figure

    data = to_jsonable(report)
    with atomic_dir(out, force=force) as tmp:
        columns = list(rows[0])
        with (tmp / "per_case.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: ("" if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in row.items()
                    }
                )
        (tmp / "summary.json").write_text(
            json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        (tmp / "summary.md").write_text(_markdown(data), encoding="utf-8")
        (tmp / "summary.html").write_text(_html(data), encoding="utf-8")
        models = report["models"]
        dice = {
            label: {
                m: [r[key] for r in rows if r["model"] == m and not r["negative_control"]]
                for m in models
            }
            for key, label, _h in METRICS
            if key in ("pixel_dice", "lesion_dice_f1", "mean_matched_lesion_dice")
        }
        fig = dice_distribution_figure(dice)
        fig.savefig(tmp / "dice.png")
        if fit_inputs is not None:
            fig = threshold_fit_figure(fit_inputs[0], fit_inputs[1], report["threshold_fit"])
            fig.savefig(tmp / "thresholds.png")

"""The cohort-evaluation report as tables: Markdown and HTML pages of ``summary.json``.

Everything here reads the JSON-ready report of :func:`petseg.evaluate.evaluate_cohort`
(models, metric summaries, best models, score distribution, negative controls, paired
tests, threshold fit) and returns text; nothing is computed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from petseg.metrics import CASE_METRICS, SCORE_NAMES
from petseg.reporting.text import (
    Cell,
    Table,
    fmt_count_share,
    fmt_number,
    fmt_pvalue,
    html_page,
    markdown_page,
)

__all__ = ["evaluation_html", "evaluation_markdown", "evaluation_tables"]

TITLE = "petseg evaluation"


def _summary_tables(report: Mapping[str, Any]) -> list[Table]:
    """Mean (SD) and median [IQR] of every metric per model, best in bold."""
    models = report["models"]
    metrics, best = report["metrics"], report["best"]
    several = len(models) > 1

    def row(key: str, label: str, centre: str, spread: str, brackets: str) -> tuple[Cell, ...]:
        cells = []
        for m in models:
            c = metrics[key][m]
            text = f"{fmt_number(c[centre])} {brackets[0]}{fmt_number(c[spread])}{brackets[1]}"
            cells.append(Cell(text, several and m in best[key][centre]))
        return (Cell(label), *cells)

    mean_rows = tuple(row(key, label, "mean", "sd", "()") for key, label, _ in CASE_METRICS)
    median_rows = tuple(row(key, label, "median", "iqr", "[]") for key, label, _ in CASE_METRICS)
    n_pos = report["n_cases_with_lesions"]
    header = ("Metric", *models)
    return [
        Table(
            f"Mean (SD) over the {n_pos} cases with lesions (as Carlsen Table 3)",
            header,
            mean_rows,
            "SD is the sample SD (ddof=1). Bold: best value of the row. NaN values "
            "(undefined for a case) are left out; n per cell is in summary.json.",
        ),
        Table(
            f"Median [IQR] over the {n_pos} cases with lesions (as Rainio Table 4)",
            header,
            median_rows,
            "IQR = 75th − 25th percentile (linear interpolation). Bold: best value of the row.",
        ),
    ]


def _score_table(report: Mapping[str, Any]) -> Table:
    """Distribution of the automated Carlsen Table 1 score per model."""
    models = report["models"]
    n_pos = report["n_cases_with_lesions"]
    rows = []
    for score, name in SCORE_NAMES.items():
        counts = [report["scores"][m][str(score)] for m in models]
        rows.append(
            (
                Cell(f"{score} ({name})"),
                *(
                    Cell(f"{n} ({fmt_number(100.0 * n / n_pos if n_pos else None, 0)}%)")
                    for n in counts
                ),
            )
        )
    params = report["parameters"]
    return Table(
        "Evaluation score (Carlsen Table 1, automated; distribution as Table 4)",
        ("Score", *models),
        tuple(rows),
        f"Missed / false-positive lesions from {params['criterion']} matching "
        f"({params['matching']}, {params['connectivity']}-connectivity); minor error = "
        f"detected lesion with Dice < {params['minor_dice']}.",
    )


def _negative_table(report: Mapping[str, Any]) -> Table:
    """Carlsen's negative-control summary per model."""
    models = report["models"]
    neg = [report["negative_controls"][m] for m in models]
    limit = report["parameters"]["negative_limit_ml"]
    rows = [
        ("Negative controls", [str(n["n_cases"]) for n in neg]),
        ("No segmented volume", [fmt_count_share(n["n_none"], n["share_none"]) for n in neg]),
        (
            f"Volume ≤ {limit} mL",
            [fmt_count_share(n["n_at_most_limit"], n["share_at_most_limit"]) for n in neg],
        ),
        ("Median segmented volume (mL)", [fmt_number(n["median_volume_ml"], 2) for n in neg]),
        (
            "Largest: volumes / mL",
            [f"{n['max_n_volumes']} / {fmt_number(n['max_volume_ml'], 2)}" for n in neg],
        ),
    ]
    return Table(
        "Negative controls (cases without true lesions)",
        ("", *models),
        tuple((Cell(label), *(Cell(text) for text in texts)) for label, texts in rows),
    )


def _tests_table(report: Mapping[str, Any]) -> Table:
    """Paired t-test and Wilcoxon p-values between every pair of models."""
    rows = []
    for key, label, _higher in CASE_METRICS:
        for t in report["tests"][key]:
            p_t, p_w = t["t_pvalue"], t["wilcoxon_pvalue"]
            rows.append(
                (
                    Cell(label),
                    Cell(f"{t['a']} vs {t['b']}"),
                    Cell(str(t["n"])),
                    Cell(fmt_pvalue(p_t), p_t is not None and p_t < 0.05),
                    Cell(fmt_pvalue(p_w), p_w is not None and p_w < 0.05),
                )
            )
    return Table(
        "Paired tests between models (as Rainio Table 5)",
        ("Metric", "Models", "n", "paired t-test p", "Wilcoxon p"),
        tuple(rows),
        "Two-sided; bold: p < 0.05. Wilcoxon drops zero differences (zero_method='wilcox').",
    )


def _fit_table(fit: Mapping[str, Any]) -> Table:
    """Least-squares line of predicted on optimal thresholds."""
    return Table(
        "Predicted vs optimal thresholds (as Rainio Fig. 3)",
        ("n", "slope", "intercept", "Pearson r", "R²"),
        (
            (
                Cell(str(fit["n"])),
                Cell(fmt_number(fit["slope"])),
                Cell(fmt_number(fit["intercept"], 4)),
                Cell(fmt_number(fit["pearson_r"])),
                Cell(fmt_number(fit["r_squared"])),
            ),
        ),
    )


def evaluation_tables(report: Mapping[str, Any]) -> list[Table]:
    """The tables of an evaluation report, in reading order.

    Parameters
    ----------
    report : mapping
        The content of ``summary.json`` (:func:`petseg.evaluate.evaluate_cohort`).

    Returns
    -------
    list of Table
        Mean (SD) as Carlsen Table 3, median [IQR] as Rainio Table 4, the score
        distribution, the negative controls; with several models the paired tests
        (Rainio Table 5); with a threshold fit, its line (Rainio Fig. 3).
    """
    tables = [*_summary_tables(report), _score_table(report), _negative_table(report)]
    if len(report["models"]) > 1:
        tables.append(_tests_table(report))
    if report.get("threshold_fit"):
        tables.append(_fit_table(report["threshold_fit"]))
    return tables


def _intro(report: Mapping[str, Any], truth: str) -> str:
    return (
        f"petseg {report['petseg_version']}, {report['created_utc']}; {truth}"
        f"{report['n_cases']} cases ({report['n_negative_controls']} negative controls)."
    )


def evaluation_markdown(report: Mapping[str, Any]) -> str:
    """The evaluation report as Markdown (``summary.md``).

    Parameters
    ----------
    report : mapping
        The content of ``summary.json``.

    Returns
    -------
    str
    """
    intro = _intro(report, f"truth `{report['inputs']['truth']}`; ")
    return markdown_page(TITLE, intro, evaluation_tables(report))


def evaluation_html(report: Mapping[str, Any], images: Sequence[tuple[str, str]] = ()) -> str:
    """The evaluation report as one HTML page (``summary.html``).

    Parameters
    ----------
    report : mapping
        The content of ``summary.json``.
    images : sequence of (str, str)
        ``(file name, alternative text)`` of the figures beside the page.

    Returns
    -------
    str
    """
    return html_page(TITLE, _intro(report, ""), evaluation_tables(report), images)

"""The evaluation report's tables from a hand-written summary."""

from __future__ import annotations

import math

from petseg.metrics import CASE_METRICS, SCORE_NAMES
from petseg.reporting.evaluation import evaluation_html, evaluation_markdown, evaluation_tables


def _summary(mean: float) -> dict[str, float]:
    return {"mean": mean, "sd": 0.1, "median": mean, "iqr": 0.2, "n": 3}


def _report(models: list[str], fit: bool = False) -> dict:
    metrics = {
        key: {m: _summary(0.9 - 0.2 * k) for k, m in enumerate(models)} for key, *_ in CASE_METRICS
    }
    metrics["fp_volume_ml"]["b" if len(models) > 1 else "a"]["mean"] = math.nan
    best = {
        key: {"mean": [models[0]], "median": [models[0]], "higher_is_better": higher}
        for key, _label, higher in CASE_METRICS
    }
    negative = {
        "n_cases": 2, "n_none": 1, "share_none": 0.5, "n_at_most_limit": 2,
        "share_at_most_limit": 1.0, "median_volume_ml": 0.15, "max_volume_ml": 0.3,
        "max_n_volumes": 2,
    }  # fmt: skip
    tests = {
        key: [{"a": "a", "b": "b", "n": 3, "t_pvalue": 0.01, "wilcoxon_pvalue": 0.25}]
        for key, *_ in CASE_METRICS
    }
    report = {
        "petseg_version": "9.9",
        "created_utc": "2026-01-01T00:00:00+00:00",
        "inputs": {"truth": "/data/truth"},
        "models": models,
        "n_cases": 5,
        "n_cases_with_lesions": 3,
        "n_negative_controls": 2,
        "parameters": {
            "criterion": "overlap",
            "matching": "many-to-many",
            "connectivity": 26,
            "minor_dice": 0.5,
            "negative_limit_ml": 1.5,
        },
        "metrics": metrics,
        "best": best,
        "scores": {m: {str(s): (3 if s == 1 else 0) for s in SCORE_NAMES} for m in models},
        "negative_controls": {m: negative for m in models},
        "tests": tests if len(models) > 1 else {},
    }
    if fit:
        report["threshold_fit"] = {
            "n": 4, "slope": 1.08, "intercept": -0.0611, "pearson_r": 0.872, "r_squared": 0.764,
        }  # fmt: skip
    return report


def test_one_model_has_no_bold_and_no_tests():
    tables = evaluation_tables(_report(["a"]))
    assert [t.title for t in tables] == [
        "Mean (SD) over the 3 cases with lesions (as Carlsen Table 3)",
        "Median [IQR] over the 3 cases with lesions (as Rainio Table 4)",
        "Evaluation score (Carlsen Table 1, automated; distribution as Table 4)",
        "Negative controls (cases without true lesions)",
    ]
    assert not any(c.bold for t in tables for row in t.rows for c in row)
    mean = tables[0]
    assert [c.text for c in mean.rows[0]] == ["Pixel-wise Dice", "0.900 (0.100)"]
    assert mean.rows[-2][1].text == "– (0.100)"  # undefined mean (fp_volume_ml)
    score = tables[2]
    assert [c.text for c in score.rows[0]] == ["1 (Perfect/optimal)", "3 (100%)"]
    neg = tables[3]
    assert [c.text for c in neg.rows[1]] == ["No segmented volume", "1 (50%)"]
    assert neg.rows[2][0].text == "Volume ≤ 1.5 mL"


def test_two_models_bold_the_best_and_add_the_tests_and_the_fit():
    tables = evaluation_tables(_report(["a", "b"], fit=True))
    mean = tables[0]
    assert mean.rows[0][1].bold and not mean.rows[0][2].bold
    assert mean.rows[0][2].text == "0.700 (0.100)"
    tests, fit = tables[-2], tables[-1]
    assert tests.header == ("Metric", "Models", "n", "paired t-test p", "Wilcoxon p")
    row = tests.rows[0]
    assert [c.text for c in row] == ["Pixel-wise Dice", "a vs b", "3", "0.01", "0.25"]
    assert row[3].bold and not row[4].bold  # p < 0.05 only
    assert [c.text for c in fit.rows[0]] == ["4", "1.080", "-0.0611", "0.872", "0.764"]


def test_pages_name_version_time_and_truth():
    report = _report(["a", "b"])
    md = evaluation_markdown(report)
    assert md.startswith(
        "# petseg evaluation\n\npetseg 9.9, 2026-01-01T00:00:00+00:00; truth `/data/truth`; "
        "5 cases (2 negative controls).\n"
    )
    assert "| Pixel-wise Dice | **0.900 (0.100)** | 0.700 (0.100) |" in md
    html = evaluation_html(report, [("dice.png", "per-case Dice per model")])
    assert "<p>petseg 9.9, 2026-01-01T00:00:00+00:00; 5 cases (2 negative controls).</p>" in html
    assert "<img src='dice.png' alt='per-case Dice per model'>" in html

"""Rainio Tables 4 and 5 as text from hand-written rows."""

from __future__ import annotations

from petseg.reporting.slices import TABLE4_COLUMNS, experiment_markdown, experiment_tables


def _t4_row(fold, median):
    return {"fold": fold, **{c: {"median": median, "iqr": 0.25, "n": 12} for c in TABLE4_COLUMNS}}


T4 = [_t4_row(1, 0.5), _t4_row("all", 0.6125)]
T5 = [
    {
        "fold": 1,
        "method1_vs_method2": 0.0312,
        "method1_vs_method3": None,
        "method2_vs_method3": 1.0,
    },
    {
        "fold": "all",
        "method1_vs_method2": 2.5e-6,
        "method1_vs_method3": 0.5,
        "method2_vs_method3": 0.5,
    },
]
CONSTANT = {"threshold": 0.41, "median_dice": 0.558}


def test_tables_4_and_5():
    t4, t5 = experiment_tables(T4, T5, CONSTANT)
    assert t4.header == ("fold", "n", *TABLE4_COLUMNS)
    assert [c.text for c in t4.rows[1][:3]] == ["all", "12", "0.613 (0.250)"]
    assert t4.note == "Best constant threshold over all PET slices: 0.41 (median Dice 0.558)."
    assert t5.header == ("fold", "1st vs 2nd", "1st vs 3rd", "2nd vs 3rd")
    assert [c.text for c in t5.rows[0]] == ["1", "0.0312", "n/a", "1"]
    assert t5.rows[1][1].text == "2.50e-06"


def test_markdown_page():
    text = experiment_markdown(T4, T5, CONSTANT)
    assert text.startswith("# Rainio slice experiment\n\n## Table 4 - Dice median (IQR)")
    assert "| 1 | 12 | 0.500 (0.250) |" in text
    assert "## Table 5 - Wilcoxon signed-rank p-values" in text

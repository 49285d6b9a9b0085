"""Number formatting, tables as Markdown / HTML, CSV text."""

from __future__ import annotations

import csv
import io
import math

import pytest

from petseg.reporting.text import (
    Cell,
    Table,
    csv_text,
    fmt_count_share,
    fmt_number,
    fmt_pvalue,
    html_page,
    markdown_page,
)

TABLE = Table(
    "Dice <by model>",
    ("Metric", "a", "b"),
    ((Cell("Pixel Dice"), Cell("0.800", True), Cell("0.700")),),
    "Bold: best & first.",
)


def test_numbers_for_reading():
    assert fmt_number(0.98765) == "0.988"
    assert fmt_number(2.5, 0) == "2"  # round half to even, as Python's format
    assert fmt_number(float("nan")) == fmt_number(None) == "–"
    assert fmt_count_share(5, 0.5) == "5 (50%)"
    assert fmt_count_share(0, float("nan")) == "0 (–%)"
    assert fmt_pvalue(0.04567) == "0.0457"
    assert fmt_pvalue(3.7e-15) == "3.70e-15"
    assert fmt_pvalue(None) == fmt_pvalue(math.nan) == "–"


def test_rows_must_fill_the_header():
    with pytest.raises(ValueError, match="row 0 has 2 cells for 3 columns"):
        Table("t", ("x", "y", "z"), ((Cell("1"), Cell("2")),))


def test_markdown_page():
    text = markdown_page("Report", "Two models.", [TABLE])
    assert text == (
        "# Report\n\nTwo models.\n\n## Dice <by model>\n\n| Metric | a | b |\n|---|---|---|\n"
        "| Pixel Dice | **0.800** | 0.700 |\n\nBold: best & first.\n"
    )


def test_html_page_escapes_and_marks_the_best():
    page = html_page("Report", "a < b", [TABLE], [("dice.png", "Dice & more")])
    assert "<title>Report</title>" in page and "<p>a &lt; b</p>" in page
    assert "<h2>Dice &lt;by model&gt;</h2>" in page
    assert "<tr><td>Pixel Dice</td><td><b>0.800</b></td><td>0.700</td></tr>" in page
    assert "<p class='note'>Bold: best &amp; first.</p>" in page
    assert "<img src='dice.png' alt='Dice &amp; more'>" in page
    assert page.endswith("</body></html>")


def test_csv_text_keeps_columns_and_leaves_undefined_cells_empty():
    rows = [
        {"case": "p1", "dice": 2 / 3, "p": None, "negative": False},
        {"case": "p2", "dice": float("nan"), "p": 0.5, "negative": True},
    ]
    full = list(csv.reader(io.StringIO(csv_text(rows))))
    assert full == [
        ["case", "dice", "p", "negative"],
        ["p1", repr(2 / 3), "", "False"],
        ["p2", "", "0.5", "True"],
    ]
    short = list(csv.reader(io.StringIO(csv_text(rows, digits=3))))
    assert short[1][1] == "0.667"
    with pytest.raises(ValueError, match="at least one row"):
        csv_text([])

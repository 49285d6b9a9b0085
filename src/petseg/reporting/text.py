"""Tables as text: numbers formatted for reading, Markdown, HTML and CSV.

A :class:`Table` is what every petseg report shows: a title, a header, rows of cells
(text plus a bold flag for the best value) and a note. The same tables are written as
Markdown (``summary.md``, ``tables.md``) and as a self-contained HTML page.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = [
    "Cell",
    "Table",
    "csv_text",
    "fmt_count_share",
    "fmt_number",
    "fmt_pvalue",
    "html_page",
    "markdown_page",
]


@dataclass(frozen=True)
class Cell:
    """One table cell.

    Attributes
    ----------
    text : str
        The cell's text, already formatted.
    bold : bool
        The best value of its row (shown bold).
    """

    text: str
    bold: bool = False


@dataclass(frozen=True)
class Table:
    """A titled table with an optional note below it.

    Attributes
    ----------
    title : str
        Section heading.
    header : tuple of str
        Column names.
    rows : tuple of tuple of Cell
        One tuple per row, as long as ``header``.
    note : str
        Text under the table (empty: none).
    """

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""

    def __post_init__(self) -> None:
        for k, row in enumerate(self.rows):
            if len(row) != len(self.header):
                raise ValueError(
                    f"table {self.title!r}: row {k} has {len(row)} cells for "
                    f"{len(self.header)} columns"
                )


def fmt_number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; ``–`` for None or NaN (undefined).

    Parameters
    ----------
    value : float or None
        The number.
    digits : int
        Decimals shown.

    Returns
    -------
    str
    """
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def fmt_count_share(count: int, share: float | None) -> str:
    """``count (percent%)``, e.g. ``5 (50%)``; the share is a fraction in [0, 1].

    Parameters
    ----------
    count : int
        The count.
    share : float or None
        The count's fraction of the whole, in [0, 1]; None or NaN shows ``–``.

    Returns
    -------
    str
    """
    return f"{count} ({fmt_number(None if share is None else 100.0 * share, 0)}%)"


def fmt_pvalue(p: float | None) -> str:
    """A p-value with three significant digits, in scientific notation below 0.001.

    Parameters
    ----------
    p : float or None
        The p-value; None or NaN (no test possible) shows ``–``.

    Returns
    -------
    str
    """
    if p is None or math.isnan(p):
        return "–"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"


def markdown_page(title: str, intro: str, tables: Iterable[Table]) -> str:
    """A Markdown document: ``# title``, the intro paragraph, one section per table.

    Parameters
    ----------
    title : str
        Document heading.
    intro : str
        Paragraph under the heading (empty: none).
    tables : iterable of Table
        One ``##`` section each; the best cells in bold.

    Returns
    -------
    str
    """
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    for table in tables:
        header = table.header
        lines += [
            f"## {table.title}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for row in table.rows:
            lines.append(
                "| " + " | ".join(f"**{c.text}**" if c.bold else c.text for c in row) + " |"
            )
        lines += ["", table.note, ""] if table.note else [""]
    return "\n".join(lines)


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:.5em}"
    "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}td:first-child{text-align:left}"
    "th{background:#eee}.note{color:#555;font-size:90%}"
)


def html_page(
    title: str,
    intro: str,
    tables: Iterable[Table],
    images: Sequence[tuple[str, str]] = (),
) -> str:
    """A self-contained HTML page with the tables and pictures beside it.

    Parameters
    ----------
    title : str
        Page title and heading.
    intro : str
        Paragraph under the heading, plain text (escaped here).
    tables : iterable of Table
        One section each; the best cells in bold.
    images : sequence of (str, str)
        ``(file name relative to the page, alternative text)`` of each picture, shown
        after the tables.

    Returns
    -------
    str
    """
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(intro)}</p>",
    ]
    for table in tables:
        parts.append(f"<h2>{escape(table.title)}</h2><table><tr>")
        parts.append("".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr>")
        for row in table.rows:
            cells = "".join(
                f"<td><b>{escape(c.text)}</b></td>" if c.bold else f"<td>{escape(c.text)}</td>"
                for c in row
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
        if table.note:
            parts.append(f"<p class='note'>{escape(table.note)}</p>")
    parts += [f"<img src='{escape(src)}' alt='{escape(alt)}'>" for src, alt in images]
    parts.append("</body></html>")
    return "\n".join(parts)


def csv_text(rows: Sequence[Mapping[str, Any]], *, digits: int | None = None) -> str:
    """Rows of one table as CSV text (the columns of the first row, in order).

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per row; every row has the first row's keys.
    digits : int or None
        Significant digits of floats (``None``: every digit, ``repr``).

    Returns
    -------
    str
        CSV with a header line (``csv`` module's default dialect). Undefined values,
        NaN and None, are empty cells.
    """
    if not rows:
        raise ValueError("a CSV table needs at least one row")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v, digits) for k, v in row.items()})
    return buf.getvalue()


def _csv_value(value: Any, digits: int | None) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}g}"
    return value

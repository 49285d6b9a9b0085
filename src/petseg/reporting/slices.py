"""The Rainio slice experiment's tables as text (``tables.md``).

Reads the rows of :func:`petseg.slices.experiment.table4` and
:func:`~petseg.slices.experiment.table5`; nothing is computed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from petseg.reporting.text import Cell, Table, fmt_pvalue, markdown_page

__all__ = ["TABLE4_COLUMNS", "experiment_markdown", "experiment_tables"]

#: Table 4's Dice columns: the three methods, the oracle and the constant baselines.
TABLE4_COLUMNS = (
    "method1",
    "method2",
    "method3",
    "oracle",
    "pet_constant_all",
    "pet_constant_train",
)
_TABLE5_COLUMNS = {
    "method1_vs_method2": "1st vs 2nd",
    "method1_vs_method3": "1st vs 3rd",
    "method2_vs_method3": "2nd vs 3rd",
}


def experiment_tables(
    table4: Sequence[Mapping[str, Any]],
    table5: Sequence[Mapping[str, Any]],
    pet_constant: Mapping[str, float],
) -> list[Table]:
    """Rainio Table 4 (Dice median (IQR) per fold) and Table 5 (Wilcoxon p-values).

    Parameters
    ----------
    table4 : sequence of mapping
        Rows of :func:`petseg.slices.experiment.table4`: ``fold`` and, per column of
        :data:`TABLE4_COLUMNS`, ``{"median", "iqr", "n"}``.
    table5 : sequence of mapping
        Rows of :func:`petseg.slices.experiment.table5`: ``fold`` and the three p-values
        (None where every paired difference is zero).
    pet_constant : mapping
        ``threshold`` and ``median_dice`` of the best constant threshold over all PET
        slices.

    Returns
    -------
    list of Table
    """
    rows4 = tuple(
        (
            Cell(str(r["fold"])),
            Cell(str(r["method1"]["n"])),
            *(Cell(f"{r[c]['median']:.3f} ({r[c]['iqr']:.3f})") for c in TABLE4_COLUMNS),
        )
        for r in table4
    )
    rows5 = tuple(
        (
            Cell(str(r["fold"])),
            *(Cell("n/a" if r[k] is None else fmt_pvalue(r[k])) for k in _TABLE5_COLUMNS),
        )
        for r in table5
    )
    return [
        Table(
            "Table 4 - Dice median (IQR) per test fold and pooled",
            ("fold", "n", *TABLE4_COLUMNS),
            rows4,
            f"Best constant threshold over all PET slices: {pet_constant['threshold']:.2f} "
            f"(median Dice {pet_constant['median_dice']:.3f}).",
        ),
        Table(
            "Table 5 - Wilcoxon signed-rank p-values",
            ("fold", *_TABLE5_COLUMNS.values()),
            rows5,
        ),
    ]


def experiment_markdown(
    table4: Sequence[Mapping[str, Any]],
    table5: Sequence[Mapping[str, Any]],
    pet_constant: Mapping[str, float],
) -> str:
    """Tables 4 and 5 as a Markdown page (``tables.md``).

    Parameters
    ----------
    table4, table5 : sequence of mapping
        Rows of Tables 4 and 5 (see :func:`experiment_tables`).
    pet_constant : mapping
        The best constant threshold over all PET slices (see :func:`experiment_tables`).

    Returns
    -------
    str
    """
    return markdown_page(
        "Rainio slice experiment", "", experiment_tables(table4, table5, pet_constant)
    )

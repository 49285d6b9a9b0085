"""The cohort table: one row per study with its patient measures and status."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from petseg.io.atomic import atomic_file

__all__ = ["MEASURES", "TABLE_COLUMNS", "sort_rows", "write_cohort_csv"]

#: Per-patient measures (petseg.lesions.PatientStats): count, TTV mL, SUV g/mL, TLG g.
MEASURES = (
    "lesion_count",
    "total_tumour_volume_ml",
    "lowest_lesion_suv_mean",
    "highest_suv_max",
    "total_tlg_g",
)
#: Columns of ``cohort.csv``. ``status`` is done (processed in this run), skipped
#: (finished earlier with the same inputs and parameters) or failed (see ``error``).
TABLE_COLUMNS = ("id", "status", "input", *MEASURES, "seconds", "error")


def sort_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by study id (so the table never depends on completion order).

    Parameters
    ----------
    rows : sequence of mapping
        One row per study, with ``id``.

    Returns
    -------
    list of dict
    """
    return [dict(r) for r in sorted(rows, key=lambda r: str(r["id"]))]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def write_cohort_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write the cohort table atomically (replacing an older table of the same run).

    Empty cells: a measure that does not exist (lowest SUVmean without lesions) or a
    failed study's measures.

    Parameters
    ----------
    path : path
        ``OUT/cohort.csv``.
    rows : sequence of mapping
        One row per study (:data:`TABLE_COLUMNS`; volumes in mL, SUV in g/mL).
    """
    with atomic_file(path, force=True) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in sort_rows(rows):
                writer.writerow({c: _cell(row.get(c)) for c in TABLE_COLUMNS})

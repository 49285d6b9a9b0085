"""Carlsen et al. 2022 scoring of a review: Table 1 scores, the active correction time, and
the cohort summary in the form of Table 4 and Fig. 4."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = [
    "IDLE_PAUSE_S",
    "PAPER_CORRECTION_MINUTES",
    "SCORE_FOOTNOTE",
    "SCORE_TABLE",
    "summarise_reviews",
]

#: Carlsen et al. 2022, Table 1 "Evaluation scheme of AI segmentations", verbatim.
SCORE_TABLE: dict[int, tuple[str, str]] = {
    1: (
        "Perfect/optimal",
        "The segmentation is as good as manual segmentation, that is, no false positive "
        "or false negative segmentations",
    ),
    2: (
        "Optimal with minor adjustments",
        "The segmentation contains all lesions and only minor* false positives or false negatives",
    ),
    3: (
        "Acceptable with minor adjustments",
        "The segmentation contains the majority of the lesions (at least 1 and ≤ 3 missing) "
        "and ≤ 2 false positive segmentations. Additionally only minor* false positives or "
        "false negatives",
    ),
    4: (
        "Acceptable with major adjustments",
        "The segmentation contains most of the lesions (at least 1 and ≤ 6 missing) and ≤ 4 "
        "false positive segmentations. Additionally only minor* false positives or false "
        "negatives",
    ),
    5: (
        "Non-usable",
        "The segmentation does not contain enough of the lesions (≥ 7 lesions missing or no "
        "lesions segmented if less than 7 lesions present) or too many false positives "
        "(≥ 5) for correction to be meaningful",
    ),
}
SCORE_FOOTNOTE = "* Minor is defined as only parts of a predicted lesion are wrong"

#: Carlsen et al. 2022, Fig. 4: median correction time of the AI segmentation versus the
#: standardized semiautomatic (ground-truth) method, in minutes (n = 10, p < 0.01).
PAPER_CORRECTION_MINUTES = {"ai_median": 5.0, "semiautomatic_median": 17.0}

#: The page stops counting active time after this many seconds without interaction
#: (mouse, keyboard, wheel) or while it is hidden; see docs/review.md.
IDLE_PAUSE_S = 60.0


def summarise_reviews(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cohort summary in the form of Carlsen Table 4 (scores) and Fig. 4 (correction time).

    Parameters
    ----------
    rows : list of dict
        The rows of :meth:`petseg.review.cases.Cohort.status`.

    Returns
    -------
    dict with ``cases``, ``scored``, ``score_counts`` (score -> n and % of scored cases,
    the latest saved score of each case), ``acceptable`` (scores 1–4) and the correction
    time in minutes (sum of the active time of all saved versions of a case): median,
    quartiles, min, max, over the reviewed cases, beside the paper's medians.
    """
    scored = [int(r["score"]) for r in rows if r.get("score") is not None]
    counts = {
        str(score): {
            "label": SCORE_TABLE[score][0],
            "n": scored.count(score),
            "percent": round(100.0 * scored.count(score) / len(scored), 1) if scored else None,
        }
        for score in SCORE_TABLE
    }
    acceptable = sum(1 for s in scored if s <= 4)
    minutes = [float(r["active_seconds"]) / 60.0 for r in rows if r.get("versions")]
    time: dict[str, Any] = {"n": len(minutes)}
    if minutes:
        quartiles = (
            statistics.quantiles(minutes, n=4, method="inclusive")
            if len(minutes) > 1
            else [minutes[0]] * 3
        )
        time.update(
            median_min=statistics.median(minutes),
            q1_min=quartiles[0],
            q3_min=quartiles[2],
            min_min=min(minutes),
            max_min=max(minutes),
        )
    return {
        "cases": len(rows),
        "reviewed": sum(1 for r in rows if r.get("versions")),
        "scored": len(scored),
        "score_counts": counts,
        "acceptable": {
            "n": acceptable,
            "percent": round(100.0 * acceptable / len(scored), 1) if scored else None,
        },
        "correction_time": time,
        "paper": {
            "table4_n41": {"1": 7, "2": 3, "3": 19, "4": 6, "5": 6},
            "acceptable_percent": 85,
            "correction_median_min": PAPER_CORRECTION_MINUTES,
        },
    }

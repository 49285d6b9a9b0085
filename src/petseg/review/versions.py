"""Saved versions of a case's review: naming, listing, locking, writing, and the case's status.

Case folder (written by ``petseg segment``/``predict``)::

    CASE/
      lesions.nii.gz  pet_suv.nii.gz  [ct.nii.gz]  report.json  ...
      review/
        v001/lesions.nii.gz  v001/report.json      first saved correction
        v002/...                                   a later one (parent v001)
        .lock                                      file lock held while saving

A saved version is never overwritten and the original outputs are never modified. Each
version's ``report.json`` is the original report with ``patient`` and ``lesions``
recomputed for the corrected map and a ``review`` block (reviewer, times, active
seconds, edits, score, comment, parent version, and ``base_result_id``: the
``result_id`` of the segmentation it corrects).

When the segmentation is redone (``petseg run`` after an input changed, ``--force``), the
case folder keeps ``review/``; versions made on another ``result_id`` are *older-result*
versions: listed, never a session's starting point, never counted in the case's score or
correction time. Numbering continues after them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg import __version__
from petseg.jsonable import to_jsonable
from petseg.lesions import patient_stats, quantify_lesions
from petseg.review.errors import BadRequestError, UnprocessableError
from petseg.review.scoring import SCORE_TABLE
from petseg.study import Geometry

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_REVIEWER_CHARS",
    "VERSION_PATTERN",
    "case_lock",
    "case_status",
    "check_review_fields",
    "current_result",
    "current_versions",
    "latest_version",
    "made_on",
    "read_json",
    "result_id",
    "saved_versions",
    "utc_now",
    "version_name",
    "write_version",
]

VERSION_PATTERN = re.compile(r"^v(\d{3,})$")
MAX_COMMENT_CHARS = 10_000
MAX_REVIEWER_CHARS = 200


def utc_now() -> str:
    """The current UTC time in ISO 8601 form, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def version_name(number: int) -> str:
    """Folder name of saved version ``number`` (``v001``, ...).

    Parameters
    ----------
    number : int
        Version number, 1 or more.

    Returns
    -------
    str
    """
    return f"v{number:03d}"


def saved_versions(case_dir: Path) -> list[int]:
    """Numbers of the versions saved under ``case_dir/review``, on any segmentation, sorted.

    Parameters
    ----------
    case_dir : Path
        Case folder; its ``review/`` holds the versions.

    Returns
    -------
    list of int
    """
    review = case_dir / "review"
    if not review.is_dir():
        return []
    numbers = []
    for child in review.iterdir():
        match = VERSION_PATTERN.match(child.name)
        if match and child.is_dir() and (child / "report.json").is_file():
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; UnprocessableError (422) for anything else.

    Parameters
    ----------
    path : Path
        The JSON file (a case's or a saved version's ``report.json``).

    Returns
    -------
    dict
        The object it holds.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as err:
        raise UnprocessableError(
            f"{path} is not readable JSON ({err}); restore it from the segmentation output"
        ) from err
    if not isinstance(data, dict):
        raise UnprocessableError(
            f"{path} must hold a JSON object, got {type(data).__name__}; restore it from the "
            "segmentation output"
        )
    return data


def result_id(report: dict[str, Any]) -> str | None:
    """The id of the segmentation a ``report.json`` describes (its creation time for
    reports written before ``result_id`` existed).

    Parameters
    ----------
    report : dict
        A ``report.json``.

    Returns
    -------
    str or None
    """
    value = report.get("result_id") or report.get("created_utc")
    return None if value is None else str(value)


def made_on(version_report: dict[str, Any]) -> str | None:
    """The :func:`result_id` a saved version corrects.

    Parameters
    ----------
    version_report : dict
        A saved version's ``report.json``.

    Returns
    -------
    str or None
    """
    review = version_report.get("review")
    if not isinstance(review, dict):
        return None
    value = review.get("base_result_id") or review.get("original_report_created_utc")
    return None if value is None else str(value)


def version_report(case_dir: Path, number: int) -> dict[str, Any]:
    """The ``report.json`` of saved version ``number`` of a case folder.

    Parameters
    ----------
    case_dir : Path
        Case folder holding ``review/vNNN/report.json``.
    number : int
        Saved version number.

    Returns
    -------
    dict
    """
    return read_json(case_dir / "review" / version_name(number) / "report.json")


def current_result(case_dir: Path) -> str | None:
    """The :func:`result_id` of a case folder's segmentation (its ``report.json``).

    Parameters
    ----------
    case_dir : Path
        Case folder holding the segmentation's ``report.json``.

    Returns
    -------
    str or None
    """
    return result_id(read_json(case_dir / "report.json"))


def current_versions(case_dir: Path) -> list[int]:
    """Saved versions made on the case's current segmentation, oldest first.

    Parameters
    ----------
    case_dir : Path
        Case folder of the segmentation and its ``review/``.

    Returns
    -------
    list of int
    """
    current = current_result(case_dir)
    return [n for n in saved_versions(case_dir) if made_on(version_report(case_dir, n)) == current]


def latest_version(case_dir: Path) -> int:
    """Number of the latest version saved on the case's current segmentation; 0 for the
    segmentation itself.

    Parameters
    ----------
    case_dir : Path
        Case folder under review.

    Returns
    -------
    int
    """
    versions = current_versions(case_dir)
    return versions[-1] if versions else 0


@contextlib.contextmanager
def case_lock(case_dir: Path) -> Iterator[None]:
    """Exclusive lock on ``CASE/review/.lock`` (also between processes).

    Parameters
    ----------
    case_dir : Path
        Case folder; the lock file is ``review/.lock``.
    """
    review = case_dir / "review"
    review.mkdir(exist_ok=True)
    with open(review / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def status_row(case_id: str) -> dict[str, Any]:
    """The status row of a case with no saved version (see :func:`case_status`).

    Parameters
    ----------
    case_id : str
        The case folder's name.

    Returns
    -------
    dict
    """
    return {
        "case_id": case_id,
        "status": "not reviewed",
        "versions": 0,
        "latest_version": None,
        "older_result_versions": [],
        "score": None,
        "reviewer": None,
        "active_seconds": 0.0,
        "error": None,
    }


def case_status(case_dir: Path, case_id: str) -> dict[str, Any]:
    """Review status of one case folder (see :meth:`Cohort.status`).

    ``versions``, ``latest_version``, ``score``, ``reviewer`` and ``active_seconds`` (the
    sum over versions) count the versions made on the current segmentation;
    ``older_result_versions`` names those made on an earlier one.

    Parameters
    ----------
    case_dir : Path
        Case folder with its ``report.json`` and ``review/``.
    case_id : str
        Its id in the cohort.

    Returns
    -------
    dict
        One row of :meth:`petseg.review.cases.Cohort.status`.
    """
    current = current_result(case_dir)
    row = status_row(case_id)
    total = 0.0
    versions = 0
    for number in saved_versions(case_dir):
        report = version_report(case_dir, number)
        if made_on(report) != current:
            row["older_result_versions"].append(version_name(number))
            continue
        review = report.get("review") or {}
        versions += 1
        total += float(review.get("active_seconds") or 0.0)
        row["latest_version"] = version_name(number)
        row["score"] = review.get("score")
        row["reviewer"] = review.get("reviewer")
    row["versions"] = versions
    row["active_seconds"] = total
    if versions:
        row["status"] = "reviewed" if row["score"] is not None else "edited, not scored"
    return row


def check_review_fields(
    *, base_version: Any, reviewer: Any, score: Any, comment: Any, active_seconds: Any
) -> None:
    """Validate the fields of a save request; BadRequestError (400) names the first bad one.

    Parameters
    ----------
    base_version : int
        The version the page's edits start from (0: the segmentation itself).
    reviewer : str
        Non-empty name, at most :data:`MAX_REVIEWER_CHARS` characters.
    score : int or None
        Carlsen Table 1 score (1-5), or None when not scored.
    comment : str
        Free text, at most :data:`MAX_COMMENT_CHARS` characters.
    active_seconds : float
        Active correction time counted by the page, in s (non-negative).
    """
    if not isinstance(reviewer, str) or not reviewer.strip() or len(reviewer) > MAX_REVIEWER_CHARS:
        raise BadRequestError(
            f"reviewer must be a non-empty name of at most {MAX_REVIEWER_CHARS} characters"
        )
    if score is not None and (
        not isinstance(score, int) or isinstance(score, bool) or score not in SCORE_TABLE
    ):
        raise BadRequestError(
            f"score must be one of {sorted(SCORE_TABLE)} (Table 1) or null, got {score!r}"
        )
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise BadRequestError(f"comment must be text of at most {MAX_COMMENT_CHARS} characters")
    if (
        not isinstance(active_seconds, int | float)
        or isinstance(active_seconds, bool)
        or not np.isfinite(active_seconds)
        or active_seconds < 0
    ):
        raise BadRequestError(
            f"active_seconds must be a non-negative number, got {active_seconds!r}"
        )
    if not isinstance(base_version, int) or isinstance(base_version, bool):
        raise BadRequestError(f"base_version must be an integer, got {base_version!r}")


def write_version(
    case_dir: Path,
    number: int,
    labels: NDArray[np.int32],
    suv: NDArray[np.float32],
    geometry: Geometry,
    report: dict[str, Any],
    review: dict[str, Any],
) -> Path:
    """Write ``review/vNNN/lesions.nii.gz`` and ``report.json`` in one atomic step.

    The report is ``report`` with ``patient`` and ``lesions`` measured again on ``labels``,
    a new ``result_id`` and the ``review`` block. Hold :func:`case_lock` around the call.

    Parameters
    ----------
    case_dir : Path
        Case folder.
    number : int
        Number of the new version (not yet saved).
    labels : (Z, Y, X) int32 ndarray
        Corrected lesion map, one label per lesion.
    suv : (Z, Y, X) float32 ndarray
        PET in SUVbw (g/mL) on the same grid.
    geometry : Geometry
        Grid of ``labels`` and ``suv`` (spacing in mm).
    report : dict
        The segmentation's ``report.json``.
    review : dict
        The version's ``review`` block (reviewer, times, edits, score, ...).

    Returns
    -------
    Path
        The version's folder.
    """
    from petseg.io.atomic import atomic_dir
    from petseg.io.nifti import write_nifti

    lesion_stats = quantify_lesions(suv, labels, geometry)
    report = dict(report)
    report.update(
        petseg_version=__version__,
        created_utc=utc_now(),
        result_id=uuid.uuid4().hex,
        patient=patient_stats(lesion_stats).to_dict(),
        lesions=[s.to_dict() for s in lesion_stats],
        outputs=["lesions.nii.gz", "report.json"],
        review=review,
    )
    report = to_jsonable(report)
    target = case_dir / "review" / version_name(number)
    with atomic_dir(target) as tmp:
        write_nifti(tmp / "lesions.nii.gz", labels, geometry)
        (tmp / "report.json").write_text(
            json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    return target

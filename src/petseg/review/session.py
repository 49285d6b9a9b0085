"""Review logic: a case under review, its edits, versioned saving and cohort status.

This is the physician's step of Carlsen et al. 2022: look at the automatic segmentation,
remove false positives by their label, add missed lesions from a seed point (liver- or
spleen-reference threshold from the study's report, a fixed SUV, or a fraction of the
lesion's SUVmax), score the case with Table 1 and record the active correction time.
The web server (:mod:`petseg.review.server`) is a thin layer over the classes here.

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

Edits are kept as voxel differences (flat indices into the C-ordered ``(Z, Y, X)``
array with the values before and after), so undo/redo costs memory proportional to the
edited voxels, not to the image.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import re
import statistics
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg import __version__
from petseg.edit import SEED_METHODS, add_lesion_by_seed
from petseg.jsonable import to_jsonable
from petseg.lesions import (
    DEFAULT_CONNECTIVITY,
    LesionStats,
    as_label_map,
    check_connectivity,
    patient_stats,
    quantify_lesions,
    remove_labels,
)
from petseg.study import Geometry

__all__ = [
    "IDLE_PAUSE_S",
    "PAPER_CORRECTION_MINUTES",
    "SCORE_FOOTNOTE",
    "SCORE_TABLE",
    "BadRequestError",
    "CaseNotFoundError",
    "CaseSession",
    "Cohort",
    "ReviewError",
    "UnprocessableError",
    "VersionConflictError",
    "case_status",
    "current_result",
    "current_versions",
    "made_on",
    "result_id",
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

CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION_PATTERN = re.compile(r"^v(\d{3,})$")
REQUIRED_FILES = ("lesions.nii.gz", "pet_suv.nii.gz", "report.json")
MAX_COMMENT_CHARS = 10_000
MAX_REVIEWER_CHARS = 200


class ReviewError(Exception):
    """A request the review cannot carry out; ``status`` is the HTTP status to answer."""

    status = 400


class BadRequestError(ReviewError):
    status = 400


class CaseNotFoundError(ReviewError):
    status = 404


class VersionConflictError(ReviewError):
    status = 409


class UnprocessableError(ReviewError):
    status = 422


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _version_name(number: int) -> str:
    return f"v{number:03d}"


def _saved_versions(case_dir: Path) -> list[int]:
    review = case_dir / "review"
    if not review.is_dir():
        return []
    numbers = []
    for child in review.iterdir():
        match = VERSION_PATTERN.match(child.name)
        if match and child.is_dir() and (child / "report.json").is_file():
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; UnprocessableError (422) for anything else."""
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
    reports written before ``result_id`` existed)."""
    value = report.get("result_id") or report.get("created_utc")
    return None if value is None else str(value)


def made_on(version_report: dict[str, Any]) -> str | None:
    """The :func:`result_id` a saved version corrects."""
    review = version_report.get("review")
    if not isinstance(review, dict):
        return None
    value = review.get("base_result_id") or review.get("original_report_created_utc")
    return None if value is None else str(value)


def _version_report(case_dir: Path, number: int) -> dict[str, Any]:
    return _read_json(case_dir / "review" / _version_name(number) / "report.json")


def current_result(case_dir: Path) -> str | None:
    """The :func:`result_id` of a case folder's segmentation (its ``report.json``)."""
    return result_id(_read_json(case_dir / "report.json"))


def current_versions(case_dir: Path) -> list[int]:
    """Saved versions made on the case's current segmentation, oldest first."""
    current = current_result(case_dir)
    return [
        n for n in _saved_versions(case_dir) if made_on(_version_report(case_dir, n)) == current
    ]


@dataclass(frozen=True)
class Change:
    """One edit as a voxel difference on the flattened ``(Z, Y, X)`` label map."""

    index: NDArray[np.int64]
    before: NDArray[np.int32]
    after: NDArray[np.int32]


@dataclass
class _Step:
    record: dict[str, Any]
    change: Change


class Cohort:
    """A folder of case folders, or a single case folder, under review.

    Case ids are folder names; :meth:`case_dir` accepts only ids that name a direct
    sub-folder (no ``..``, no separators, no absolute paths, no symlink leaving the
    cohort), so a request can never reach a file outside ``root``.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if not root.is_dir():
            raise NotADirectoryError(
                f"{root} is not a folder; give a case output folder of `petseg segment` "
                "or a cohort folder of such case folders"
            )
        self.root = root.resolve()
        self.single = all((self.root / name).is_file() for name in REQUIRED_FILES)
        if not self.single and not self.case_ids():
            raise FileNotFoundError(
                f"{root} holds no case folder (a folder with {', '.join(REQUIRED_FILES)}); "
                "run `petseg segment` first"
            )

    def _folder(self, case_id: str) -> Path | None:
        """The case folder of a well-formed id inside the cohort, or None."""
        if not CASE_ID_PATTERN.match(case_id) or ".." in case_id:
            return None
        folder = (self.root / case_id).resolve()
        if folder.parent != self.root or not all((folder / n).is_file() for n in REQUIRED_FILES):
            return None
        return folder

    def case_ids(self) -> list[str]:
        """Ids of the cases, sorted (sub-folders with the case files, not leaving the cohort)."""
        if self.single:
            return [self.root.name]
        return sorted(
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and self._folder(child.name) is not None
        )

    def case_dir(self, case_id: str) -> Path:
        """The folder of ``case_id``; CaseNotFoundError for anything else."""
        if not isinstance(case_id, str) or not CASE_ID_PATTERN.match(case_id) or ".." in case_id:
            raise CaseNotFoundError(f"unknown case {case_id!r}")
        if self.single:
            if case_id != self.root.name:
                raise CaseNotFoundError(
                    f"unknown case {case_id!r}; this review has {self.root.name!r}"
                )
            return self.root
        folder = self._folder(case_id)
        if folder is None:
            raise CaseNotFoundError(f"unknown case {case_id!r} in {self.root}")
        return folder

    def status(self) -> list[dict[str, Any]]:
        """One row per case: reviewed or not, latest version, score, correction time.

        A case whose files cannot be read gets status ``"unreadable"`` and its ``error``;
        the other cases are listed as usual.
        """
        rows = []
        for case_id in self.case_ids():
            try:
                rows.append(case_status(self.case_dir(case_id), case_id))
            except (ReviewError, OSError, ValueError, TypeError) as err:
                rows.append({**_status_row(case_id), "status": "unreadable", "error": str(err)})
        return rows


def _status_row(case_id: str) -> dict[str, Any]:
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
    """
    current = current_result(case_dir)
    row = _status_row(case_id)
    total = 0.0
    versions = 0
    for number in _saved_versions(case_dir):
        report = _version_report(case_dir, number)
        if made_on(report) != current:
            row["older_result_versions"].append(_version_name(number))
            continue
        review = report.get("review") or {}
        versions += 1
        total += float(review.get("active_seconds") or 0.0)
        row["latest_version"] = _version_name(number)
        row["score"] = review.get("score")
        row["reviewer"] = review.get("reviewer")
    row["versions"] = versions
    row["active_seconds"] = total
    if versions:
        row["status"] = "reviewed" if row["score"] is not None else "edited, not scored"
    return row


def summarise_reviews(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cohort summary in the form of Carlsen Table 4 (scores) and Fig. 4 (correction time).

    Parameters
    ----------
    rows : output of :meth:`Cohort.status`

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


@contextlib.contextmanager
def _case_lock(case_dir: Path) -> Iterator[None]:
    """Exclusive lock on ``CASE/review/.lock`` (also between processes)."""
    review = case_dir / "review"
    review.mkdir(exist_ok=True)
    with open(review / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class CaseData:
    """The read-only images of a case, shared by all sessions on it."""

    case_id: str
    folder: Path
    suv: NDArray[np.float32]
    geometry: Geometry
    report: dict[str, Any]
    has_ct: bool
    #: what the organ map removed as physiological uptake (``removed.nii.gz``), if anything
    removed: NDArray[np.int32] | None = None

    @classmethod
    def load(cls, folder: Path, case_id: str) -> CaseData:
        from petseg.io.nifti import read_nifti

        try:
            suv, geometry = read_nifti(folder / "pet_suv.nii.gz")
        except (OSError, ValueError) as err:
            raise UnprocessableError(f"{folder / 'pet_suv.nii.gz'} cannot be read: {err}") from err
        removed_file = folder / "removed.nii.gz"
        return cls(
            case_id=case_id,
            folder=folder,
            suv=np.ascontiguousarray(suv, dtype=np.float32),
            geometry=geometry,
            report=_read_json(folder / "report.json"),
            has_ct=(folder / "ct.nii.gz").is_file(),
            removed=_load_labels(removed_file, geometry) if removed_file.is_file() else None,
        )

    def removed_components(self) -> dict[int, dict[str, Any]]:
        """Rows of ``report.json["organs"]["removed"]`` by removed label (organ, rule, mL, SUV)."""
        rows = (self.report.get("organs") or {}).get("removed") or []
        return {int(row["label"]): row for row in rows}

    @property
    def connectivity(self) -> int:
        params = self.report.get("parameters") or {}
        return check_connectivity(int(params.get("connectivity", DEFAULT_CONNECTIVITY)))


def _load_labels(path: Path, geometry: Geometry) -> NDArray[np.int32]:
    from petseg.io.nifti import read_nifti

    try:
        labels, label_geometry = read_nifti(path)
    except (OSError, ValueError) as err:
        raise UnprocessableError(f"{path} cannot be read: {err}") from err
    if not label_geometry.same_grid(geometry):
        raise UnprocessableError(
            f"{path} is not on the PET grid of its case ({label_geometry.shape} vs "
            f"{geometry.shape}); it was not written by petseg for this case"
        )
    try:
        return np.ascontiguousarray(as_label_map(labels, str(path)))
    except ValueError as err:
        raise UnprocessableError(str(err)) from err


@dataclass
class CaseSession:
    """One browser tab reviewing one case: the current lesion map and its edit history.

    The session starts from the latest saved version (or the original segmentation) and
    remembers that version as ``base_version``; :meth:`save` refuses (409) when another
    save happened in between, and :meth:`rebase` replays this session's edits on the
    newer version so that no edit is lost.
    """

    case: CaseData
    labels: NDArray[np.int32]
    base_version: int
    started_utc: str = field(default_factory=_utc_now)
    revision: int = 0
    steps: list[_Step] = field(default_factory=list)
    position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the page's reduced label map (server.py): ((base_version, revision, step), NIfTI bytes)
    preview_cache: tuple[tuple[int, int, int], bytes] | None = None
    #: label -> (bounding box, LesionStats, SUVmax voxel (k, j, i)) of the current map
    _lesions: dict[int, tuple[tuple[slice, ...], LesionStats, tuple[int, int, int]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self._index_all()

    @classmethod
    def open(cls, case: CaseData) -> CaseSession:
        """Start a session on the latest saved version of ``case``."""
        base = cls.latest_version(case.folder)
        return cls(case=case, labels=cls._version_labels(case, base), base_version=base)

    def restart_clock(self) -> None:
        """Count the session's wall time from now (for a session read ahead of its use)."""
        self.started_utc = _utc_now()

    @staticmethod
    def latest_version(case_dir: Path) -> int:
        """Number of the latest version saved on the case's current segmentation; 0 for the
        segmentation itself."""
        versions = current_versions(case_dir)
        return versions[-1] if versions else 0

    @staticmethod
    def _version_labels(case: CaseData, number: int) -> NDArray[np.int32]:
        if number == 0:
            return _load_labels(case.folder / "lesions.nii.gz", case.geometry)
        return _load_labels(
            case.folder / "review" / _version_name(number) / "lesions.nii.gz", case.geometry
        )

    # --- per-lesion cache ------------------------------------------------------------
    #
    # Edits touch one lesion, so the lesion table is kept per label and only the labels
    # an edit changes are measured again, with petseg.lesions.quantify_lesions on a crop
    # around the lesion (padded so SUVpeak's 1 mL sphere sees the same voxels as on the
    # whole image). Whole-image passes (np.unique over 34 M voxels) would cost seconds.

    def _index_all(self) -> None:
        self._lesions = {}
        for label, box in enumerate(ndimage.find_objects(self.labels), start=1):
            if box is not None:
                self._measure(label, box)

    def _measure(self, label: int, box: tuple[slice, ...]) -> None:
        spacing = self.case.geometry.spacing
        margin = [int(np.ceil(7.0 / d)) + 1 for d in spacing]  # > SUVpeak radius 6.2 mm
        padded = tuple(
            slice(max(b.start - m, 0), min(b.stop + m, n))
            for b, m, n in zip(box, margin, self.labels.shape, strict=True)
        )
        start = [b.start for b in padded]
        sub_labels = np.where(self.labels[padded] == label, label, 0).astype(np.int32)
        sub_suv = self.case.suv[padded]
        affine = self.case.geometry.affine.copy()
        affine[:3, 3] = self.case.geometry.index_to_patient(np.asarray(start, dtype=float))
        sub_geometry = Geometry(affine, sub_labels.shape)
        (stats,) = quantify_lesions(sub_suv, sub_labels, sub_geometry)
        peak = ndimage.maximum_position(sub_suv, sub_labels, label)
        peak_kji = (int(peak[0] + start[0]), int(peak[1] + start[1]), int(peak[2] + start[2]))
        self._lesions[label] = (box, stats, peak_kji)

    def _update(self, change: Change) -> None:
        touched = set(np.unique(change.before).tolist()) | set(np.unique(change.after).tolist())
        for label in sorted(touched - {0}):
            voxels = change.index[change.after == label]
            if voxels.size == 0:
                self._lesions.pop(label, None)  # edits remove or add whole lesions
                continue
            kji = np.unravel_index(voxels, self.labels.shape)
            box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in kji)
            if label in self._lesions:  # grown into an existing label: union of boxes
                old = self._lesions[label][0]
                box = tuple(
                    slice(min(a.start, b.start), max(a.stop, b.stop))
                    for a, b in zip(old, box, strict=True)
                )
            self._measure(label, box)

    # --- state -----------------------------------------------------------------------

    @property
    def unsaved(self) -> bool:
        """The session holds edits not saved as a version (undone edits do not count)."""
        return self.position > 0

    @property
    def edits(self) -> list[dict[str, Any]]:
        """The edits in effect (undone edits excluded), oldest first."""
        return [step.record for step in self.steps[: self.position]]

    def lesions(self) -> list[dict[str, Any]]:
        """Per-lesion table of the current map.

        Each row has :class:`petseg.lesions.LesionStats`' fields (volume mL, SUV g/mL,
        centroid LPS mm) and ``max_voxel_kji``, the voxel of the lesion's SUVmax, where
        the page jumps when the lesion is picked in the list.
        """
        return [
            {**stats.to_dict(), "max_voxel_kji": list(peak)}
            for _, (_, stats, peak) in sorted(self._lesions.items())
        ]

    def removed(self) -> list[dict[str, Any]]:
        """The components removed as physiological uptake, each with ``restored`` (by an
        edit in effect) and ``max_voxel_kji`` (its SUVmax voxel, where the page jumps)."""
        if self.case.removed is None:
            return []
        restored = {e["removed_label"] for e in self.edits if e["op"] == "restore"}
        rows = []
        for label, row in sorted(self.case.removed_components().items()):
            box = self._removed_box(label)
            inside = self.case.removed[box] == label
            peak = np.unravel_index(
                np.argmax(np.where(inside, self.case.suv[box], -np.inf)), inside.shape
            )
            rows.append(
                {
                    **{
                        k: row.get(k)
                        for k in ("label", "organ", "rule", "volume_ml", "suv_max", "suv_mean")
                    },
                    "restored": label in restored,
                    "max_voxel_kji": [int(p + b.start) for p, b in zip(peak, box, strict=True)],
                }
            )
        return rows

    def _removed_box(self, label: int) -> tuple[slice, ...]:
        assert self.case.removed is not None
        boxes = ndimage.find_objects(self.case.removed, max_label=label)
        box = boxes[label - 1] if len(boxes) >= label else None
        if box is None:
            raise UnprocessableError(f"removed component {label} is not in removed.nii.gz")
        return box

    def state(self, change: Change | None = None) -> dict[str, Any]:
        """JSON-ready state for the page; ``patch`` lists the voxels changed by ``change``."""
        stats = [entry[1] for _, entry in sorted(self._lesions.items())]
        out: dict[str, Any] = {
            "case_id": self.case.case_id,
            "revision": self.revision,
            "base_version": _version_name(self.base_version) if self.base_version else "original",
            "base_version_number": self.base_version,
            "lesions": self.lesions(),
            "patient": patient_stats(stats).to_dict(),
            "edits": self.edits,
            "removed": self.removed(),
            "can_undo": self.position > 0,
            "can_redo": self.position < len(self.steps),
            "unsaved": self.unsaved,
        }
        if change is not None:
            out["patch"] = {"index": change.index.tolist(), "value": change.after.tolist()}
        return out

    def _set(self, change: Change) -> None:
        self.labels.ravel()[change.index] = change.after
        self.revision += 1
        self._update(change)

    def _apply(self, record: dict[str, Any], change: Change) -> Change:
        self._set(change)
        del self.steps[self.position :]
        self.steps.append(_Step(record=record, change=change))
        self.position += 1
        return change

    def _global_change(
        self, box: tuple[slice, ...], old: NDArray[np.int32], new: NDArray[np.int32]
    ) -> Change:
        local = np.nonzero(old != new)
        index = np.ravel_multi_index(
            tuple(a + b.start for a, b in zip(local, box, strict=True)), self.labels.shape
        )
        return Change(index=index.astype(np.int64), before=old[local], after=new[local])

    # --- edits -----------------------------------------------------------------------

    def check_seed(self, seed: Any) -> tuple[int, int, int]:
        """Validate a ``(k, j, i)`` voxel index (422 when outside the volume)."""
        if (
            not isinstance(seed, list | tuple)
            or len(seed) != 3
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed)
        ):
            raise BadRequestError(
                f"seed must be three integer voxel indices [k, j, i], got {seed!r}"
            )
        shape = self.case.geometry.shape
        if any(not 0 <= s < n for s, n in zip(seed, shape, strict=True)):
            raise UnprocessableError(
                f"seed {list(seed)} lies outside the volume of shape (Z, Y, X) = {shape}"
            )
        return (seed[0], seed[1], seed[2])

    def remove(self, label: int) -> Change:
        """Remove lesion ``label`` (Carlsen: false positives removed by their unique label).

        :func:`petseg.lesions.remove_labels` runs on the lesion's bounding box, which
        holds all of its voxels.
        """
        if not isinstance(label, int) or isinstance(label, bool) or label < 1:
            raise BadRequestError(f"label must be a positive integer, got {label!r}")
        if label not in self._lesions:
            raise UnprocessableError(
                f"lesion label {label} is not in the lesion map (labels: {sorted(self._lesions)})"
            )
        box = self._lesions[label][0]
        old = self.labels[box].copy()
        try:
            new = remove_labels(old, [label])
        except ValueError as err:
            raise UnprocessableError(str(err)) from err
        change = self._global_change(box, old, new)
        return self._apply({"op": "remove", "label": label, "utc": _utc_now()}, change)

    def label_at(self, seed: Any) -> int:
        """The lesion label at voxel ``seed`` (0 for background)."""
        k, j, i = self.check_seed(seed)
        return int(self.labels[k, j, i])

    def add(self, seed: Any, method: str, value: float | None = None) -> Change:
        """Add a lesion grown from ``seed`` with :func:`petseg.edit.add_lesion_by_seed`.

        The library function runs on a box around the seed (±32 voxels, doubled until
        the grown region does not touch a cut face of the box, at most the whole
        image), which gives the same region as on the whole image; the new lesion gets
        the label ``max + 1`` of the whole map, as the library would give it.
        """
        index = self.check_seed(seed)
        if method not in SEED_METHODS:
            raise BadRequestError(f"method must be one of {list(SEED_METHODS)}, got {method!r}")
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value)
        ):
            raise BadRequestError(f"value must be a finite number or null, got {value!r}")
        reference = self.case.report.get("reference")
        if method in ("liver", "spleen") and reference and reference.get("organ", method) != method:
            raise UnprocessableError(
                f"this study's reference VOI is in the {reference.get('organ')}, not the "
                f"{method}; choose method {reference.get('organ')!r}"
            )
        shape = self.labels.shape
        half = 32
        while True:
            box = tuple(
                slice(max(s - half, 0), min(s + half + 1, n))
                for s, n in zip(index, shape, strict=True)
            )
            old = self.labels[box]
            k, j, i = (s - b.start for s, b in zip(index, box, strict=True))
            local_seed = (k, j, i)
            affine = self.case.geometry.affine.copy()
            affine[:3, 3] = self.case.geometry.index_to_patient(
                np.asarray([b.start for b in box], dtype=float)
            )
            sub_geometry = Geometry(affine, old.shape)
            try:
                new, local_label = add_lesion_by_seed(
                    old,
                    self.case.suv[box],
                    sub_geometry,
                    local_seed,
                    method=method,
                    value=None if value is None else float(value),
                    reference=reference,
                    connectivity=self.case.connectivity,
                )
            except ValueError as err:
                raise UnprocessableError(str(err)) from err
            region = new == local_label
            cut = [(b.start > 0, b.stop < n) for b, n in zip(box, shape, strict=True)]
            touches = any(
                (low and region.take(0, axis=a).any()) or (high and region.take(-1, axis=a).any())
                for a, (low, high) in enumerate(cut)
            )
            if not touches or all(not low and not high for low, high in cut):
                break
            half *= 2
        new_label = max(self._lesions, default=0) + 1
        target = np.where(region, new_label, old).astype(np.int32)
        change = self._global_change(box, old, target)
        record = {
            "op": "add",
            "seed_kji": list(index),
            "method": method,
            "value": value,
            "new_label": new_label,
            "voxels": int(change.index.size),
            "utc": _utc_now(),
        }
        return self._apply(record, change)

    def restore(self, removed_label: int) -> Change:
        """Give back a component removed as physiological uptake, as a new lesion.

        Its voxels (``removed.nii.gz == removed_label``) not already in a lesion get the
        label ``max + 1``; the edit records the organ it had been removed from.
        """
        if (
            not isinstance(removed_label, int)
            or isinstance(removed_label, bool)
            or removed_label < 1
        ):
            raise BadRequestError(
                f"removed_label must be a positive integer, got {removed_label!r}"
            )
        rows = self.case.removed_components()
        if self.case.removed is None or removed_label not in rows:
            raise UnprocessableError(
                f"no removed component {removed_label} in this case "
                f"(removed components: {sorted(rows) or 'none'})"
            )
        box = self._removed_box(removed_label)
        old = self.labels[box].copy()
        region = (self.case.removed[box] == removed_label) & (old == 0)
        if not region.any():
            raise UnprocessableError(f"removed component {removed_label} is already restored")
        new_label = max(self._lesions, default=0) + 1
        change = self._global_change(box, old, np.where(region, new_label, old).astype(np.int32))
        record = {
            "op": "restore",
            "removed_label": removed_label,
            "organ": rows[removed_label].get("organ"),
            "new_label": new_label,
            "voxels": int(change.index.size),
            "utc": _utc_now(),
        }
        return self._apply(record, change)

    def undo(self) -> Change:
        if self.position == 0:
            raise UnprocessableError("nothing to undo")
        self.position -= 1
        step = self.steps[self.position].change
        change = Change(index=step.index, before=step.after, after=step.before)
        self._set(change)
        return change

    def redo(self) -> Change:
        if self.position == len(self.steps):
            raise UnprocessableError("nothing to redo")
        change = self.steps[self.position].change
        self._set(change)
        self.position += 1
        return change

    def rebase(self) -> list[str]:
        """Replay this session's edits on the latest saved version; return notes on skipped ones.

        A removal whose label no longer exists, or an addition whose seed now lies inside
        an existing lesion, is skipped and reported (the other tab already made it).
        """
        latest = self.latest_version(self.case.folder)
        edits = self.edits
        self.labels = self._version_labels(self.case, latest)
        self._index_all()
        self.base_version = latest
        self.steps, self.position = [], 0
        notes = []
        for edit in edits:
            try:
                if edit["op"] == "remove":
                    self.remove(int(edit["label"]))
                elif edit["op"] == "restore":
                    self.restore(int(edit["removed_label"]))
                else:
                    self.add(edit["seed_kji"], edit["method"], edit["value"])
            except ReviewError as err:
                notes.append(f"{edit['op']} skipped on {_version_name(latest)}: {err}")
        self.revision += 1
        return notes

    # --- saving ----------------------------------------------------------------------

    def save(
        self,
        *,
        base_version: int,
        reviewer: str,
        score: int | None,
        comment: str,
        active_seconds: float,
    ) -> dict[str, Any]:
        """Write ``review/vNNN/lesions.nii.gz`` and ``report.json``; return the new status.

        Raises VersionConflictError (409) when ``base_version`` is not the latest saved
        version of the case (another tab or reviewer saved meanwhile); nothing is written.
        """
        from petseg.io.atomic import atomic_dir
        from petseg.io.nifti import write_nifti

        if (
            not isinstance(reviewer, str)
            or not reviewer.strip()
            or len(reviewer) > MAX_REVIEWER_CHARS
        ):
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
        started = _dt.datetime.fromisoformat(self.started_utc)
        elapsed = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
        folder = self.case.folder
        with _case_lock(folder):
            latest = self.latest_version(folder)
            if result_id(self.case.report) != current_result(folder):
                raise VersionConflictError(
                    f"case {self.case.case_id!r} was segmented again since this page opened; "
                    "reload the page to review the new segmentation"
                )
            if base_version != latest or self.base_version != latest:
                raise VersionConflictError(
                    f"case {self.case.case_id!r} was saved as {_version_name(latest)} since this "
                    f"page opened {_version_name(base_version) if base_version else 'the original'}; "
                    "rebase to replay your edits on it, then save again"
                )
            number = max(_saved_versions(folder), default=0) + 1
            lesion_stats = quantify_lesions(self.case.suv, self.labels, self.case.geometry)
            report = dict(self.case.report)
            report.update(
                petseg_version=__version__,
                created_utc=_utc_now(),
                result_id=uuid.uuid4().hex,
                patient=patient_stats(lesion_stats).to_dict(),
                lesions=[s.to_dict() for s in lesion_stats],
                outputs=["lesions.nii.gz", "report.json"],
                review={
                    "version": _version_name(number),
                    "parent_version": _version_name(latest) if latest else "original",
                    "reviewer": reviewer.strip(),
                    "started_utc": self.started_utc,
                    "saved_utc": _utc_now(),
                    "active_seconds": round(min(float(active_seconds), elapsed + 1.0), 1),
                    "active_seconds_rule": (
                        f"page visible and interacted with; counting pauses after {IDLE_PAUSE_S:g} s "
                        "without mouse/keyboard input; capped at the wall time since the page opened"
                    ),
                    "edits": self.edits,
                    "score": score,
                    "score_text": SCORE_TABLE[score][0] if score is not None else None,
                    "comment": comment,
                    "original_report_created_utc": self.case.report.get("created_utc"),
                    "base_result_id": result_id(self.case.report),
                },
            )
            report = to_jsonable(report)
            with atomic_dir(folder / "review" / _version_name(number)) as tmp:
                write_nifti(tmp / "lesions.nii.gz", self.labels, self.case.geometry)
                (tmp / "report.json").write_text(
                    json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8"
                )
            self.base_version = number
            self.steps, self.position = [], 0
            self.restart_clock()
        return {
            "version": _version_name(number),
            "path": str(folder / "review" / _version_name(number)),
        }

"""A case under review in one browser tab: its current lesion map, edits, undo and saving.

This is the physician's step of Carlsen et al. 2022: look at the automatic segmentation,
remove false positives by their label, add missed lesions from a seed point (liver- or
spleen-reference threshold from the study's report, a fixed SUV, or a fraction of the
lesion's SUVmax), score the case with Table 1 and record the active correction time.
The cases are read by :mod:`petseg.review.cases`, versions are saved by
:mod:`petseg.review.versions`, and the web server (:mod:`petseg.review.server`) is a thin
layer over the class here.
"""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.edit import SEED_METHODS
from petseg.lesions import patient_stats, remove_labels
from petseg.review.cases import CaseData, load_labels
from petseg.review.edits import (
    Change,
    EditStep,
    check_seed,
    grow_region,
    removed_box,
    voxel_change,
)
from petseg.review.errors import (
    BadRequestError,
    ReviewError,
    UnprocessableError,
    VersionConflictError,
)
from petseg.review.lesion_index import LesionIndex
from petseg.review.scoring import IDLE_PAUSE_S, SCORE_TABLE
from petseg.review.versions import (
    case_lock,
    check_review_fields,
    current_result,
    latest_version,
    result_id,
    saved_versions,
    utc_now,
    version_name,
    write_version,
)

__all__ = ["CaseSession"]


def version_labels(case: CaseData, number: int) -> NDArray[np.int32]:
    """The lesion map of saved version ``number`` of ``case`` (0: the segmentation).

    Parameters
    ----------
    case : CaseData
        The case under review.
    number : int
        Saved version, 0 for the segmentation itself.

    Returns
    -------
    (Z, Y, X) int32 ndarray
    """
    if number == 0:
        return load_labels(case.folder / "lesions.nii.gz", case.geometry)
    return load_labels(
        case.folder / "review" / version_name(number) / "lesions.nii.gz", case.geometry
    )


@dataclass
class CaseSession:
    """One browser tab reviewing one case: the current lesion map and its edit history.

    The session starts from the latest saved version (or the original segmentation) and
    remembers that version as ``base_version``; :meth:`save` refuses (409) when another
    save happened in between, and :meth:`rebase` replays this session's edits on the
    newer version so that no edit is lost.

    Parameters
    ----------
    case : CaseData
        The case's images and report.
    labels : (Z, Y, X) int32 ndarray
        The lesion map the session starts from; edited in place.
    base_version : int
        The saved version ``labels`` comes from (0: the segmentation itself).
    started_utc : str
        When the session started (ISO 8601, UTC); the active time is capped by it.
    revision : int
        Counts the changes of ``labels`` (the page's cache key).
    steps : list of EditStep
        The edit history, undone edits included.
    position : int
        How many of ``steps`` are in effect.
    lock : threading.Lock
        Held by the server while a request reads or edits the session.
    preview_cache : ((base_version, revision, step), bytes) or None
        The page's reduced label map as served (:mod:`petseg.review.app`).
    index : LesionIndex
        Bounding box, statistics and SUVmax voxel of each lesion of ``labels``; built
        when the session is made and kept up to date by every edit.
    """

    case: CaseData
    labels: NDArray[np.int32]
    base_version: int
    started_utc: str = field(default_factory=utc_now)
    revision: int = 0
    steps: list[EditStep] = field(default_factory=list)
    position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the page's reduced label map (app.py): ((base_version, revision, step), NIfTI bytes)
    preview_cache: tuple[tuple[int, int, int], bytes] | None = None
    index: LesionIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = LesionIndex(self.case.suv, self.case.geometry)
        self.index.rebuild(self.labels)

    @classmethod
    def open(cls, case: CaseData) -> CaseSession:
        """Start a session on the latest saved version of ``case``.

        Parameters
        ----------
        case : CaseData
            Read by :meth:`petseg.review.cases.CaseData.load`.

        Returns
        -------
        CaseSession
        """
        base = latest_version(case.folder)
        return cls(case=case, labels=version_labels(case, base), base_version=base)

    def restart_clock(self) -> None:
        """Count the session's wall time from now (for a session read ahead of its use)."""
        self.started_utc = utc_now()

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
        return self.index.rows()

    def removed(self) -> list[dict[str, Any]]:
        """The components removed as physiological uptake, each with ``restored`` (by an
        edit in effect) and ``max_voxel_kji`` (its SUVmax voxel, where the page jumps)."""
        if self.case.removed is None:
            return []
        restored = {e["removed_label"] for e in self.edits if e["op"] == "restore"}
        rows = []
        for label, row in sorted(self.case.removed_components().items()):
            box = removed_box(self.case.removed, label)
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

    def state(self, change: Change | None = None) -> dict[str, Any]:
        """JSON-ready state for the page; ``patch`` lists the voxels changed by ``change``.

        Parameters
        ----------
        change : Change, optional
            The edit just made.

        Returns
        -------
        dict
        """
        out: dict[str, Any] = {
            "case_id": self.case.case_id,
            "revision": self.revision,
            "base_version": version_name(self.base_version) if self.base_version else "original",
            "base_version_number": self.base_version,
            "lesions": self.lesions(),
            "patient": patient_stats(self.index.stats()).to_dict(),
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
        self.index.update(self.labels, change)

    def _apply(self, record: dict[str, Any], change: Change) -> Change:
        self._set(change)
        del self.steps[self.position :]
        self.steps.append(EditStep(record=record, change=change))
        self.position += 1
        return change

    # --- edits -----------------------------------------------------------------------

    def check_seed(self, seed: Any) -> tuple[int, int, int]:
        """Validate a ``(k, j, i)`` voxel index (422 when outside the volume).

        Parameters
        ----------
        seed : any
            What the request sent.

        Returns
        -------
        (k, j, i) tuple of int
        """
        return check_seed(seed, self.case.geometry.shape)

    def remove(self, label: int) -> Change:
        """Remove lesion ``label`` (Carlsen: false positives removed by their unique label).

        :func:`petseg.lesions.remove_labels` runs on the lesion's bounding box, which
        holds all of its voxels.

        Parameters
        ----------
        label : int
            The lesion to remove.

        Returns
        -------
        Change
        """
        if not isinstance(label, int) or isinstance(label, bool) or label < 1:
            raise BadRequestError(f"label must be a positive integer, got {label!r}")
        if label not in self.index.entries:
            raise UnprocessableError(
                f"lesion label {label} is not in the lesion map "
                f"(labels: {sorted(self.index.entries)})"
            )
        box = self.index.box(label)
        old = self.labels[box].copy()
        try:
            new = remove_labels(old, [label])
        except ValueError as err:
            raise UnprocessableError(str(err)) from err
        change = voxel_change(self.labels.shape, box, old, new)
        return self._apply({"op": "remove", "label": label, "utc": utc_now()}, change)

    def label_at(self, seed: Any) -> int:
        """The lesion label at voxel ``seed`` (0 for background).

        Parameters
        ----------
        seed : (k, j, i) sequence of int
            A voxel clicked on the page.

        Returns
        -------
        int
        """
        k, j, i = self.check_seed(seed)
        return int(self.labels[k, j, i])

    def add(self, seed: Any, method: str, value: float | None = None) -> Change:
        """Add a lesion grown from ``seed`` with :func:`petseg.edit.add_lesion_by_seed`.

        The region is grown on a box around the seed (:func:`petseg.review.edits.grow_region`),
        which gives the same region as on the whole image; the new lesion gets the label
        ``max + 1`` of the whole map, as the library would give it.

        Parameters
        ----------
        seed : (k, j, i) sequence of int
            Voxel inside the missed lesion.
        method : str
            One of :data:`petseg.edit.SEED_METHODS`.
        value : float, optional
            SUV in g/mL (fixed) or fraction of SUVmax; None for the method's default.

        Returns
        -------
        Change
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
        box, region = grow_region(
            self.labels,
            self.case.suv,
            self.case.geometry,
            index,
            method=method,
            value=None if value is None else float(value),
            reference=reference,
            connectivity=self.case.connectivity,
        )
        old = self.labels[box]
        new_label = self.index.next_label()
        target = np.where(region, new_label, old).astype(np.int32)
        change = voxel_change(self.labels.shape, box, old, target)
        record = {
            "op": "add",
            "seed_kji": list(index),
            "method": method,
            "value": value,
            "new_label": new_label,
            "voxels": int(change.index.size),
            "utc": utc_now(),
        }
        return self._apply(record, change)

    def restore(self, removed_label: int) -> Change:
        """Give back a component removed as physiological uptake, as a new lesion.

        Its voxels (``removed.nii.gz == removed_label``) not already in a lesion get the
        label ``max + 1``; the edit records the organ it had been removed from.

        Parameters
        ----------
        removed_label : int
            Label in ``removed.nii.gz``.

        Returns
        -------
        Change
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
        box = removed_box(self.case.removed, removed_label)
        old = self.labels[box].copy()
        region = (self.case.removed[box] == removed_label) & (old == 0)
        if not region.any():
            raise UnprocessableError(f"removed component {removed_label} is already restored")
        new_label = self.index.next_label()
        target = np.where(region, new_label, old).astype(np.int32)
        change = voxel_change(self.labels.shape, box, old, target)
        record = {
            "op": "restore",
            "removed_label": removed_label,
            "organ": rows[removed_label].get("organ"),
            "new_label": new_label,
            "voxels": int(change.index.size),
            "utc": utc_now(),
        }
        return self._apply(record, change)

    def undo(self) -> Change:
        """Take back the last edit in effect (422 when there is none)."""
        if self.position == 0:
            raise UnprocessableError("nothing to undo")
        self.position -= 1
        step = self.steps[self.position].change
        change = Change(index=step.index, before=step.after, after=step.before)
        self._set(change)
        return change

    def redo(self) -> Change:
        """Apply again the next undone edit (422 when there is none)."""
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
        latest = latest_version(self.case.folder)
        edits = self.edits
        self.labels = version_labels(self.case, latest)
        self.index.rebuild(self.labels)
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
                notes.append(f"{edit['op']} skipped on {version_name(latest)}: {err}")
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

        Parameters
        ----------
        base_version : int
            The version the page's edits start from (0: the segmentation itself).
        reviewer : str
            The reviewer's name.
        score : int or None
            Carlsen Table 1 score (1-5), None when not scored.
        comment : str
            Free text saved with the version.
        active_seconds : float
            Active correction time counted by the page, in s; capped at the wall time since
            the session started.

        Returns
        -------
        dict
            ``version`` (``vNNN``) and ``path`` of the saved version.
        """
        check_review_fields(
            base_version=base_version,
            reviewer=reviewer,
            score=score,
            comment=comment,
            active_seconds=active_seconds,
        )
        started = _dt.datetime.fromisoformat(self.started_utc)
        elapsed = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
        folder = self.case.folder
        with case_lock(folder):
            latest = self._check_latest(base_version)
            number = max(saved_versions(folder), default=0) + 1
            review = self._review_block(
                number,
                latest,
                reviewer=reviewer.strip(),
                score=score,
                comment=comment,
                active_seconds=round(min(float(active_seconds), elapsed + 1.0), 1),
            )
            target = write_version(
                folder,
                number,
                self.labels,
                self.case.suv,
                self.case.geometry,
                self.case.report,
                review,
            )
            self.base_version = number
            self.steps, self.position = [], 0
            self.restart_clock()
        return {"version": version_name(number), "path": str(target)}

    def _check_latest(self, base_version: int) -> int:
        """The latest saved version, when the page's edits start from it (else 409)."""
        folder = self.case.folder
        latest = latest_version(folder)
        if result_id(self.case.report) != current_result(folder):
            raise VersionConflictError(
                f"case {self.case.case_id!r} was segmented again since this page opened; "
                "reload the page to review the new segmentation"
            )
        if base_version != latest or self.base_version != latest:
            raise VersionConflictError(
                f"case {self.case.case_id!r} was saved as {version_name(latest)} since this "
                f"page opened {version_name(base_version) if base_version else 'the original'}; "
                "rebase to replay your edits on it, then save again"
            )
        return latest

    def _review_block(
        self,
        number: int,
        latest: int,
        *,
        reviewer: str,
        score: int | None,
        comment: str,
        active_seconds: float,
    ) -> dict[str, Any]:
        """The ``review`` block of saved version ``number`` (parent ``latest``)."""
        return {
            "version": version_name(number),
            "parent_version": version_name(latest) if latest else "original",
            "reviewer": reviewer,
            "started_utc": self.started_utc,
            "saved_utc": utc_now(),
            "active_seconds": active_seconds,
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
        }

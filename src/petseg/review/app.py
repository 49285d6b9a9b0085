"""The review's state (cases read, sessions, derived images) and the API's operations,
independent of HTTP (:mod:`petseg.review.routes` serves them).

At most :data:`MAX_SESSIONS` sessions (tabs) are kept. Opening one more drops the least
recently used session *without unsaved edits*; when every session holds unsaved edits the
open is refused (409), so no edit is ever dropped.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.edit import SEED_METHODS
from petseg.jsonable import to_jsonable
from petseg.review.cases import CaseData, Cohort
from petseg.review.edits import Change
from petseg.review.errors import HttpError, UnprocessableError, VersionConflictError
from petseg.review.export import export_saved_version
from petseg.review.http_io import only_keys
from petseg.review.images import (
    case_meta,
    coronal_mip_bytes,
    labels_nifti_bytes,
    volume_nifti_bytes,
)
from petseg.review.preview import PREVIEW_VOXELS, preview_affine, preview_step, preview_volume
from petseg.review.scoring import IDLE_PAUSE_S, SCORE_FOOTNOTE, SCORE_TABLE, summarise_reviews
from petseg.review.session import CaseSession
from petseg.review.versions import current_result, latest_version, result_id

__all__ = ["MAX_CASES", "MAX_PATCH_VOXELS", "MAX_SESSIONS", "ReviewApp"]

#: Sessions kept in memory (one per open tab); see the module docstring for eviction.
MAX_SESSIONS = 8
MAX_CASES = 3
"""Cases whose images stay in memory (the open one, the next one, one more)."""
#: A patch larger than this many voxels is not sent; the page reloads the label file.
MAX_PATCH_VOXELS = 500_000


@dataclass
class _SessionEntry:
    session: CaseSession
    last_used: float = field(default_factory=time.monotonic)


class ReviewApp:
    """The review's state (cases read, sessions, derived images) and the API's operations,
    independent of HTTP (:func:`petseg.review.routes.create_asgi_app` serves them).

    Parameters
    ----------
    root : str or Path
        Case output folder or cohort folder.
    token : str, optional
        Access token required on ``/api/`` requests.
    preview_voxels : int
        Studies larger than this are first served reduced (0: never).
    """

    def __init__(
        self, root: str | Path, *, token: str | None = None, preview_voxels: int = PREVIEW_VOXELS
    ) -> None:
        self.cohort = Cohort(root)
        self.token = token
        self.preview_voxels = preview_voxels
        self._cases: OrderedDict[str, CaseData] = OrderedDict()
        # coronal MIP and preview images per (case, "mip" | "pet" | "ct"), computed once,
        # in the background from the moment a case is opened
        self._derived: dict[tuple[str, str], Future[bytes]] = {}
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="petseg-review")
        self._sessions: dict[str, _SessionEntry] = {}
        self._prepared: dict[str, Future[CaseSession]] = {}  # one unused session per preload
        self._lock = threading.Lock()

    # --- cases, sessions and derived images ------------------------------------------

    def case(self, case_id: str) -> CaseData:
        """The case's images, read once; the least recently used beyond ``MAX_CASES`` are
        dropped (with their MIP and previews; open sessions keep their own reference).

        Parameters
        ----------
        case_id : str
            A case of the cohort.

        Returns
        -------
        CaseData
        """
        folder = self.cohort.case_dir(case_id)
        with self._lock:
            cached = self._cases.get(case_id)
            if cached is not None and result_id(cached.report) != current_result(folder):
                self._forget(case_id)  # segmented again since it was read
            if case_id not in self._cases:
                self._cases[case_id] = CaseData.load(folder, case_id)
            self._cases.move_to_end(case_id)
            while len(self._cases) > MAX_CASES:
                self._forget(next(iter(self._cases)))
            return self._cases[case_id]

    def _forget(self, case_id: str) -> None:
        """Drop a case's images, MIP, previews and prepared session (hold ``_lock``)."""
        self._cases.pop(case_id, None)
        self._prepared.pop(case_id, None)
        for key in [k for k in self._derived if k[0] == case_id]:
            del self._derived[key]

    def session(self, sid: str) -> CaseSession:
        """The open session ``sid`` (404 when unknown or dropped), marked as just used.

        Parameters
        ----------
        sid : str
            Session id given by :meth:`open_session`.

        Returns
        -------
        CaseSession
        """
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None:
                raise HttpError(404, f"unknown or expired review session {sid!r}; reload the page")
            entry.last_used = time.monotonic()
            return entry.session

    def open_session(self, case_id: str) -> tuple[str, CaseSession]:
        """Start a review session on the case's latest version; then read the next case.

        Parameters
        ----------
        case_id : str
            The case to review.

        Returns
        -------
        sid : str
        session : CaseSession
        """
        with self._lock:
            prepared = self._prepared.pop(case_id, None)
        session = None
        if prepared is not None:
            try:
                candidate = prepared.result()  # a preload in flight is waited for, not repeated
            except Exception:  # the case is read again below, which reports the error
                candidate = None
            if candidate is not None and candidate.base_version == latest_version(
                candidate.case.folder
            ):
                session = candidate  # prepared by preload(), never handed out before
                session.restart_clock()
        case = self._start_derived(case_id)
        if session is None:
            session = CaseSession.open(case)
        sid = secrets.token_urlsafe(12)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                idle = [k for k, e in self._sessions.items() if not e.session.unsaved]
                if not idle:
                    cases = sorted({e.session.case.case_id for e in self._sessions.values()})
                    raise VersionConflictError(
                        f"{len(self._sessions)} open review tabs hold unsaved edits (cases "
                        f"{', '.join(cases)}); save or close one of them first"
                    )
                del self._sessions[min(idle, key=lambda k: self._sessions[k].last_used)]
            self._sessions[sid] = _SessionEntry(session)
        following = self.cohort.case_ids()
        following = following[following.index(case_id) + 1 :] if case_id in following else []
        if following:
            self.preload(following[0])  # a physician goes through a cohort in order
        return sid, session

    def close_session(self, sid: str) -> None:
        """End a session (its tab closed); unknown ids are ignored.

        Parameters
        ----------
        sid : str
            The session of the closed tab.
        """
        with self._lock:
            self._sessions.pop(sid, None)

    def preload(self, case_id: str) -> Future[CaseSession]:
        """Read a case, start its MIP and previews and prepare one session, on a worker.

        ``petseg review`` preloads the first case before the browser opens, and opening a
        case preloads the next one in the list, so the page's first paint does not wait
        for the images to be read. A case that fails to load here reports its error when
        the page opens it.

        Parameters
        ----------
        case_id : str
            The case to read ahead.

        Returns
        -------
        Future of CaseSession
        """
        with self._lock:
            future = self._prepared.get(case_id)
            if future is None:
                future = self._workers.submit(self._prepare, case_id)
                self._prepared[case_id] = future
            return future

    def labels_preview_bytes(self, session: CaseSession) -> bytes:
        """The session's label map reduced like the preview images, as served (cached).

        Parameters
        ----------
        session : CaseSession
            Its current lesion map is reduced.

        Returns
        -------
        bytes
            Gzipped NIfTI.
        """
        step = self.preview_step(session.case)
        with session.lock:
            key = (session.base_version, session.revision, step)
            if session.preview_cache is None or session.preview_cache[0] != key:
                reduced = np.asarray(preview_volume(session.labels, step, "max"), np.int32)
                data = labels_nifti_bytes(
                    reduced, preview_affine(session.case.geometry.affine, step)
                )
                session.preview_cache = (key, data)
            return session.preview_cache[1]

    def _prepare(self, case_id: str) -> CaseSession:
        session = CaseSession.open(self._start_derived(case_id))
        if self.preview_step(session.case) > 1:
            self.labels_preview_bytes(session)
        return session

    def preload_first_case(self) -> Future[CaseSession] | None:
        """:meth:`preload` the case the page opens first (None for an empty cohort)."""
        case_ids = self.cohort.case_ids()
        return self.preload(case_ids[0]) if case_ids else None

    def _start_derived(self, case_id: str) -> CaseData:
        """Load a case and start what the page asks for right after opening it."""
        case = self.case(case_id)
        self._derived_future(case_id, "mip")
        if self.preview_step(case) > 1:
            for image in ("pet", "ct") if case.has_ct else ("pet",):
                self._derived_future(case_id, image)
        return case

    def preview_step(self, case: CaseData) -> int:
        """Reduction factor of the case's first view; 1 (none) when ``preview_voxels`` is 0.

        Parameters
        ----------
        case : CaseData
            Its PET shape decides the factor.

        Returns
        -------
        int
        """
        if self.preview_voxels == 0:
            return 1
        return preview_step(case.geometry.shape, self.preview_voxels)

    def derived(self, case_id: str, what: str) -> bytes:
        """The case's coronal MIP (``"mip"``) or reduced ``"pet"`` / ``"ct"`` image, as served.

        Parameters
        ----------
        case_id : str
            The case.
        what : {"mip", "pet", "ct"}
            Which derived image.

        Returns
        -------
        bytes
        """
        return self._derived_future(case_id, what).result()

    def _derived_future(self, case_id: str, what: str) -> Future[bytes]:
        """Computed once per case on a worker thread; the first call starts it."""
        with self._lock:
            future = self._derived.get((case_id, what))
            if future is None:
                future = self._workers.submit(self._compute_derived, case_id, what)
                self._derived[(case_id, what)] = future
            return future

    def _compute_derived(self, case_id: str, what: str) -> bytes:
        case = self.case(case_id)
        if what == "mip":
            return coronal_mip_bytes(case.suv)
        step = self.preview_step(case)
        if what == "pet":
            volume = preview_volume(case.suv, step, "max")
        else:
            from petseg.io.nifti import read_nifti

            ct, _ = read_nifti(case.folder / "ct.nii.gz")
            volume = preview_volume(np.asarray(ct, dtype=np.float32), step, "mean")
        return volume_nifti_bytes(volume, preview_affine(case.geometry.affine, step))

    def case_meta(self, case: CaseData) -> dict[str, Any]:
        """The page's display metadata of ``case`` (:func:`petseg.review.images.case_meta`).

        Parameters
        ----------
        case : CaseData
            The case opened.

        Returns
        -------
        dict
        """
        return case_meta(case, self.preview_step(case))

    def cases_listing(self) -> dict[str, Any]:
        """``GET /api/cases``: every case's status, the cohort summary, Table 1, seed methods."""
        rows = self.cohort.status()
        return {
            "petseg_version": __version__,
            "single": self.cohort.single,
            "cases": rows,
            "summary": summarise_reviews(rows),
            "table1": [
                {"score": s, "rating": name, "criteria": text}
                for s, (name, text) in SCORE_TABLE.items()
            ],
            "table1_footnote": SCORE_FOOTNOTE,
            "seed_methods": list(SEED_METHODS),
            "idle_pause_s": IDLE_PAUSE_S,
        }

    # --- the API's operations (called by create_asgi_app on a worker thread) ----------

    def open_case(self, case_id: str) -> dict[str, Any]:
        """``POST /api/case/<id>/open``: a new session with the case's metadata and state.

        Parameters
        ----------
        case_id : str
            From the URL.

        Returns
        -------
        dict
            ``session``, ``meta`` and the session's state.
        """
        sid, session = self.open_session(case_id)
        return {"session": sid, "meta": self.case_meta(session.case), **session.state()}

    def case_file(self, case_id: str, name: str) -> bytes:
        """``GET /api/case/<id>/<name>``: an image, its preview, or the coronal MIP.

        Parameters
        ----------
        case_id : str
            From the URL.
        name : str
            ``pet.nii.gz``, ``ct.nii.gz``, their ``.preview`` forms, ``removed.nii.gz`` or ``mip.bin``.

        Returns
        -------
        bytes
        """
        folder = self.cohort.case_dir(case_id)
        if name in ("pet.nii.gz", "ct.nii.gz"):
            file = folder / ("pet_suv.nii.gz" if name == "pet.nii.gz" else "ct.nii.gz")
            if not file.is_file():
                raise HttpError(404, f"case {case_id!r} has no {file.name}")
            return file.read_bytes()
        if name in ("pet.preview.nii.gz", "ct.preview.nii.gz"):
            image = name.split(".")[0]
            if image == "ct" and not (folder / "ct.nii.gz").is_file():
                raise HttpError(404, f"case {case_id!r} has no ct.nii.gz")
            return self.derived(case_id, image)
        if name == "removed.nii.gz":
            case = self.case(case_id)
            if case.removed is None:
                raise HttpError(404, f"case {case_id!r} has no removed.nii.gz")
            return labels_nifti_bytes(case.removed, case.geometry.affine)
        if name == "uncertainty.nii.gz":
            file = folder / name
            if not file.is_file():
                raise HttpError(
                    404, f"case {case_id!r} has no uncertainty.nii.gz (not an ensemble)"
                )
            return file.read_bytes()
        if name == "mip.bin":
            return self.derived(case_id, "mip")
        raise HttpError(404, f"no case endpoint {name!r}")

    def session_file(self, sid: str, name: str) -> bytes:
        """``GET /api/session/<sid>/labels[.preview].nii.gz``.

        Parameters
        ----------
        sid : str
            From the URL.
        name : str
            ``labels.nii.gz`` or ``labels.preview.nii.gz``.

        Returns
        -------
        bytes
        """
        session = self.session(sid)
        if name == "labels.nii.gz":
            with session.lock:
                return labels_nifti_bytes(session.labels, session.case.geometry.affine)
        if name == "labels.preview.nii.gz":
            return self.labels_preview_bytes(session)
        raise HttpError(404, f"no session endpoint GET {name!r}")

    def session_state(self, sid: str) -> dict[str, Any]:
        """``GET /api/session/<sid>/state``.

        Parameters
        ----------
        sid : str
            From the URL.

        Returns
        -------
        dict
        """
        session = self.session(sid)
        with session.lock:
            return session.state()

    def session_action(self, sid: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/session/<sid>/<action>`` with the request's JSON object.

        Parameters
        ----------
        sid : str
            From the URL.
        action : str
            remove, add, restore, undo, redo, rebase, save, export or close.
        payload : dict
            The request's JSON object, its fields checked per action.

        Returns
        -------
        dict
            The new state (with ``patch`` or ``reload``), or what the action produced.
        """
        if action == "close":
            only_keys(payload, set())
            self.close_session(sid)
            return {"closed": sid}
        session = self.session(sid)
        with session.lock:
            if action == "remove":
                only_keys(payload, {"label", "seed"})
                label: Any  # from label_at, or the client's value, which remove() validates
                if "seed" in payload:
                    label = session.label_at(payload["seed"])
                    if label == 0:
                        raise UnprocessableError(
                            f"no lesion at voxel {payload['seed']}; click inside a coloured lesion"
                        )
                else:
                    label = payload.get("label")
                return _with_patch(session, session.remove(label))
            if action == "add":
                only_keys(payload, {"seed", "method", "value"})
                change = session.add(
                    payload.get("seed"), payload.get("method", ""), payload.get("value")
                )
                return _with_patch(session, change)
            if action == "restore":
                only_keys(payload, {"removed_label"})
                removed_label: Any = payload.get("removed_label")  # restore() validates it
                return _with_patch(session, session.restore(removed_label))
            if action == "undo":
                only_keys(payload, set())
                return _with_patch(session, session.undo())
            if action == "redo":
                only_keys(payload, set())
                return _with_patch(session, session.redo())
            if action == "rebase":
                only_keys(payload, set())
                notes = session.rebase()
                return {**session.state(), "notes": notes, "reload": True}
            if action == "save":
                only_keys(
                    payload, {"base_version", "reviewer", "score", "comment", "active_seconds"}
                )
                saved = session.save(
                    base_version=payload.get("base_version"),  # type: ignore[arg-type]
                    reviewer=payload.get("reviewer", ""),
                    score=payload.get("score"),
                    comment=payload.get("comment", ""),
                    active_seconds=payload.get("active_seconds", 0.0),
                )
                return {**session.state(), "saved": saved}
            if action == "export":
                only_keys(payload, {"format"})
                return export_saved_version(session, payload.get("format"))
        raise HttpError(404, f"no session endpoint POST {action!r}")


def _with_patch(session: CaseSession, change: Change) -> dict[str, Any]:
    small = change.index.size <= MAX_PATCH_VOXELS
    state = to_jsonable(session.state())
    if small:  # plain lists of ints already: not walked by to_jsonable
        state["patch"] = {"index": change.index.tolist(), "value": change.after.tolist()}
    else:
        state["reload"] = True
    return dict(state)

"""Local web server of the review page: a Starlette application served by uvicorn.

Security (see ``docs/review.md``):

* The server binds 127.0.0.1 by default. Binding another address needs an access token,
  which every ``/api/`` request must carry (header ``X-Petseg-Token`` or query
  ``token=``), and prints a warning.
* On a loopback server, requests whose ``Host`` header is not a loopback name are refused
  (403), so a web page elsewhere cannot reach it by DNS rebinding.
* A request carrying an ``Origin`` other than the server's own is refused (403), and every
  ``POST`` must carry the header ``X-Petseg-Request`` (which the page sends and which a
  cross-origin page cannot send without the server's consent): another site open in the
  browser can neither open cases nor edit.

API (JSON unless noted). Every answer to a request, including a malformed one, is JSON
``{"error": message}`` with a 4xx/5xx status when it fails, and a failed request writes
nothing:

=======  ==========================================  ===========================================
GET      ``/api/cases``                              case list with status, cohort summary,
                                                     Table 1, seed methods
POST     ``/api/case/<id>/open``                     start a session on the latest version
GET      ``/api/case/<id>/pet.nii.gz``, ``ct.nii.gz``  the case's images (served as files)
GET      ``/api/case/<id>/pet.preview.nii.gz``,      the images reduced for the first view
         ``ct.preview.nii.gz``                       (:mod:`petseg.review.preview`; factor
                                                     ``meta.preview_step``)
GET      ``/api/case/<id>/mip.bin``                  coronal MIP: float32 (Z, X) SUV maxima then
                                                     int16 (Z, X) row index j of each maximum
GET      ``/api/case/<id>/removed.nii.gz``           physiological uptake the organ map removed
GET      ``/api/session/<sid>/labels.nii.gz``        current lesion map of the session (NIfTI)
GET      ``/api/session/<sid>/labels.preview.nii.gz``  the same, reduced like the images
GET      ``/api/session/<sid>/state``                lesion list, edits, revision, unsaved
POST     ``/api/session/<sid>/remove``               ``{"label": n}`` or ``{"seed": [k, j, i]}``
POST     ``/api/session/<sid>/add``                  ``{"seed": [k, j, i], "method", "value"}``
POST     ``/api/session/<sid>/restore``              ``{"removed_label": n}``: a removed
                                                     component back as a lesion
POST     ``/api/session/<sid>/undo``, ``redo``       one step back / forward
POST     ``/api/session/<sid>/rebase``               replay the edits on the latest saved version
POST     ``/api/session/<sid>/save``                 ``{"base_version", "reviewer", "score",
                                                     "comment", "active_seconds"}``; 409 on
                                                     a version conflict
POST     ``/api/session/<sid>/export``               ``{"format": "rtstruct" | "seg"}`` of the
                                                     saved version (DICOM cases only)
POST     ``/api/session/<sid>/close``                end the session (the page leaves)
=======  ==========================================  ===========================================

Edits answer with the new state and a ``patch`` (flat C-order indices into the
``(Z, Y, X)`` map and their new labels), which the page applies to its overlay in
place; the label file is only fetched again when the page needs a full reload.

At most :data:`MAX_SESSIONS` sessions (tabs) are kept. Opening one more drops the least
recently used session *without unsaved edits*; when every session holds unsaved edits the
open is refused (409), so no edit is ever dropped.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg import __version__
from petseg.jsonable import to_jsonable
from petseg.review.preview import PREVIEW_VOXELS, preview_affine, preview_step, preview_volume
from petseg.review.session import (
    IDLE_PAUSE_S,
    SCORE_FOOTNOTE,
    SCORE_TABLE,
    BadRequestError,
    CaseData,
    CaseSession,
    Cohort,
    ReviewError,
    UnprocessableError,
    VersionConflictError,
    case_status,
    current_result,
    result_id,
    summarise_reviews,
)
from petseg.study import Geometry

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "REQUEST_HEADER",
    "ReviewApp",
    "ReviewServer",
    "create_asgi_app",
    "is_loopback",
    "make_server",
    "serve",
]

#: Largest accepted request body (bytes); larger requests get 413 and are not read.
MAX_BODY_BYTES = 1_000_000
#: A request body must arrive within this many seconds (else 408).
BODY_TIMEOUT_S = 10.0
#: A connection that sends nothing (before its first request or between requests) is
#: closed after this many seconds.
IDLE_TIMEOUT_S = 5
#: Header every POST must carry (any value): a cross-origin page cannot send it.
REQUEST_HEADER = "X-Petseg-Request"
#: Sessions kept in memory (one per open tab); see the module docstring for eviction.
MAX_SESSIONS = 8
PRELOAD_WAIT_S = 10.0
"""How long ``petseg review`` lets the first case be read before it opens the browser."""
MAX_CASES = 3
"""Cases whose images stay in memory (the open one, the next one, one more)."""
#: A patch larger than this many voxels is not sent; the page reloads the label file.
MAX_PATCH_VOXELS = 500_000
#: Headers on every answer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "worker-src 'self' blob:; script-src 'self' 'wasm-unsafe-eval'"
    ),
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def volume_nifti_bytes(volume: NDArray[np.generic], affine_lps_kji: NDArray[np.float64]) -> bytes:
    """Gzipped NIfTI-1 (fast compression) of a ``(Z, Y, X)`` volume, for the page only.

    The voxel order on disk is ``i`` fastest, so flat index ``n`` in the file is flat
    index ``n`` of the C-ordered ``(Z, Y, X)`` array — the page patches label maps in
    place. The affine conversion is :func:`petseg.io.nifti.lps_kji_to_ras_ijk`, the one
    used for the case's PET file.
    """
    import nibabel as nib

    from petseg.io.nifti import lps_kji_to_ras_ijk

    affine = lps_kji_to_ras_ijk(affine_lps_kji)
    img = nib.Nifti1Image(np.asarray(volume).transpose(2, 1, 0), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_slope_inter(1.0, 0.0)
    return gzip.compress(img.to_bytes(), compresslevel=1)


def labels_nifti_bytes(labels: NDArray[np.integer], affine_lps_kji: NDArray[np.float64]) -> bytes:
    """:func:`volume_nifti_bytes` of a label map in the smallest unsigned type that fits."""
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int32
    return volume_nifti_bytes(np.asarray(labels, dtype=dtype), affine_lps_kji)


def reference_voi(report: dict[str, Any], geometry: Geometry) -> dict[str, Any] | None:
    """The report's reference sphere as the page draws it: centre in voxel indices
    ``(k, j, i)`` and radius in mm; None for a mask VOI or a method without one."""
    reference = report.get("reference")
    parameters = report.get("parameters")
    if not isinstance(reference, dict) or not isinstance(parameters, dict):
        return None  # a method without a reference VOI (or a report petseg did not write)
    automatic = reference.get("automatic")
    if isinstance(automatic, dict):
        centre = geometry.patient_to_index(automatic["centre_mm"])
        radius = float(automatic["radius_mm"])
    elif parameters.get("ref_sphere"):
        a, b, c, radius = (float(v) for v in parameters["ref_sphere"])
        voxel = parameters.get("ref_units") == "voxel"
        centre = np.array([a, b, c]) if voxel else geometry.patient_to_index([a, b, c])
    else:
        return None
    return {
        "organ": reference.get("organ"),
        "automatic": bool(automatic),
        "centre_kji": [round(float(v), 2) for v in centre],
        "radius_mm": radius,
    }


class HttpError(Exception):
    """A request refused by the HTTP layer; ``status`` is the status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _SessionEntry:
    session: CaseSession
    last_used: float = field(default_factory=time.monotonic)


class ReviewApp:
    """The review's state (cases read, sessions, derived images) and the API's operations,
    independent of HTTP (:func:`create_asgi_app` serves them).

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

    # --- helpers ---------------------------------------------------------------------

    def case(self, case_id: str) -> CaseData:
        """The case's images, read once; the least recently used beyond ``MAX_CASES`` are
        dropped (with their MIP and previews; open sessions keep their own reference)."""
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
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is None:
                raise HttpError(404, f"unknown or expired review session {sid!r}; reload the page")
            entry.last_used = time.monotonic()
            return entry.session

    def open_session(self, case_id: str) -> tuple[str, CaseSession]:
        """Start a review session on the case's latest version; then read the next case."""
        with self._lock:
            prepared = self._prepared.pop(case_id, None)
        session = None
        if prepared is not None:
            try:
                candidate = prepared.result()  # a preload in flight is waited for, not repeated
            except Exception:  # the case is read again below, which reports the error
                candidate = None
            if candidate is not None and candidate.base_version == CaseSession.latest_version(
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
        """End a session (its tab closed); unknown ids are ignored."""
        with self._lock:
            self._sessions.pop(sid, None)

    def preload(self, case_id: str) -> Future[CaseSession]:
        """Read a case, start its MIP and previews and prepare one session, on a worker.

        ``petseg review`` preloads the first case before the browser opens, and opening a
        case preloads the next one in the list, so the page's first paint does not wait
        for the images to be read. A case that fails to load here reports its error when
        the page opens it.
        """
        with self._lock:
            future = self._prepared.get(case_id)
            if future is None:
                future = self._workers.submit(self._prepare, case_id)
                self._prepared[case_id] = future
            return future

    def labels_preview_bytes(self, session: CaseSession) -> bytes:
        """The session's label map reduced like the preview images, as served (cached)."""
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
        """Reduction factor of the case's first view; 1 (none) when ``preview_voxels`` is 0."""
        if self.preview_voxels == 0:
            return 1
        return preview_step(case.geometry.shape, self.preview_voxels)

    def derived(self, case_id: str, what: str) -> bytes:
        """The case's coronal MIP (``"mip"``) or reduced ``"pet"`` / ``"ct"`` image, as served."""
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
        if what == "mip":  # float32 (Z, X) SUV maxima along j, then int16 (Z, X) argmax j
            mip = case.suv.max(axis=1).astype(np.float32)
            depth = case.suv.argmax(axis=1).astype(np.int16)
            return mip.tobytes() + depth.tobytes()
        step = self.preview_step(case)
        if what == "pet":
            volume = preview_volume(case.suv, step, "max")
        else:
            from petseg.io.nifti import read_nifti

            ct, _ = read_nifti(case.folder / "ct.nii.gz")
            volume = preview_volume(np.asarray(ct, dtype=np.float32), step, "mean")
        return volume_nifti_bytes(volume, preview_affine(case.geometry.affine, step))

    def case_meta(self, case: CaseData) -> dict[str, Any]:
        suv = case.suv
        sample = suv.ravel()[:: max(1, suv.size // 2_000_000)]  # display window: a sample will do
        positive = sample[sample > 0]
        high = float(np.percentile(positive, 99.5)) if positive.size else 1.0
        affine = case.geometry.affine
        return {
            "case_id": case.case_id,
            "shape_zyx": list(case.geometry.shape),
            "spacing_mm_zyx": list(case.geometry.spacing),
            "has_ct": case.has_ct,
            "suv_max": float(suv.max()),
            "suv_window": [0.0, max(5.0, round(high, 1))],
            "reference": case.report.get("reference"),
            "reference_voi": reference_voi(case.report, case.geometry),
            "threshold_suv": case.report.get("threshold_suv"),
            "method": case.report.get("method"),
            "synthetic": bool(case.report.get("synthetic", False)),
            "preview_step": self.preview_step(case),
            "dicom": bool((case.report.get("inputs") or {}).get("dicom")),
            "removed_count": len(case.removed_components()) if case.removed is not None else 0,
            # saved versions made on an earlier segmentation of the case (kept, not shown)
            "older_result_versions": case_status(case.folder, case.case_id)[
                "older_result_versions"
            ],
            # coronal MIP display: superior at the top, patient's right on the viewer's left
            "mip": {
                "flip_rows": bool(affine[2, 0] > 0),
                "flip_cols": bool(affine[0, 2] < 0),
                "aspect": case.geometry.spacing[0] / case.geometry.spacing[2],
            },
        }

    def cases_listing(self) -> dict[str, Any]:
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
            "seed_methods": _seed_methods(),
            "idle_pause_s": IDLE_PAUSE_S,
        }

    # --- the API's operations (called by create_asgi_app on a worker thread) ----------

    def open_case(self, case_id: str) -> dict[str, Any]:
        """``POST /api/case/<id>/open``: a new session with the case's metadata and state."""
        sid, session = self.open_session(case_id)
        return {"session": sid, "meta": self.case_meta(session.case), **session.state()}

    def case_file(self, case_id: str, name: str) -> bytes:
        """``GET /api/case/<id>/<name>``: an image, its preview, or the coronal MIP."""
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
        if name == "mip.bin":
            return self.derived(case_id, "mip")
        raise HttpError(404, f"no case endpoint {name!r}")

    def session_file(self, sid: str, name: str) -> bytes:
        """``GET /api/session/<sid>/labels[.preview].nii.gz``."""
        session = self.session(sid)
        if name == "labels.nii.gz":
            with session.lock:
                return labels_nifti_bytes(session.labels, session.case.geometry.affine)
        if name == "labels.preview.nii.gz":
            return self.labels_preview_bytes(session)
        raise HttpError(404, f"no session endpoint GET {name!r}")

    def session_state(self, sid: str) -> dict[str, Any]:
        """``GET /api/session/<sid>/state``."""
        session = self.session(sid)
        with session.lock:
            return session.state()

    def session_action(self, sid: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/session/<sid>/<action>`` with the request's JSON object."""
        if action == "close":
            _only_keys(payload, set())
            self.close_session(sid)
            return {"closed": sid}
        session = self.session(sid)
        with session.lock:
            if action == "remove":
                _only_keys(payload, {"label", "seed"})
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
                _only_keys(payload, {"seed", "method", "value"})
                change = session.add(
                    payload.get("seed"), payload.get("method", ""), payload.get("value")
                )
                return _with_patch(session, change)
            if action == "restore":
                _only_keys(payload, {"removed_label"})
                removed_label: Any = payload.get("removed_label")  # restore() validates it
                return _with_patch(session, session.restore(removed_label))
            if action == "undo":
                _only_keys(payload, set())
                return _with_patch(session, session.undo())
            if action == "redo":
                _only_keys(payload, set())
                return _with_patch(session, session.redo())
            if action == "rebase":
                _only_keys(payload, set())
                notes = session.rebase()
                return {**session.state(), "notes": notes, "reload": True}
            if action == "save":
                _only_keys(
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
                _only_keys(payload, {"format"})
                return export_saved_version(session, payload.get("format"))
        raise HttpError(404, f"no session endpoint POST {action!r}")


def _seed_methods() -> list[str]:
    from petseg.edit import SEED_METHODS

    return list(SEED_METHODS)


def _parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequestError(f"request body is not valid JSON: {err}") from err
    except RecursionError:
        raise BadRequestError("request body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequestError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _only_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise BadRequestError(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def _with_patch(session: CaseSession, change: Any) -> dict[str, Any]:
    small = change.index.size <= MAX_PATCH_VOXELS
    state = to_jsonable(session.state())
    if small:  # plain lists of ints already: not walked by to_jsonable
        state["patch"] = {"index": change.index.tolist(), "value": change.after.tolist()}
    else:
        state["reload"] = True
    return dict(state)


def export_saved_version(session: CaseSession, fmt: Any) -> dict[str, Any]:
    """Export the session's saved version as DICOM RTSTRUCT or SEG beside it.

    Needs a case read from DICOM (``report["inputs"]["dicom"]``) and no unsaved edits. A
    saved version never changes, so exporting it again answers with the files written
    the first time (``"existing": true``).
    """
    from petseg.io.atomic import MARKER, atomic_dir, is_petseg_output
    from petseg.study import Study

    if fmt not in ("rtstruct", "seg"):
        raise BadRequestError(f"format must be 'rtstruct' or 'seg', got {fmt!r}")
    case = session.case
    inputs = case.report.get("inputs") or {}
    if not inputs.get("dicom"):
        raise UnprocessableError(
            "this case was segmented from NIfTI files, so there is no DICOM series to "
            "reference; an RTSTRUCT/SEG needs the PET read from DICOM (petseg segment DICOM_FOLDER)"
        )
    if session.base_version == 0 or session.unsaved:
        raise UnprocessableError(
            "save the corrected version first; the export is of a saved version"
        )
    target = case.folder / "review" / f"v{session.base_version:03d}" / f"export-{fmt}"
    if target.exists():
        if not is_petseg_output(target):
            raise UnprocessableError(f"{target} exists and was not written by petseg; move it away")
        files = sorted(str(p) for p in target.iterdir() if p.name != MARKER)
        return {"written": files, "existing": True}
    from petseg.io.export import export_lesions_for_study

    study = Study(
        pet=case.suv,
        geometry=case.geometry,
        patient_id=str(case.report.get("patient_id", "anonymous")),
        study_id=str(case.report.get("study_id", "")),
        provenance=inputs,
    )
    with atomic_dir(target) as tmp:
        written = export_lesions_for_study(
            tmp, session.labels, study, rtstruct=fmt == "rtstruct", seg=fmt == "seg"
        )
    return {"written": [str(target / Path(p).name) for p in written], "existing": False}


# ----------------------------------------------------------------------------- HTTP


def _json(status: int, data: Any) -> Any:
    from starlette.responses import Response

    body = json.dumps(to_jsonable(data), allow_nan=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Any:
    return _json(status, {"error": message})


async def _read_body(request: Any) -> bytes:
    """The request body: at most :data:`MAX_BODY_BYTES`, within :data:`BODY_TIMEOUT_S`."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > MAX_BODY_BYTES:  # h11 checked it is a number
        raise HttpError(
            413, f"request body of {declared} bytes exceeds the limit of {MAX_BODY_BYTES}"
        )
    chunks: list[bytes] = []

    async def collect() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise HttpError(413, f"request body exceeds the limit of {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise HttpError(
            408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"
        ) from None
    return b"".join(chunks)


def _endpoint(
    operation: Callable[[ReviewApp, dict[str, str], Any], Awaitable[Any]],
) -> Callable[[Any], Awaitable[Any]]:
    """An endpoint whose every failure is a JSON answer: 4xx for what the request (or a
    case file) got wrong, 500 with the traceback written to a log file for the rest."""

    async def endpoint(request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        review: ReviewApp = request.app.state.review
        try:
            result = await operation(review, request.path_params, request)
            if isinstance(result, Response):
                return result
            if isinstance(result, bytes):
                return Response(result, media_type="application/octet-stream")
            return _json(200, result)
        except (HttpError, ReviewError) as err:
            return _error(err.status, str(err))
        except (OSError, ValueError) as err:  # a case file that cannot be read
            return _error(422, " ".join(str(err).split()))
        except Exception as err:
            from petseg.crashlog import write_crash_log

            log = await run_in_threadpool(
                write_crash_log, [f"request: {request.method} {request.url.path}"], err
            )
            return _error(500, f"internal error ({type(err).__name__}); traceback in {log}")

    return endpoint


async def _index(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from importlib import resources

    from starlette.responses import Response

    page = (resources.files("petseg.review") / "static" / "index.html").read_bytes()
    return Response(page, media_type="text/html; charset=utf-8")


async def _cases(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(review.cases_listing)


async def _open(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    _only_keys(_parse_json(await _read_body(request)), set())
    return await run_in_threadpool(review.open_case, params["case_id"])


async def _case_file(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    data = await run_in_threadpool(review.case_file, params["case_id"], params["name"])
    kind = "application/gzip" if params["name"].endswith(".gz") else "application/octet-stream"
    return Response(data, media_type=kind)


async def _session_get(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    if params["action"] == "state":
        return await run_in_threadpool(review.session_state, params["sid"])
    data = await run_in_threadpool(review.session_file, params["sid"], params["action"])
    return Response(data, media_type="application/gzip")


async def _session_post(review: ReviewApp, params: dict[str, str], request: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    payload = _parse_json(await _read_body(request))
    return await run_in_threadpool(review.session_action, params["sid"], params["action"], payload)


class _Guard:
    """ASGI middleware: the host, token, origin and request-header checks of the module
    docstring, and the headers every answer carries."""

    def __init__(self, app: Any, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    def refusal(self, request: Any) -> tuple[int, str] | None:
        host = request.headers.get("host", "")
        if self.loopback and not is_loopback(host.rsplit(":", 1)[0].strip("[]")):
            return 403, "Host header is not a loopback name; open http://127.0.0.1:PORT/"
        if not request.url.path.startswith("/api/"):
            return None
        if self.token is not None:
            given = request.headers.get("x-petseg-token") or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "missing or wrong access token; open the URL printed by `petseg review`"
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return 403, f"cross-origin request from {origin} refused"
        if request.method == "POST" and REQUEST_HEADER.lower() not in request.headers:
            return 403, f"a POST needs the header {REQUEST_HEADER} (the review page sends it)"
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import MutableHeaders
        from starlette.requests import Request

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self.refusal(request)
        if refused is not None:
            await _error(*refused)(scope, receive, send)
            return
        started = time.perf_counter()
        static = request.url.path.startswith("/static/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                if static and message["status"] == 200:
                    headers["Cache-Control"] = "max-age=3600"
                headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_asgi_app(review: ReviewApp, *, loopback: bool = True) -> Any:
    """The Starlette application serving ``review`` (routes in the module docstring).

    Parameters
    ----------
    review : ReviewApp
        The state and operations to serve.
    loopback : bool
        The server binds a loopback address: refuse other ``Host`` headers.
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def http_error(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(404, f"no page or endpoint {request.url.path!r}")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}")
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Any, exc: Exception) -> Any:
        from petseg.crashlog import write_crash_log

        log = write_crash_log([f"request: {request.method} {request.url.path}"], exc)
        return _error(500, f"internal error ({type(exc).__name__}); traceback in {log}")

    routes = [
        Route("/", _endpoint(_index), methods=["GET"]),
        Route("/index.html", _endpoint(_index), methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("petseg.review", "static")]), name="static"),
        Route("/api/cases", _endpoint(_cases), methods=["GET"]),
        Route("/api/case/{case_id}/open", _endpoint(_open), methods=["POST"]),
        Route("/api/case/{case_id}/{name}", _endpoint(_case_file), methods=["GET"]),
        Route("/api/session/{sid}/{action}", _endpoint(_session_get), methods=["GET"]),
        Route("/api/session/{sid}/{action}", _endpoint(_session_post), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, token=review.token, loopback=loopback)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.review = review
    return app


def _http_protocol() -> type:
    """uvicorn's h11 protocol with JSON answers to malformed requests and an idle timeout
    from the moment a connection opens (uvicorn's starts after the first answer)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": f"malformed HTTP request: {msg}"}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return Protocol


class ReviewServer:
    """The review served by uvicorn on a socket bound at construction (so ``port=0``
    is resolved at once); ``serve_forever`` blocks until ``shutdown``.

    Attributes
    ----------
    app : ReviewApp
        What is served.
    """

    def __init__(self, app: ReviewApp, host: str, port: int, *, verbose: bool) -> None:
        import uvicorn

        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (with the
        # default proto 0 it does not, and every keep-alive answer waits ~40 ms for the
        # client's delayed ACK)
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(128)
        config = uvicorn.Config(
            create_asgi_app(app, loopback=is_loopback(host)),
            http=_http_protocol(),
            lifespan="off",
            log_config=None,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            timeout_keep_alive=IDLE_TIMEOUT_S,
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._started = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or Ctrl+C when run in the main thread)."""
        self._started.set()
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (called from another thread) and wait for it."""
        self._server.should_exit = True
        if self._started.is_set():
            self._stopped.wait(timeout=30)

    def server_close(self) -> None:
        """Close the listening socket."""
        self.socket.close()


def make_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    verbose: bool = False,
    preview_voxels: int = PREVIEW_VOXELS,
) -> tuple[ReviewServer, str]:
    """Create (not start) the review server; return it and the URL to open.

    A non-loopback ``host`` requires a token; with ``token=None`` one is generated, and
    the URL names this machine (its host name for ``0.0.0.0`` / ``::``). ``port=0`` picks
    a free port. Studies with more than ``preview_voxels`` voxels are first shown reduced
    (:mod:`petseg.review.preview`).
    """
    if preview_voxels < 0:
        raise ValueError(f"preview_voxels must be 0 (no preview) or positive, got {preview_voxels}")
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    app = ReviewApp(root, token=token, preview_voxels=preview_voxels)
    server = ReviewServer(app, host, port, verbose=verbose)
    return server, _url(host, server.server_address[1], token)


def _url(host: str, port: int, token: str | None) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    open_browser: bool = True,
    verbose: bool = False,
    preview_voxels: int = PREVIEW_VOXELS,
) -> None:
    """Run the review server until interrupted (the ``petseg review`` command)."""
    server, url = make_server(
        root, host=host, port=port, token=token, verbose=verbose, preview_voxels=preview_voxels
    )
    port = server.server_address[1]
    local = _url("127.0.0.1", port, server.app.token)
    if not is_loopback(host):
        print(
            f"petseg review: WARNING: listening on {host}, reachable from other machines on "
            "the network; anyone with the URL (it holds the access token) can read and edit "
            "these studies",
            flush=True,
        )
    print(f"petseg review: serving {server.app.cohort.root} at {url}  (Ctrl+C stops)", flush=True)
    if url != local:
        print(f"petseg review: on this machine: {local}", flush=True)
    first = server.app.preload_first_case()
    if open_browser and first is not None:
        wait([first], timeout=PRELOAD_WAIT_S)  # the page opens on a case already read
    if open_browser:
        import webbrowser

        webbrowser.open(local)
    try:
        server.serve_forever()
    finally:
        server.server_close()

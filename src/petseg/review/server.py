"""Local web server of the review page (standard-library ``http.server``).

The server binds 127.0.0.1 by default. Binding another address needs an access token,
which every ``/api/`` request must carry (header ``X-Petseg-Token`` or query
``token=``). Requests whose ``Host`` header is not the loopback name are refused on a
loopback server, so a web page elsewhere cannot reach it by DNS rebinding.

API (JSON unless noted; errors are ``{"error": message}`` with a 4xx status and write
nothing):

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
GET      ``/api/session/<sid>/labels.nii.gz``        current lesion map of the session (NIfTI)
GET      ``/api/session/<sid>/labels.preview.nii.gz``  the same, reduced like the images
GET      ``/api/session/<sid>/state``                lesion list, edits, revision
POST     ``/api/session/<sid>/remove``               ``{"label": n}`` or ``{"seed": [k, j, i]}``
POST     ``/api/session/<sid>/add``                  ``{"seed": [k, j, i], "method", "value"}``
POST     ``/api/session/<sid>/undo``, ``redo``       one step back / forward
POST     ``/api/session/<sid>/rebase``               replay the edits on the latest saved version
POST     ``/api/session/<sid>/save``                 ``{"base_version", "reviewer", "score",
                                                     "comment", "active_seconds"}``; 409 on
                                                     a version conflict
POST     ``/api/session/<sid>/export``               ``{"format": "rtstruct" | "seg"}`` of the
                                                     saved version (DICOM cases only)
=======  ==========================================  ===========================================

Edits answer with the new state and a ``patch`` (flat C-order indices into the
``(Z, Y, X)`` map and their new labels), which the page applies to its overlay in
place; the label file is only fetched again when the page needs a full reload.
"""

from __future__ import annotations

import gzip
import hmac
import ipaddress
import json
import mimetypes
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from numpy.typing import NDArray

from petseg import __version__
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
    summarise_reviews,
)

__all__ = ["MAX_BODY_BYTES", "ReviewApp", "is_loopback", "make_server", "serve"]

#: Largest accepted request body (bytes); larger requests get 413 and are not read.
MAX_BODY_BYTES = 1_000_000
#: Sessions kept in memory (one per open tab); the oldest idle one is dropped beyond this.
MAX_SESSIONS = 8
PRELOAD_WAIT_S = 10.0
"""How long ``petseg review`` lets the first case be read before it opens the browser."""
MAX_CASES = 3
"""Cases whose images stay in memory (the open one, the next one, one more)."""
#: A patch larger than this many voxels is not sent; the page reloads the label file.
MAX_PATCH_VOXELS = 500_000


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


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _SessionEntry:
    session: CaseSession
    last_used: float = field(default_factory=time.monotonic)


class ReviewApp:
    """Request handling independent of sockets: ``handle(...) -> (status, headers, body)``.

    Parameters
    ----------
    root : case output folder or cohort folder
    token : access token required on ``/api/`` requests, or None
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
        self._static = resources.files("petseg.review") / "static"

    # --- helpers ---------------------------------------------------------------------

    def case(self, case_id: str) -> CaseData:
        """The case's images, read once; the least recently used beyond ``MAX_CASES`` are
        dropped (with their MIP and previews; open sessions keep their own reference)."""
        folder = self.cohort.case_dir(case_id)
        with self._lock:
            if case_id not in self._cases:
                self._cases[case_id] = CaseData.load(folder, case_id)
            self._cases.move_to_end(case_id)
            while len(self._cases) > MAX_CASES:
                dropped, _ = self._cases.popitem(last=False)
                self._prepared.pop(dropped, None)
                for key in [k for k in self._derived if k[0] == dropped]:
                    del self._derived[key]
            return self._cases[case_id]

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
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_used)
                del self._sessions[oldest]
            self._sessions[sid] = _SessionEntry(session)
        following = self.cohort.case_ids()
        following = following[following.index(case_id) + 1 :] if case_id in following else []
        if following:
            self.preload(following[0])  # a physician goes through a cohort in order
        return sid, session

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
            "threshold_suv": case.report.get("threshold_suv"),
            "method": case.report.get("method"),
            "synthetic": bool(case.report.get("synthetic", False)),
            "preview_step": self.preview_step(case),
            "dicom": bool((case.report.get("inputs") or {}).get("dicom")),
            "removed_count": len(case.removed_components()) if case.removed is not None else 0,
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

    def _static_file(self, rel: str) -> tuple[bytes, str]:
        parts = [p for p in rel.split("/") if p]
        if not parts or any(p in (".", "..") or p.startswith(".") or "\\" in p for p in parts):
            raise HttpError(404, f"no static file {rel!r}")
        node = self._static
        for part in parts:
            node = node / part
        if not node.is_file():
            raise HttpError(404, f"no static file {rel!r}")
        ctype = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        if parts[-1].endswith(".js"):
            ctype = "text/javascript"
        return node.read_bytes(), ctype

    # --- dispatch --------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; never raises for a client error."""
        try:
            return self._route(method, target, headers, body)
        except HttpError as err:
            return _json(err.status, {"error": str(err)})
        except ReviewError as err:
            return _json(err.status, {"error": str(err)})

    def _route(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(target)
        path = url.path
        query = parse_qs(url.query)
        if path in ("/", "/index.html"):
            data, ctype = self._static_file("index.html")
            return 200, {"Content-Type": ctype + "; charset=utf-8"}, data
        if path.startswith("/static/"):
            if method != "GET":
                raise HttpError(405, "static files are read-only")
            data, ctype = self._static_file(path[len("/static/") :])
            return 200, {"Content-Type": ctype, "Cache-Control": "max-age=3600"}, data
        if not path.startswith("/api/"):
            raise HttpError(404, f"no page {path!r}")
        if self.token is not None:
            given = headers.get("x-petseg-token") or (query.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise HttpError(
                    401, "missing or wrong access token; open the URL printed by `petseg review`"
                )
        parts = path.split("/")[2:]
        if parts == ["cases"] and method == "GET":
            return _json(200, self.cases_listing())
        if len(parts) == 3 and parts[0] == "case":
            return self._case_route(method, parts[1], parts[2])
        if len(parts) == 3 and parts[0] == "session":
            return self._session_route(method, parts[1], parts[2], body)
        raise HttpError(404, f"no API endpoint {method} {path}")

    def _case_route(
        self, method: str, case_id: str, action: str
    ) -> tuple[int, dict[str, str], bytes]:
        folder = self.cohort.case_dir(case_id)
        if action == "open" and method == "POST":
            sid, session = self.open_session(case_id)
            return _json(
                200, {"session": sid, "meta": self.case_meta(session.case), **session.state()}
            )
        if method != "GET":
            raise HttpError(405, f"{method} not allowed on /api/case/<id>/{action}")
        if action in ("pet.nii.gz", "ct.nii.gz"):
            name = "pet_suv.nii.gz" if action == "pet.nii.gz" else "ct.nii.gz"
            file = folder / name
            if not file.is_file():
                raise HttpError(404, f"case {case_id!r} has no {name}")
            return (
                200,
                {"Content-Type": "application/gzip", "Cache-Control": "no-cache"},
                file.read_bytes(),
            )
        if action in ("pet.preview.nii.gz", "ct.preview.nii.gz"):
            image = action.split(".")[0]
            if image == "ct" and not (folder / "ct.nii.gz").is_file():
                raise HttpError(404, f"case {case_id!r} has no ct.nii.gz")
            return (
                200,
                {"Content-Type": "application/gzip", "Cache-Control": "no-cache"},
                self.derived(case_id, image),
            )
        if action == "removed.nii.gz":
            case = self.case(case_id)
            if case.removed is None:
                raise HttpError(404, f"case {case_id!r} has no removed.nii.gz")
            data = labels_nifti_bytes(case.removed, case.geometry.affine)
            return 200, {"Content-Type": "application/gzip", "Cache-Control": "no-cache"}, data
        if action == "mip.bin":
            return 200, {"Content-Type": "application/octet-stream"}, self.derived(case_id, "mip")
        raise HttpError(404, f"no case endpoint {action!r}")

    def _session_route(
        self, method: str, sid: str, action: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        session = self.session(sid)
        if method == "GET":
            if action == "labels.nii.gz":
                with session.lock:
                    data = labels_nifti_bytes(session.labels, session.case.geometry.affine)
                return 200, {"Content-Type": "application/gzip", "Cache-Control": "no-store"}, data
            if action == "labels.preview.nii.gz":
                data = self.labels_preview_bytes(session)
                return 200, {"Content-Type": "application/gzip", "Cache-Control": "no-store"}, data
            if action == "state":
                with session.lock:
                    return _json(200, session.state())
            raise HttpError(404, f"no session endpoint GET {action!r}")
        if method != "POST":
            raise HttpError(405, f"{method} not allowed")
        payload = _parse_json(body)
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
                return _json(200, _with_patch(session, session.remove(label)))
            if action == "add":
                _only_keys(payload, {"seed", "method", "value"})
                change = session.add(
                    payload.get("seed"), payload.get("method", ""), payload.get("value")
                )
                return _json(200, _with_patch(session, change))
            if action == "restore":
                _only_keys(payload, {"removed_label"})
                removed_label: Any = payload.get("removed_label")  # restore() validates it
                return _json(200, _with_patch(session, session.restore(removed_label)))
            if action == "undo":
                return _json(200, _with_patch(session, session.undo()))
            if action == "redo":
                return _json(200, _with_patch(session, session.redo()))
            if action == "rebase":
                notes = session.rebase()
                return _json(200, {**session.state(), "notes": notes, "reload": True})
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
                return _json(200, {**session.state(), "saved": saved})
            if action == "export":
                _only_keys(payload, {"format"})
                return _json(200, {"written": export_saved_version(session, payload.get("format"))})
        raise HttpError(404, f"no session endpoint POST {action!r}")


def _seed_methods() -> list[str]:
    from petseg.edit import SEED_METHODS

    return list(SEED_METHODS)


def _json(status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(data, allow_nan=False, default=_nan_safe).encode("utf-8")
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body


def _nan_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequestError(f"request body is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise BadRequestError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _only_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise BadRequestError(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def _with_patch(session: CaseSession, change: Any) -> dict[str, Any]:
    state = session.state(change if change.index.size <= MAX_PATCH_VOXELS else None)
    if change.index.size > MAX_PATCH_VOXELS:
        state["reload"] = True
    return state


def export_saved_version(session: CaseSession, fmt: Any) -> list[str]:
    """Export the session's saved version as DICOM RTSTRUCT or SEG beside it.

    Needs a case read from DICOM (``report["inputs"]["dicom"]``) and no unsaved edits.
    """
    from petseg.io.atomic import atomic_dir
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
    if session.base_version == 0 or session.position:
        raise UnprocessableError(
            "save the corrected version first; the export is of a saved version"
        )
    from petseg.io.rtstruct_export import export_lesions_for_study

    study = Study(
        pet=case.suv,
        geometry=case.geometry,
        patient_id=str(case.report.get("patient_id", "anonymous")),
        study_id=str(case.report.get("study_id", "")),
        provenance=inputs,
    )
    target = case.folder / "review" / f"v{session.base_version:03d}" / f"export-{fmt}"
    with atomic_dir(target) as tmp:
        written = export_lesions_for_study(
            tmp, session.labels, study, rtstruct=fmt == "rtstruct", seg=fmt == "seg"
        )
    return [str(target / Path(p).name) for p in written]


class _Handler(BaseHTTPRequestHandler):
    server: _ReviewServer
    protocol_version = "HTTP/1.1"
    server_version = f"petseg-review/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "worker-src 'self' blob:; script-src 'self' 'wasm-unsafe-eval'",
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _host_ok(self) -> bool:
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return is_loopback(host)

    def _dispatch(self, method: str) -> None:
        if not self._host_ok():
            self._send(
                *_json(
                    403,
                    {"error": "Host header is not a loopback name; open http://127.0.0.1:PORT/"},
                )
            )
            return
        body = b""
        if method == "POST":
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                self._send(*_json(411, {"error": "POST needs a Content-Length header"}))
                return
            try:
                length = int(length_text)
            except ValueError:
                self._send(*_json(400, {"error": f"bad Content-Length {length_text!r}"}))
                return
            if length > MAX_BODY_BYTES or length < 0:
                self.close_connection = True
                self._send(
                    *_json(
                        413,
                        {
                            "error": f"request body of {length} bytes exceeds the limit of {MAX_BODY_BYTES}"
                        },
                    )
                )
                return
            body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        started = time.perf_counter()
        status, out_headers, data = self.server.app.handle(method, self.path, headers, body)
        out_headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
        self._send(status, out_headers, data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._send(*_json(405, {"error": "use GET or POST"}))

    do_DELETE = do_PUT
    do_PATCH = do_PUT


class _ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: ReviewApp, *, verbose: bool) -> None:
        self.app = app
        self.verbose = verbose
        self.loopback = is_loopback(address[0])
        super().__init__(address, _Handler)


def make_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    verbose: bool = False,
    preview_voxels: int = PREVIEW_VOXELS,
) -> tuple[_ReviewServer, str]:
    """Create (not start) the review server; return it and the URL to open.

    A non-loopback ``host`` requires a token; with ``token=None`` one is generated.
    ``port=0`` picks a free port. Studies with more than ``preview_voxels`` voxels are
    first shown reduced (:mod:`petseg.review.preview`).
    """
    if preview_voxels < 0:
        raise ValueError(f"preview_voxels must be 0 (no preview) or positive, got {preview_voxels}")
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    app = ReviewApp(root, token=token, preview_voxels=preview_voxels)
    server = _ReviewServer((host, port), app, verbose=verbose)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{server.server_address[1]}/"
    if token:
        url += f"?token={token}"
    return server, url


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
    print(f"petseg review: serving {server.app.cohort.root} at {url}  (Ctrl+C stops)", flush=True)
    first = server.app.preload_first_case()
    if open_browser and first is not None:
        wait([first], timeout=PRELOAD_WAIT_S)  # the page opens on a case already read
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()

"""HTTP routes of the review: a Starlette application over a :class:`~petseg.review.app.ReviewApp`.

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
GET      ``/api/case/<id>/uncertainty.nii.gz``       a fold ensemble's voxel uncertainty (bits)
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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from petseg.review.app import ReviewApp
from petseg.review.errors import HttpError, ReviewError
from petseg.review.http_io import error_answer, json_answer, only_keys, parse_json, read_body
from petseg.review.security import RequestGuard

__all__ = ["create_asgi_app"]


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
            return json_answer(200, result)
        except (HttpError, ReviewError) as err:
            return error_answer(err.status, str(err))
        except (OSError, ValueError) as err:  # a case file that cannot be read
            return error_answer(422, " ".join(str(err).split()))
        except Exception as err:
            from petseg.crashlog import write_crash_log

            log = await run_in_threadpool(
                write_crash_log, [f"request: {request.method} {request.url.path}"], err
            )
            return error_answer(500, f"internal error ({type(err).__name__}); traceback in {log}")

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

    only_keys(parse_json(await read_body(request)), set())
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

    payload = parse_json(await read_body(request))
    return await run_in_threadpool(review.session_action, params["sid"], params["action"], payload)


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
            return error_answer(404, f"no page or endpoint {request.url.path!r}")
        if exc.status_code == 405:
            return error_answer(405, f"{request.method} is not allowed on {request.url.path}")
        return error_answer(exc.status_code, str(exc.detail))

    async def server_error(request: Any, exc: Exception) -> Any:
        from petseg.crashlog import write_crash_log

        log = write_crash_log([f"request: {request.method} {request.url.path}"], exc)
        return error_answer(500, f"internal error ({type(exc).__name__}); traceback in {log}")

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
        middleware=[Middleware(RequestGuard, token=review.token, loopback=loopback)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.review = review
    return app

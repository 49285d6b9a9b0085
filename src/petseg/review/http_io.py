"""JSON answers and request bodies of the review's HTTP layer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from petseg.jsonable import to_jsonable
from petseg.review.errors import BadRequestError, HttpError

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "error_answer",
    "json_answer",
    "only_keys",
    "parse_json",
    "read_body",
]

#: Largest accepted request body (bytes); larger requests get 413 and are not read.
MAX_BODY_BYTES = 1_000_000
#: A request body must arrive within this many seconds (else 408).
BODY_TIMEOUT_S = 10.0


def json_answer(status: int, data: Any) -> Any:
    """A JSON response with HTTP status ``status``.

    Parameters
    ----------
    status : int
        HTTP status.
    data : any
        JSON-ready value (NumPy values are converted; NaN is refused).
    """
    from starlette.responses import Response

    body = json.dumps(to_jsonable(data), allow_nan=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def error_answer(status: int, message: str) -> Any:
    """The JSON answer ``{"error": message}`` with HTTP status ``status``.

    Parameters
    ----------
    status : int
        HTTP status (4xx or 5xx).
    message : str
        One line.
    """
    return json_answer(status, {"error": message})


async def read_body(request: Any) -> bytes:
    """The request body: at most :data:`MAX_BODY_BYTES`, within :data:`BODY_TIMEOUT_S`.

    Parameters
    ----------
    request : starlette.requests.Request
        The request being answered.

    Returns
    -------
    bytes
    """
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


def parse_json(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (``{}`` for an empty body); 400 for anything else.

    Parameters
    ----------
    body : bytes
        The request body, UTF-8.

    Returns
    -------
    dict
    """
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


def only_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    """Refuse (400) a request object with fields outside ``allowed``.

    Parameters
    ----------
    payload : dict
        The request's JSON object.
    allowed : set of str
        The fields the endpoint takes.
    """
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise BadRequestError(f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")

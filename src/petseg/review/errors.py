"""Errors of the review: each carries the HTTP status the server answers with."""

from __future__ import annotations

__all__ = [
    "BadRequestError",
    "CaseNotFoundError",
    "HttpError",
    "ReviewError",
    "UnprocessableError",
    "VersionConflictError",
]


class ReviewError(Exception):
    """A request the review cannot carry out; ``status`` is the HTTP status to answer."""

    status = 400


class BadRequestError(ReviewError):
    """A malformed request: a missing, unknown or ill-typed field (400)."""

    status = 400


class CaseNotFoundError(ReviewError):
    """A case id that names no case folder of the cohort (404)."""

    status = 404


class VersionConflictError(ReviewError):
    """Another tab or reviewer saved, or the case was segmented again (409)."""

    status = 409


class UnprocessableError(ReviewError):
    """A well-formed request the case cannot carry out, or an unreadable case file (422)."""

    status = 422


class HttpError(Exception):
    """A request refused by the HTTP layer; ``status`` is the status to answer.

    Parameters
    ----------
    status : int
        HTTP status (4xx).
    message : str
        One line for the ``error`` field of the answer.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

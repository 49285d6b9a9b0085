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
    status = 400


class CaseNotFoundError(ReviewError):
    status = 404


class VersionConflictError(ReviewError):
    status = 409


class UnprocessableError(ReviewError):
    status = 422


class HttpError(Exception):
    """A request refused by the HTTP layer; ``status`` is the status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

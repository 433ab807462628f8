"""Errors that carry their HTTP status, and their plain-text rendering.

OpenFaaS error bodies are plain text (Go's http.Error: message + newline); clients show the
body and branch on the status only. Domain errors from events/ carry their status too.
"""

from __future__ import annotations

import logging
import sqlite3

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from events.errors import DomainError
from events.store import ConcurrencyError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def text(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n" if message else "", status_code=status)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return text(exc.status, exc.message)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return text(exc.status, exc.message)


async def conflict(request: Request, exc: Exception) -> Response:
    return text(409, "the function was changed by another request at the same time; try again")


async def storage(request: Request, exc: Exception) -> Response:
    """The log could not be written. A full disk is 507 (Insufficient Storage): nothing was
    appended, reads keep working, and the same request succeeds once space returns. Any
    other storage failure (a lock held too long) is 503, worth retrying."""
    assert isinstance(exc, sqlite3.OperationalError)
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        log.error("state disk full: %s %s refused (nothing stored)", request.method,
                  request.url.path)
        return text(507, "insufficient storage: the disk holding the gateway's state is "
                         "full; nothing was stored. Free space and retry")
    log.warning("state storage unavailable: %s", exc)
    response = text(503, f"state storage unavailable ({exc}); nothing was stored, retry")
    response.headers["Retry-After"] = "1"
    return response


HANDLERS = {ApiError: api_error, DomainError: domain_error, ConcurrencyError: conflict,
            sqlite3.OperationalError: storage}

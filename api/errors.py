"""Errors that carry their HTTP status, and their plain-text rendering.

OpenFaaS error bodies are plain text (Go's http.Error: message + newline); clients show the
body and branch on the status only. Domain errors from events/ carry their status too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from events.errors import DomainError
from events.store import ConcurrencyError


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


HANDLERS = {ApiError: api_error, DomainError: domain_error, ConcurrencyError: conflict}

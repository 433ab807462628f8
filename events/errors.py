"""Domain errors raised by the pure command handlers in `events.decide`.

Why a module of its own: the HTTP layer turns these into responses without knowing any
business rule, so each error carries the status it should become (h11's errors carry a
suggested status the same way). The message is meant for the client, so it says what was
wrong in the client's own terms (function name and namespace), never an internal detail.
"""

from typing import ClassVar

__all__ = ["AlreadyExists", "DomainError", "InUse", "Invalid", "NotFound"]


class DomainError(Exception):
    """A command was refused by a business rule; `status` is the HTTP status to answer."""

    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The command itself is malformed (for example a negative replica count)."""

    status = 400


class NotFound(DomainError):
    """The command names a function that is not deployed."""

    status = 404


class AlreadyExists(DomainError):
    """A deploy names a function that is already deployed; update it instead."""

    status = 409


class InUse(DomainError):
    """A removal names something still in use (a secret a function mounts, a namespace
    that still holds functions); the message names the users."""

    status = 409

"""HTTP Basic authentication for /system/* (and later /ui/), as the OpenFaaS gateway does it.

The user name is compared exactly and the password in constant time; a failure answers 401
with `WWW-Authenticate: Basic realm="Restricted"`. Besides the admin (AUTH_USER), further
users may come from AUTH_USERS_FILE. The authenticated user becomes the actor recorded on
every event the request appends, which is what lets the audit trail say who changed what.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

ACTOR_KEY = "docker_faas.actor"
PROTECTED = ("/system/",)
_STAND_IN = secrets.token_urlsafe(24)
_CHALLENGE = [
    (b"www-authenticate", b'Basic realm="Restricted"'),
    (b"content-type", b"text/plain; charset=utf-8"),
]


def check_basic(header: bytes, users: Mapping[str, str]) -> str | None:
    """The user name when `header` carries the credentials of one of `users`, else None.

    The password is compared in constant time, against a stand-in for an unknown user too,
    so the time taken does not tell which user names exist."""
    scheme, _, encoded = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        given_user, sep, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    known = given_user in users
    password = users.get(given_user, _STAND_IN)
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return given_user if sep and known and password_ok else None


class BasicAuth:
    """ASGI middleware: protects paths under PROTECTED, records the actor in the scope."""

    def __init__(self, app: ASGIApp, *, enabled: bool, users: Mapping[str, str]) -> None:
        self.app = app
        self.enabled = enabled
        self.users = dict(users)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.enabled:
            scope[ACTOR_KEY] = "anonymous"
        elif scope["path"].startswith(PROTECTED):
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            actor = check_basic(header, self.users)
            if actor is None:
                body = b"invalid credentials\n"
                await send({"type": "http.response.start", "status": 401,
                            "headers": [*_CHALLENGE,
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)

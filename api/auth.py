"""HTTP Basic authentication for /system/* (and later /ui/), as the OpenFaaS gateway does it.

The user name is compared exactly and the password in constant time; a failure answers 401
with `WWW-Authenticate: Basic realm="Restricted"`. The authenticated user becomes the actor
recorded on every event the request appends.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

ACTOR_KEY = "docker_faas.actor"
PROTECTED = ("/system/",)
_CHALLENGE = [
    (b"www-authenticate", b'Basic realm="Restricted"'),
    (b"content-type", b"text/plain; charset=utf-8"),
]


def check_basic(header: bytes, user: str, password: str) -> str | None:
    """The user name when `header` carries the right credentials, else None."""
    scheme, _, encoded = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        given_user, sep, given_password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return given_user if sep and user_ok and password_ok else None


class BasicAuth:
    """ASGI middleware: protects paths under PROTECTED, records the actor in the scope."""

    def __init__(self, app: ASGIApp, *, enabled: bool, user: str, password: str) -> None:
        self.app = app
        self.enabled = enabled
        self.user = user
        self.password = password

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.enabled:
            scope[ACTOR_KEY] = "anonymous"
        elif scope["path"].startswith(PROTECTED):
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            actor = check_basic(header, self.user, self.password)
            if actor is None:
                body = b"invalid credentials\n"
                await send({"type": "http.response.start", "status": 401,
                            "headers": [*_CHALLENGE,
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)

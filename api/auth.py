"""HTTP Basic authentication for /system/* (and later /ui/), as the OpenFaaS gateway does it.

The user name is compared exactly and the password in constant time; a failure answers 401
with `WWW-Authenticate: Basic realm="Restricted"`. Besides the admin (AUTH_USER), further
users may come from AUTH_USERS_FILE. The authenticated user becomes the actor recorded on
every event the request appends, which is what lets the audit trail say who changed what.

A flood of wrong passwords is slowed per source address (LoginThrottle): after
AUTH_MAX_FAILURES failures within AUTH_FAILURE_WINDOW the address is answered 429 with
Retry-After, without its credentials being checked, until enough of those failures have
aged out of the window. Credentials are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

ACTOR_KEY = "docker_faas.actor"
PROTECTED = ("/system/", "/ui/")
_STAND_IN = secrets.token_urlsafe(24)
log = logging.getLogger("docker_faas.auth")
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


def source_of(scope: Scope) -> str:
    """Whom failures are counted against: the client address; an IPv6 client by its /64
    (one host commonly holds a whole /64)."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


class LoginThrottle:
    """Failed logins per source over a sliding window of `window` seconds.

    A source with `limit` failures in the window is refused (`retry_after` > 0) until the
    oldest of them leaves the window; nothing is counted while it is refused. A success
    clears the source's failures. At most `max_sources` sources are remembered, the least
    recently failing forgotten first, so many addresses cannot grow memory without bound.
    """

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic,
                 max_sources: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_sources = max_sources
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float] | None:
        failures = self._failures.get(source)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[source]
            return None
        return failures

    def retry_after(self, source: str) -> float:
        """Seconds until `source` may try again; 0 when it may now."""
        now = self.clock()
        failures = self._recent(source, now)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(failures[-self.limit] + self.window - now, 0.001)

    def failed(self, source: str) -> bool:
        """Count a failure; True when it makes the source refused."""
        now = self.clock()
        failures = self._recent(source, now) or deque(maxlen=self.limit)
        self._failures.pop(source, None)
        failures.append(now)
        self._failures[source] = failures  # the most recent at the end
        while len(self._failures) > self.max_sources:
            del self._failures[next(iter(self._failures))]
        return len(failures) >= self.limit

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)


_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site_write(scope: Scope) -> str:
    """Why a state-changing request looks sent by a browser for another site, or "".

    faas-cli, curl and our CLI send no Origin; browsers send one with every POST/PUT/DELETE
    (and Sec-Fetch-Site), which must then name this gateway."""
    if scope["method"] in _SAFE:
        return ""
    origin = host = fetch_site = b""
    for key, value in scope["headers"]:
        if key == b"origin":
            origin = value
        elif key == b"host":
            host = value
        elif key == b"sec-fetch-site":
            fetch_site = value
    if fetch_site == b"cross-site":
        return "a cross-site request (Sec-Fetch-Site)"
    if origin:
        _, _, authority = origin.partition(b"://")
        if not authority or authority.lower() != host.lower():
            return f"Origin {origin.decode('latin-1')!r} is not this gateway"
    return ""


async def _refuse(send: Send, status: int, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (message + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        *(headers or [(b"content-type", b"text/plain; charset=utf-8")]),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BasicAuth:
    """ASGI middleware: protects paths under PROTECTED, records the actor in the scope."""

    def __init__(self, app: ASGIApp, *, enabled: bool, users: Mapping[str, str],
                 throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.enabled = enabled
        self.users = dict(users)
        self.throttle = throttle or LoginThrottle(10, 60.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(PROTECTED) and (why := cross_site_write(scope)):
            # a browser that holds the user's credentials must not change state for a page
            # of another site (a form posted at /system/functions): CSRF
            await _refuse(send, 403, f"refused: {why}; the /system API takes changes only "
                                     "from its own pages and from non-browser clients")
            return
        if not self.enabled:
            scope[ACTOR_KEY] = "anonymous"
        elif scope["path"].startswith(PROTECTED):
            source = source_of(scope)
            wait = self.throttle.retry_after(source)
            if wait > 0:  # refused without looking at the credentials
                seconds = math.ceil(wait)
                await _refuse(send, 429, f"too many failed logins from {source}; try again "
                                         f"in {seconds} s",
                              [(b"retry-after", str(seconds).encode()),
                               (b"content-type", b"text/plain; charset=utf-8")])
                return
            header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            actor = check_basic(header, self.users)
            if actor is not None:
                self.throttle.succeeded(source)
            elif header and self.throttle.failed(source):  # no header at all is no guess
                log.warning("%d failed logins from %s within %gs: refusing its logins until "
                            "they age out", self.throttle.limit, source, self.throttle.window)
            if actor is None:
                await _refuse(send, 401, "invalid credentials", list(_CHALLENGE))
                return
            scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)

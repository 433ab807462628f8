"""api._relay, the C fast path of the invocation relay, against llhttp (httptools).

`parse_request`/`parse_response` accept a strict subset of HTTP/1.1 and answer None ("hand
over") for everything else, which the relay then feeds to llhttp. The safety property checked
here: whenever they answer a tuple, llhttp accepts the very same bytes as exactly one complete
message with the same meaning (method, target, version, keep-alive, headers, body).

- generated messages: a model of the accepted subset (`_expect_request`/`_expect_response`)
  says whether each generated message must be taken or handed over, and whatever is taken is
  checked against llhttp;
- mutated messages (a byte inserted/deleted/replaced, a header line repeated, a cut, a tail):
  whatever is taken is checked against llhttp;
- typical requests and responses (curl, faas-cli, hey, ab, requests, a watchdog) that must be
  taken and decoded exactly;
- a table of messages that must be handed over, one per rule (smuggling shapes included);
- crash safety on arbitrary bytes and large inputs, and the head size limit at its edge;
- `relay_request` (what the relay uses: parse_request plus the request to send on, assembled
  in C) against the relay's rule written out again in Python, on generated and mutated
  requests.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

try:
    from api import _relay
except ImportError:  # the import test below fails unless DOCKER_FAAS_PURE_PYTHON=1
    _relay = None

needs_relay = pytest.mark.skipif(_relay is None, reason="api._relay is not built")
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 8192

HOP = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"proxy-authenticate",
                 b"proxy-authorization", b"te", b"trailer"})
# Proxy-Connection: llhttp reads it like Connection, so the keep-alive answer is its to give
BAIL = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"proxy-connection"})
STANDARD_METHODS = (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS")

TOKEN = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&'*+-.^_`|~")
VCHAR = frozenset(range(0x20, 0x7F)) | {0x09}  # field-value octets taken: no obs-text, no CTL
TCHAR = frozenset(range(0x21, 0x7F)) - {ord("#")}  # request-target octets taken


def test_the_extension_is_importable() -> None:
    """Fails (not skips) when the extension is missing, unless the pure-Python mode is asked."""
    if os.environ.get("DOCKER_FAAS_PURE_PYTHON") == "1":
        pytest.skip("DOCKER_FAAS_PURE_PYTHON=1: the relay runs without api._relay")
    import api._relay

    assert callable(api._relay.parse_request) and callable(api._relay.parse_response)


# ---- llhttp as the judge --------------------------------------------------------------------


class Llhttp:
    """Feeds one buffer to httptools and records what llhttp made of it."""

    def __init__(self, request: bool) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = 0
        self.keep_alive: bool | None = None
        self.method: bytes | None = None
        self.version: str | None = None
        self.status: int | None = None
        self.request = request
        self.parser: Any = (httptools.HttpRequestParser(self) if request
                            else httptools.HttpResponseParser(self))

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        # llhttp clears its flags once the message is done: ask about keep-alive in here
        self.complete += 1
        self.keep_alive = self.parser.should_keep_alive()
        self.version = self.parser.get_http_version()
        if self.request:
            self.method = self.parser.get_method()
        else:
            self.status = self.parser.get_status_code()


def _llhttp(data: bytes, request: bool) -> Llhttp:
    judge = Llhttp(request)
    try:
        judge.parser.feed_data(data)
    except httptools.HttpParserError as exc:
        kind = "request" if request else "response"
        pytest.fail(f"api._relay took the {kind} {data!r} but llhttp refuses it: {exc!r}")
    assert judge.complete == 1, (
        f"api._relay took {data!r} but llhttp completed {judge.complete} messages")
    return judge


def _lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name.lower() + b": " + value + b"\r\n" for name, value in headers
                    if name.lower() not in HOP)


def _values(headers: list[tuple[bytes, bytes]], lower: bytes) -> list[bytes]:
    return [value for name, value in headers if name.lower() == lower]


def check_request(data: bytes, limit: int) -> tuple[Any, ...] | None:
    """parse_request's answer, checked against llhttp when it is a tuple."""
    answer = _relay.parse_request(data, limit)
    if answer is None:
        return None
    assert isinstance(answer, tuple) and len(answer) == 10
    method, target, minor, keep_alive, lines, body, length, call_id, host, flags = answer
    judge = _llhttp(data, request=True)
    seen = (method, target, f"1.{minor}", keep_alive, body)
    said = (judge.method, judge.url, judge.version, judge.keep_alive, judge.body)
    assert seen == said, f"{data!r}: api._relay read {seen!r}, llhttp {said!r}"
    assert minor in (0, 1) and isinstance(keep_alive, bool)
    headers = judge.headers
    assert lines == _lines(headers), data
    lengths = _values(headers, b"content-length")
    assert length == (int(lengths[0]) if lengths else -1), data
    assert length == len(body) or (length == -1 and body == b""), data
    ids, hosts = _values(headers, b"x-call-id"), _values(headers, b"host")
    assert call_id == (ids[0] if ids else None), data
    assert host == (hosts[0] if hosts else None), data
    names = {name.lower() for name, _ in headers}
    want = ((1 if b"x-forwarded-for" in names else 0) | (2 if b"x-forwarded-host" in names else 0)
            | (4 if names & {b"idempotency-key", b"x-idempotency-key"} else 0))
    assert flags == want, data
    # the head fits the limit by both measures
    assert data.index(b"\r\n\r\n") + 4 <= limit, data
    assert len(target) + sum(len(n) + len(v) + 4 for n, v in headers) <= limit, data
    return answer


def check_response(data: bytes) -> tuple[Any, ...] | None:
    """parse_response's answer, checked against llhttp when it is a tuple."""
    answer = _relay.parse_response(data)
    if answer is None:
        return None
    assert isinstance(answer, tuple) and len(answer) == 4
    status, keep_alive, lines, body = answer
    judge = _llhttp(data, request=False)
    seen = (status, keep_alive, body)
    said = (judge.status, judge.keep_alive, judge.body)
    assert seen == said, f"{data!r}: api._relay read {seen!r}, llhttp {said!r}"
    assert isinstance(keep_alive, bool)
    assert lines == _lines(judge.headers), data
    assert [int(v) for v in _values(judge.headers, b"content-length")] == [len(body)], data
    return answer


# ---- a model of the subset taken ------------------------------------------------------------
# True: must be taken, False: must be handed over, None: either (a choice left to llhttp;
# none at present).


def _all(verdicts: list[bool | None]) -> bool | None:
    if False in verdicts:
        return False
    return None if None in verdicts else True


Header = tuple[bytes, bytes, bool]  # name, what follows the colon (OWS included), line well-formed


def _expect_fields(headers: list[Header], body: bytes, request: bool,
                   counted: int, limit: int) -> bool | None:
    verdicts: list[bool | None] = []
    seen: dict[bytes, list[bytes]] = {}
    for name, raw, well_formed in headers:
        value = raw.lstrip(b" \t")
        lower = name.lower()
        counted += len(name) + len(value) + 4
        if (not well_formed or not name or len(name) > 64 or not set(name) <= TOKEN
                or not set(value) <= VCHAR or value[-1:] in (b" ", b"\t")):
            verdicts.append(False)
            continue
        seen.setdefault(lower, []).append(value)
        if lower in BAIL:
            verdicts.append(False)
    connection = seen.get(b"connection", [])
    if len(connection) > 1 or any(v.lower() not in (b"close", b"keep-alive") for v in connection):
        verdicts.append(False)
    lengths = seen.get(b"content-length", [])
    if len(lengths) > 1 or not all(re.fullmatch(rb"[0-9]{1,15}", v) for v in lengths):
        verdicts.append(False)
    elif (int(lengths[0]) if lengths else 0) != len(body):
        verdicts.append(False)
    elif not request and not lengths:
        verdicts.append(False)
    if request and (len(seen.get(b"host", [])) > 1 or len(seen.get(b"x-call-id", [])) > 1):
        verdicts.append(False)
    if counted > limit:
        verdicts.append(False)
    return _all(verdicts)


def _expect_request(method: bytes, target: bytes, version: bytes, eol: bytes,
                    headers: list[Header], body: bytes, head_size: int,
                    limit: int) -> bool | None:
    verdicts: list[bool | None] = []
    if method not in STANDARD_METHODS:  # others: a 405 or llhttp's 400, on the general path
        verdicts.append(False)
    if not target.startswith(b"/") or not set(target) <= TCHAR:
        verdicts.append(False)
    if version not in (b"HTTP/1.0", b"HTTP/1.1") or eol != b"\r\n" or head_size > limit:
        verdicts.append(False)
    verdicts.append(_expect_fields(headers, body, True, len(target), limit))
    return _all(verdicts)


def _expect_response(version: bytes, status: bytes, sep: bytes, reason: bytes, eol: bytes,
                     headers: list[Header], body: bytes) -> bool | None:
    verdicts: list[bool | None] = []
    if version not in (b"HTTP/1.0", b"HTTP/1.1") or eol != b"\r\n" or sep != b" ":
        verdicts.append(False)
    if (not re.fullmatch(rb"[0-9]{3}", status) or not 200 <= int(status) <= 599
            or int(status) in (204, 304)):
        verdicts.append(False)
    if not set(reason) <= VCHAR:
        verdicts.append(False)
    verdicts.append(_expect_fields(headers, body, False, 0, sys.maxsize))
    return _all(verdicts)


# ---- strategies -----------------------------------------------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%/"
ODD_TARGET = ['"', "<", ">", "\\", "^", "`", "{", "|", "}", "?",  # taken (and by llhttp)
              " ", "#", "\t", "\x00", "\x7f", "\x80", "\xff", "\r", "\n"]
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
ODD_BYTES = [b"\x00", b"\x01", b"\x0b", b"\x0c", b"\x7f", b"\x80", b"\xc3", b"\xff", b"\r",
             b"\n"]
TOKEN_TEXT = st.text(alphabet="".join(map(chr, sorted(TOKEN))), min_size=1, max_size=20)
VALUE_TEXT = st.text(alphabet=PRINTABLE + " \t", max_size=30)

HOSTS = [b"127.0.0.1:8080", b"localhost", b"gateway.openfaas:8080", b"[::1]:8080", b""]
IDS = [b"0f8e2d1c-6a1b-4a57-9d6e-3c2b1a0f9e8d", b"abc", b"1", b""]
COMMON = {
    b"user-agent": [b"curl/8.5.0", b"Go-http-client/1.1", b"hey/0.0.1"],
    b"accept": [b"*/*", b"application/json, text/plain;q=0.9"],
    b"content-type": [b"text/plain", b"application/json; charset=utf-8"],
    b"accept-encoding": [b"gzip, deflate, br"],
    b"authorization": [b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"],
    b"x-forwarded-for": [b"10.0.0.1", b"10.0.0.1, 172.17.0.1"],
    b"x-forwarded-host": HOSTS,
    b"idempotency-key": IDS,
    b"x-idempotency-key": IDS,
    b"keep-alive": [b"timeout=5, max=100"],
    b"te": [b"trailers"],
    b"trailer": [b"X-Checksum"],
    b"proxy-authorization": [b"Basic Zm9vOmJhcg=="],
    b"proxy-authenticate": [b'Basic realm="gw"'],
}
REQUEST_ONLY = {b"host": HOSTS, b"x-call-id": IDS}
ODD_NAMES = {
    b"proxy-connection": [b"close", b"keep-alive", b"Keep-Alive"],
    b"transfer-encoding": [b"chunked", b"identity", b"gzip, chunked"],
    b"expect": [b"100-continue"],
    b"upgrade": [b"websocket", b"h2c"],
    b"connection": [b"close", b"keep-alive", b"upgrade", b"close, keep-alive", b""],
    b"content-length": [b"0", b"5", b"+5", b"-1"],
}


_ODDS = (False,) * 11 + (True,)  # a trouble in one choice of twelve


def _rarely(draw: Any, clean: bool) -> bool:
    return not clean and draw(st.sampled_from(_ODDS))


@st.composite
def _cased(draw: Any, name: bytes) -> bytes:
    style = draw(st.sampled_from(["title", "lower", "upper", "random"]))
    if style == "title":
        return name.title()
    if style == "upper":
        return name.upper()
    if style == "lower":
        return name
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name, flips,
                                                                              strict=True))


@st.composite
def _header(draw: Any, request: bool, clean: bool) -> tuple[Header, bytes]:
    """One header (as the model sees it) and its line."""
    pool = COMMON | REQUEST_ONLY if request else COMMON
    if _rarely(draw, clean):
        pool = ODD_NAMES
    if draw(st.integers(0, 3)) == 0:
        name = b"x-r-" + draw(TOKEN_TEXT).encode() if clean else draw(TOKEN_TEXT).encode()
        value = draw(VALUE_TEXT).encode()
        if clean:
            value = value.rstrip(b" \t")
    else:
        lower = draw(st.sampled_from(sorted(pool)))
        name = draw(_cased(lower))
        value = draw(st.sampled_from(pool[lower]))
    ows = draw(st.sampled_from([b" ", b"", b"  ", b"\t", b" \t"]))
    before_colon, eol, well_formed = b"", b"\r\n", True
    if _rarely(draw, clean):
        trouble = draw(st.sampled_from(["odd-byte", "trailing-ws", "space-before-colon",
                                        "bare-lf", "leading-space", "bad-name", "long-name",
                                        "empty-name"]))
        if trouble == "odd-byte":
            at = draw(st.integers(0, len(value)))
            value = value[:at] + draw(st.sampled_from(ODD_BYTES)) + value[at:]
        elif trouble == "trailing-ws":
            value += draw(st.sampled_from([b" ", b"\t", b"  "]))
        elif trouble == "space-before-colon":
            before_colon, well_formed = draw(st.sampled_from([b" ", b"\t"])), False
        elif trouble == "bare-lf":
            eol, well_formed = b"\n", False
        elif trouble == "leading-space":
            name, well_formed = b" " + name, False
        elif trouble == "bad-name":
            at = draw(st.integers(0, len(name)))
            name = name[:at] + draw(st.sampled_from([b"@", b"(", b'"', b"/", b"{", b"\x80",
                                                     b"\x00", b" ", b"\t"])) + name[at:]
        elif trouble == "long-name":
            name = b"x-" + b"a" * draw(st.integers(60, 70))
        else:
            name = b""
    line = name + before_colon + b":" + ows + value + eol
    return (name, ows + value, well_formed), line


@st.composite
def _headers(draw: Any, request: bool, clean: bool, body: bytes) -> tuple[list[Header], bytes]:
    # a plain request names Host and X-Call-Id once at most
    items = draw(st.lists(_header(request, clean), max_size=8,
                          unique_by=(lambda item: item[0][0].lower()) if clean else None))
    mode = draw(st.sampled_from(["none", "match", "match", "ows", "zeros"]))
    if mode == "none" and (body or not request) and not _rarely(draw, clean):
        mode = "match"  # a body needs its Content-Length, and so does any response
    if _rarely(draw, clean):
        mode = draw(st.sampled_from(["more", "less", "plus", "trailing", "hex", "empty", "long",
                                     "twice", "twice-other", "minus"]))
    n = len(body)
    values = {"match": [b"%d" % n], "ows": [b"  %d" % n], "zeros": [b"00%d" % n],
              "more": [b"%d" % (n + 1)], "less": [b"%d" % (n - 1 if n else 2)],
              "plus": [b"+%d" % n], "trailing": [b"%d " % n], "hex": [b"0x%x" % n],
              "empty": [b""], "long": [b"%016d" % n], "twice": [b"%d" % n, b"%d" % n],
              "twice-other": [b"%d" % n, b"%d" % (n + 7)], "minus": [b"-%d" % n],
              "none": []}[mode]
    for value in values:
        name = draw(_cased(b"content-length"))
        at = draw(st.integers(0, len(items)))
        raw = value if value.startswith(b" ") else b" " + value
        items.insert(at, ((name, raw, True), name + b":" + raw + b"\r\n"))
    connection = draw(st.sampled_from([None, None, b"close", b"keep-alive", b"Close",
                                       b"KEEP-ALIVE"]))
    connections = [connection] if connection is not None else []
    if _rarely(draw, clean):
        connections = draw(st.sampled_from([[b"upgrade"], [b"close, keep-alive"], [b""],
                                            [b"closed"], [b"close", b"close"],
                                            [b"keep-alive", b"close"], [b"Upgrade, close"]]))
    for value in connections:
        name = draw(_cased(b"connection"))
        at = draw(st.integers(0, len(items)))
        items.insert(at, ((name, b" " + value, True), name + b": " + value + b"\r\n"))
    return [header for header, _ in items], b"".join(line for _, line in items)


def _limits() -> st.SearchStrategy[int]:
    return st.one_of(st.just(LIMIT), st.just(1 << 20), st.integers(0, 400))


@st.composite
def requests(draw: Any, clean: bool = False) -> tuple[bytes, int, bool | None]:
    """(bytes, max_head, what the model expects: True taken, False handed over, None either)."""
    method = draw(st.sampled_from(STANDARD_METHODS))
    if _rarely(draw, clean):
        method = draw(st.sampled_from([b"FOO", b"BREW", b"CONNECT", b"PRI", b"DESCRIBE",
                                       b"TRACE", b"PROPFIND", b"QUERY", b"SOURCE", b"get",
                                       b"Post", b"M-SEARCH", b"", b"ABCDEFGHIJKLMNOPQ",
                                       b"GET1"]))
    target = b"/function/" + draw(st.text(alphabet=NAME_CHARS, min_size=1, max_size=20)).encode()
    if draw(st.booleans()):
        target += b"." + draw(st.sampled_from([b"openfaas-fn", b"team", b"x"]))
    if draw(st.booleans()):
        target += b"/" + draw(st.text(alphabet=PATH_CHARS, max_size=20)).encode()
    if draw(st.booleans()):
        target += b"?" + draw(st.text(alphabet=PATH_CHARS + "?", max_size=30)).encode()
    if _rarely(draw, clean):
        target = draw(st.sampled_from([b"/", b"/healthz", b"*", b"http://gw:8080/function/x",
                                       b"function/x", b"", b"//function/x"]))
    if _rarely(draw, clean):
        at = draw(st.integers(0, len(target)))
        target = target[:at] + draw(st.sampled_from(ODD_TARGET)).encode("latin-1") + target[at:]
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    if _rarely(draw, clean):
        version = draw(st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"http/1.1",
                                        b"HTTP/1.1 ", b"HTTP/1", b"HTTP/1.10", b"HTTP/11"]))
    eol = b"\n" if _rarely(draw, clean) else b"\r\n"
    body = draw(st.binary(max_size=48)) if draw(st.booleans()) else b""
    headers, lines = draw(_headers(True, clean, body))
    head = method + b" " + target + b" " + version + eol + lines + b"\r\n"
    limit = LIMIT if clean else draw(_limits())
    expect = _expect_request(method, target, version, eol, headers, body, len(head), limit)
    return head + body, limit, expect


@st.composite
def responses(draw: Any, clean: bool = False) -> tuple[bytes, bool | None]:
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    if _rarely(draw, clean):
        version = draw(st.sampled_from([b"HTTP/2.0", b"HTTP/1.2", b"http/1.1", b"HTTP/1"]))
    status = b"%d" % draw(st.sampled_from([200, 200, 201, 202, 203, 206, 301, 302, 400, 401,
                                           404, 429, 500, 502, 503, 504, 599]))
    if _rarely(draw, clean):
        status = draw(st.sampled_from([b"100", b"101", b"103", b"199", b"204", b"304", b"600",
                                       b"999", b"000", b"099", b"2x0", b"20", b"2000"]))
    sep = b" "
    reason = draw(st.sampled_from([b"OK", b"Not Found", b"", b"Internal Server Error"]))
    if draw(st.integers(0, 3)) == 0:
        reason = draw(VALUE_TEXT).encode()
    if _rarely(draw, clean):
        trouble = draw(st.sampled_from(["odd-byte", "no-space"]))
        if trouble == "odd-byte":
            at = draw(st.integers(0, len(reason)))
            reason = reason[:at] + draw(st.sampled_from(ODD_BYTES)) + reason[at:]
        else:
            sep, reason = b"", reason.lstrip(b" \t")  # "200OK", "200\r\n"
    eol = b"\n" if _rarely(draw, clean) else b"\r\n"
    body = draw(st.binary(max_size=48)) if draw(st.booleans()) else b""
    headers, lines = draw(_headers(False, clean, body))
    data = version + b" " + status + sep + reason + eol + lines + b"\r\n" + body
    return data, _expect_response(version, status, sep, reason, eol, headers, body)


@st.composite
def mutated(draw: Any, messages: st.SearchStrategy[Any]) -> bytes:
    """A plain message with one or two small changes."""
    data: bytes = draw(messages)[0]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        how = draw(st.sampled_from(["insert", "delete", "replace", "repeat-line", "cut",
                                    "pipeline", "tail"]))
        at = draw(st.integers(0, len(data)))
        odd = draw(st.one_of(st.sampled_from([b"\r", b"\n", b" ", b"\t", b":", b"\x00", b"\x80",
                                              b"#", b"?", b",", b"0", b"\r\n", b"\r\n ", b"a",
                                              b"A", b"-", b"/", b"1"]),
                             st.binary(min_size=1, max_size=1)))
        if how == "insert":
            data = data[:at] + odd + data[at:]
        elif how == "delete":
            data = data[:at] + data[at + 1:]
        elif how == "replace":
            data = data[:at] + odd + data[at + 1:]
        elif how == "repeat-line":
            lines = data.split(b"\r\n")
            pick = draw(st.integers(0, len(lines) - 1))
            lines.insert(pick, lines[pick])
            data = b"\r\n".join(lines)
        elif how == "cut":
            data = data[:at]
        elif how == "pipeline":
            data += data
        else:
            data += draw(st.binary(max_size=16))
    return data


# ---- 1 and 2: generated and mutated messages against llhttp ---------------------------------


def _as_the_model_says(answer: tuple[Any, ...] | None, expect: bool | None,
                       what: str) -> None:
    """`expect`: True must be taken, False handed over, None either (llhttp decides)."""
    event("taken" if answer is not None else "handed over")
    if expect is True:
        assert answer is not None, f"a plain message was handed over: {what}"
    elif expect is False:
        assert answer is None, f"taken but outside the subset: {what}"


@needs_relay
@SETTINGS
@given(requests())
def test_generated_requests_agree_with_llhttp_and_the_model(case: Any) -> None:
    data, limit, expect = case
    _as_the_model_says(check_request(data, limit), expect, f"{data!r} (max {limit})")


@needs_relay
@settings(SETTINGS, max_examples=300)
@given(requests(clean=True))
def test_plain_requests_are_all_taken(case: Any) -> None:
    data, limit, expect = case
    assert expect is True, data  # the clean strategy only makes plain requests
    assert check_request(data, limit) is not None, data


@needs_relay
@SETTINGS
@given(mutated(requests(clean=True)), _limits())
def test_mutated_requests_agree_with_llhttp(data: bytes, limit: int) -> None:
    event("taken" if check_request(data, limit) is not None else "handed over")


@needs_relay
@SETTINGS
@given(responses())
def test_generated_responses_agree_with_llhttp_and_the_model(case: Any) -> None:
    data, expect = case
    _as_the_model_says(check_response(data), expect, repr(data))


@needs_relay
@settings(SETTINGS, max_examples=300)
@given(responses(clean=True))
def test_plain_responses_are_all_taken(case: Any) -> None:
    data, expect = case
    assert expect is True, data
    assert check_response(data) is not None, data


@needs_relay
@SETTINGS
@given(mutated(responses(clean=True)))
def test_mutated_responses_agree_with_llhttp(data: bytes) -> None:
    event("taken" if check_response(data) is not None else "handed over")


# ---- typical traffic, decoded exactly -------------------------------------------------------

TYPICAL_REQUESTS = [
    pytest.param(
        b"POST /function/figlet HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"User-Agent: Go-http-client/1.1\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
        b"Accept-Encoding: gzip\r\n\r\nhello",
        (b"POST", b"/function/figlet", 1, True,
         b"host: 127.0.0.1:8080\r\nuser-agent: Go-http-client/1.1\r\ncontent-length: 5\r\n"
         b"content-type: text/plain\r\naccept-encoding: gzip\r\n", b"hello", 5, None,
         b"127.0.0.1:8080", 0), id="faas-cli-invoke"),
    pytest.param(
        b"GET /function/env.openfaas-fn/a/b?x=1&y=%20 HTTP/1.1\r\nHost: localhost:8080\r\n"
        b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        (b"GET", b"/function/env.openfaas-fn/a/b?x=1&y=%20", 1, True,
         b"host: localhost:8080\r\nuser-agent: curl/8.5.0\r\naccept: */*\r\n", b"", -1, None,
         b"localhost:8080", 0), id="curl-get"),
    pytest.param(
        b"POST /function/echo HTTP/1.1\r\nHost: gw\r\nUser-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\nX-Call-Id: 3f2a\r\nContent-Type: application/json\r\n"
        b"Content-Length: 13\r\n\r\n{\"a\": [1, 2]}",
        (b"POST", b"/function/echo", 1, True,
         b"host: gw\r\nuser-agent: curl/8.5.0\r\naccept: */*\r\nx-call-id: 3f2a\r\n"
         b"content-type: application/json\r\ncontent-length: 13\r\n", b"{\"a\": [1, 2]}", 13,
         b"3f2a", b"gw", 0), id="curl-post-json-call-id"),
    pytest.param(
        b"GET /function/echo HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: hey/0.0.1\r\n"
        b"Content-Type: text/html\r\nAccept-Encoding: gzip\r\n\r\n",
        (b"GET", b"/function/echo", 1, True,
         b"host: localhost:8080\r\nuser-agent: hey/0.0.1\r\ncontent-type: text/html\r\n"
         b"accept-encoding: gzip\r\n", b"", -1, None, b"localhost:8080", 0), id="hey"),
    pytest.param(
        b"GET /function/echo HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: localhost:8080\r\n"
        b"User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
        (b"GET", b"/function/echo", 0, True,
         b"host: localhost:8080\r\nuser-agent: ApacheBench/2.3\r\naccept: */*\r\n", b"", -1,
         None, b"localhost:8080", 0), id="ab-keep-alive-http10"),
    pytest.param(
        b"GET /function/echo HTTP/1.0\r\nHost: localhost\r\n\r\n",
        (b"GET", b"/function/echo", 0, False, b"host: localhost\r\n", b"", -1, None,
         b"localhost", 0), id="http10-closes"),
    pytest.param(
        b"GET /function/echo HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
        (b"GET", b"/function/echo", 1, True, b"host: localhost:8080\r\n", b"", -1, None,
         b"localhost:8080", 0), id="wrk"),
    pytest.param(
        b"POST /function/x/sub/path HTTP/1.1\r\nHost: gw\r\n"
        b"User-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
        b"Accept: */*\r\nConnection: keep-alive\r\nContent-Length: 2\r\n"
        b"Content-Type: application/json\r\n\r\n{}",
        (b"POST", b"/function/x/sub/path", 1, True,
         b"host: gw\r\nuser-agent: python-requests/2.32.3\r\naccept-encoding: gzip, deflate\r\n"
         b"accept: */*\r\ncontent-length: 2\r\ncontent-type: application/json\r\n", b"{}", 2,
         None, b"gw", 0), id="python-requests"),
    pytest.param(
        b"PUT /function/store HTTP/1.1\r\nHost: api.example.com\r\n"
        b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: api.example.com\r\n"
        b"X-Real-IP: 203.0.113.7\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
        (b"PUT", b"/function/store", 1, False,
         b"host: api.example.com\r\nx-forwarded-for: 203.0.113.7\r\n"
         b"x-forwarded-host: api.example.com\r\nx-real-ip: 203.0.113.7\r\n"
         b"content-length: 3\r\n", b"abc", 3, None, b"api.example.com", 3),
        id="behind-nginx-close"),
    pytest.param(
        b"POST /function/pay HTTP/1.1\r\nhost: gw\r\nidempotency-key: k1\r\n"
        b"x-idempotency-key: k2\r\ncontent-length:0\r\n\r\n",
        (b"POST", b"/function/pay", 1, True,
         b"host: gw\r\nidempotency-key: k1\r\nx-idempotency-key: k2\r\ncontent-length: 0\r\n",
         b"", 0, None, b"gw", 4), id="idempotency-keys"),
    pytest.param(
        b"OPTIONS /function/cors?x HTTP/1.1\r\nHOST: gw\r\nTE: trailers\r\n"
        b"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\nTrailer: X-Sum\r\n"
        b"Origin: https://a.example\r\nX-Empty:\r\nX-Tabs:\t a\tb\r\n\r\n",
        (b"OPTIONS", b"/function/cors?x", 1, True,
         b"host: gw\r\norigin: https://a.example\r\nx-empty: \r\nx-tabs: a\tb\r\n", b"", -1,
         None, b"gw", 0), id="hop-by-hop-dropped"),
    pytest.param(
        b"DELETE /function/x HTTP/1.1\r\nConnection: CLOSE\r\n\r\n",
        (b"DELETE", b"/function/x", 1, False, b"", b"", -1, None, None, 0),
        id="no-host-close"),
    pytest.param(
        b"HEAD /function/x HTTP/1.1\r\nContent-Length: 00004\r\n\r\n\x00\xff\r\n",
        (b"HEAD", b"/function/x", 1, True, b"content-length: 00004\r\n", b"\x00\xff\r\n", 4,
         None, None, 0), id="binary-body-leading-zeros"),
]


@needs_relay
@pytest.mark.parametrize(("data", "want"), TYPICAL_REQUESTS)
def test_typical_requests_are_taken_and_decoded_exactly(data: bytes, want: tuple[Any, ...]
                                                        ) -> None:
    assert check_request(data, LIMIT) == want


TYPICAL_RESPONSES = [
    pytest.param(
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Date: Mon, 30 Nov 2026 10:00:00 GMT\r\nX-Duration-Seconds: 0.001234\r\n\r\n"
        b"Hello world\n",
        (200, True, b"content-length: 12\r\ncontent-type: text/plain; charset=utf-8\r\n"
         b"date: Mon, 30 Nov 2026 10:00:00 GMT\r\nx-duration-seconds: 0.001234\r\n",
         b"Hello world\n"), id="of-watchdog"),
    pytest.param(
        b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.9\r\nContent-Length: 2\r\n\r\nok",
        (200, False, b"server: SimpleHTTP/0.6 Python/3.11.9\r\ncontent-length: 2\r\n", b"ok"),
        id="http10-server"),
    pytest.param(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
        b"Content-Length: 0\r\n\r\n",
        (200, True, b"content-length: 0\r\n", b""), id="http10-keep-alive"),
    pytest.param(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
        b"boom",
        (500, False, b"content-length: 4\r\n", b"boom"), id="500-close"),
    pytest.param(
        b"HTTP/1.1 202 Accepted\r\nX-Call-Id: 77\r\nX-Call-Id: 78\r\nContent-Length: 0\r\n\r\n",
        (202, True, b"x-call-id: 77\r\nx-call-id: 78\r\ncontent-length: 0\r\n", b""),
        id="202-call-id-twice-is-plain-in-responses"),
    pytest.param(
        b"HTTP/1.1 404 \r\ncontent-length:9\r\n\r\nnot found",
        (404, True, b"content-length: 9\r\n", b"not found"), id="empty-reason"),
]


@needs_relay
@pytest.mark.parametrize(("data", "want"), TYPICAL_RESPONSES)
def test_typical_responses_are_taken_and_decoded_exactly(data: bytes, want: tuple[Any, ...]
                                                         ) -> None:
    assert check_response(data) == want


# Shapes whose meaning hinges on a header api._relay passes over: whatever it answers must be
# what llhttp makes of them.
AGREE = [
    pytest.param(b"GET /f HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
                 id="proxy-connection-close-http11"),
    pytest.param(b"GET /f HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n",
                 id="proxy-connection-keep-alive-http10"),
    pytest.param(b"GET /f HTTP/1.0\r\nConnection: close\r\nProxy-Connection: keep-alive\r\n\r\n",
                 id="connection-close-and-proxy-connection-keep-alive"),
    pytest.param(b"GET /f HTTP/1.1\r\nTransfer_Encoding: chunked\r\n\r\n",
                 id="underscore-transfer-encoding-is-a-plain-header"),
    pytest.param(b"GET /f HTTP/1.1\r\nTE: chunked\r\n\r\n", id="te-header-is-hop"),
    pytest.param(b"POST /f HTTP/1.1\r\nContent-Length:  \t5\r\n\r\nhello", id="cl-leading-ows"),
    pytest.param(b"GET /f?a?b/c HTTP/1.1\r\n\r\n", id="question-marks-in-query"),
    pytest.param(b"GET /f/\"<>\\^`{|} HTTP/1.1\r\n\r\n", id="unusual-target-chars"),
]


@needs_relay
@pytest.mark.parametrize("data", AGREE)
def test_edge_requests_agree_with_llhttp(data: bytes) -> None:
    check_request(data, LIMIT)


@needs_relay
@pytest.mark.parametrize("data", [
    pytest.param(b"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n",
                 id="proxy-connection-close-http11"),
    pytest.param(b"HTTP/1.0 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                 id="proxy-connection-keep-alive-http10"),
    pytest.param(b"HTTP/1.1 200 a\tb\r\nContent-Length: 0\r\n\r\n", id="tab-in-reason"),
])
def test_edge_responses_agree_with_llhttp(data: bytes) -> None:
    check_response(data)


# ---- 3: what must be handed over, one rule each ---------------------------------------------

R = b"GET /function/f HTTP/1.1\r\n"
P = b"POST /function/f HTTP/1.1\r\n"
OK = b"HTTP/1.1 200 OK\r\n"

HAND_OVER_REQUESTS = [
    # partial messages, and anything after the message
    pytest.param(b"", id="empty"),
    pytest.param(b"GET /function/f HTTP/1.1", id="partial-request-line"),
    pytest.param(R + b"Host: a\r\n", id="partial-head"),
    pytest.param(R + b"Host: a\r\n\r", id="partial-blank-line"),
    pytest.param(P + b"Content-Length: 5\r\n\r\nabc", id="partial-body"),
    pytest.param(P + b"Content-Length: 3\r\n\r\nabcdef", id="body-longer-than-content-length"),
    pytest.param(P + b"\r\nabc", id="body-without-content-length"),
    pytest.param(R + b"\r\n" + R + b"\r\n", id="pipelined"),
    pytest.param(R + b"\r\n\r\n", id="trailing-crlf"),
    # body framing the relay leaves to llhttp: Transfer-Encoding in all its shapes
    pytest.param(P + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", id="te-chunked"),
    pytest.param(P + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="smuggle-cl-te"),
    pytest.param(P + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                 id="smuggle-te-cl"),
    pytest.param(P + b"Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n", id="te-identity"),
    pytest.param(P + b"TRANSFER-ENCODING: CHUNKED\r\n\r\n0\r\n\r\n", id="te-uppercase"),
    pytest.param(P + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", id="smuggle-te-obs-fold"),
    pytest.param(P + b"X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="smuggle-te-folded-into-previous"),
    pytest.param(P + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                 id="smuggle-te-space-before-colon"),
    pytest.param(P + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", id="chunked-negative-size"),
    pytest.param(P + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
                 id="chunked-hex-prefix-size"),
    pytest.param(P + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
                 id="chunked-size-trailing-space"),
    pytest.param(P + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n\r\n",
                 id="chunked-size-overflow"),
    # Content-Length that is not one plain number
    pytest.param(P + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", id="cl-twice-same"),
    pytest.param(P + b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabc",
                 id="smuggle-cl-twice-different"),
    pytest.param(P + b"Content-Length: 3\r\ncontent-length: 3\r\n\r\nabc", id="cl-twice-case"),
    pytest.param(P + b"Content-Length: 3, 3\r\n\r\nabc", id="cl-list"),
    pytest.param(P + b"Content-Length: +3\r\n\r\nabc", id="cl-plus"),
    pytest.param(P + b"Content-Length: -3\r\n\r\nabc", id="cl-minus"),
    pytest.param(P + b"Content-Length: 3 \r\n\r\nabc", id="cl-trailing-space"),
    pytest.param(P + b"Content-Length: 3\t\r\n\r\nabc", id="cl-trailing-tab"),
    pytest.param(P + b" Content-Length: 3\r\n\r\nabc", id="cl-leading-space-line"),
    pytest.param(P + b"Content-Length : 3\r\n\r\nabc", id="cl-space-before-colon"),
    pytest.param(P + b"Content-Length\t: 3\r\n\r\nabc", id="cl-tab-before-colon"),
    pytest.param(P + b"Content-Length: 0x3\r\n\r\nabc", id="cl-hex"),
    pytest.param(P + b"Content-Length: 3.0\r\n\r\nabc", id="cl-decimal"),
    pytest.param(P + b"Content-Length:\r\n\r\n", id="cl-empty"),
    pytest.param(P + b"Content-Length: \xd9\xa3\r\n\r\nabc", id="cl-non-ascii-digit"),
    pytest.param(P + b"Content-Length: 0000000000000003\r\n\r\nabc", id="cl-16-digits"),
    pytest.param(P + b"Content-Length: 99999999999999999999\r\n\r\n", id="cl-overflow"),
    pytest.param(P + b"Content-Length: 3\r\n 3\r\n\r\nabc", id="cl-obs-fold"),
    # headers the relay treats specially
    pytest.param(P + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", id="expect"),
    pytest.param(R + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", id="upgrade"),
    pytest.param(R + b"Upgrade: h2c\r\n\r\n", id="upgrade-alone"),
    pytest.param(R + b"Connection: upgrade\r\n\r\n", id="connection-upgrade"),
    pytest.param(R + b"Connection: close, keep-alive\r\n\r\n", id="connection-list"),
    pytest.param(R + b"Connection: keep-alive, Upgrade\r\n\r\n", id="connection-list-upgrade"),
    pytest.param(R + b"Connection:\r\n\r\n", id="connection-empty"),
    pytest.param(R + b"Connection: closed\r\n\r\n", id="connection-closed"),
    pytest.param(R + b"Connection: close \r\n\r\n", id="connection-trailing-space"),
    pytest.param(R + b"Connection: close\r\nConnection: close\r\n\r\n", id="connection-twice"),
    pytest.param(R + b"Connection: close\r\nconnection: keep-alive\r\n\r\n",
                 id="connection-twice-different"),
    pytest.param(R + b"Host: a\r\nHost: b\r\n\r\n", id="host-twice"),
    pytest.param(R + b"Host: a\r\nHOST: a\r\n\r\n", id="host-twice-same"),
    pytest.param(R + b"X-Call-Id: 1\r\nx-call-id: 2\r\n\r\n", id="call-id-twice"),
    pytest.param(R + b"Proxy-Connection: close\r\n\r\n", id="proxy-connection-close"),
    pytest.param(b"GET /function/f HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n",
                 id="proxy-connection-keep-alive"),
    # field syntax
    pytest.param(R + b"X-A: a\r\n b\r\n\r\n", id="obs-fold-space"),
    pytest.param(R + b"X-A: a\r\n\tb\r\n\r\n", id="obs-fold-tab"),
    pytest.param(R + b" X-A: a\r\n\r\n", id="first-line-starts-with-space"),
    pytest.param(R + b"X-A: caf\xc3\xa9\r\n\r\n", id="obs-text-in-value"),
    pytest.param(R + b"X-A: \x80\r\n\r\n", id="obs-text-0x80"),
    pytest.param(R + b"X-\xc3\xa9: a\r\n\r\n", id="obs-text-in-name"),
    pytest.param(R + b"X-A: a\x00b\r\n\r\n", id="nul-in-value"),
    pytest.param(R + b"X-A: a\x01\r\n\r\n", id="ctl-in-value"),
    pytest.param(R + b"X-A: a\x7f\r\n\r\n", id="del-in-value"),
    pytest.param(R + b"X-A: a\x0bb\r\n\r\n", id="vt-in-value"),
    pytest.param(R + b"X-A: a\x0cb\r\n\r\n", id="ff-in-value"),
    pytest.param(R + b"X-A: a\rb\r\n\r\n", id="bare-cr-in-value"),
    pytest.param(R + b"X-A: a\nb\r\n\r\n", id="bare-lf-in-value"),
    pytest.param(b"GET /function/f HTTP/1.1\nHost: a\n\n", id="bare-lf-line-endings"),
    pytest.param(R + b"Host: a\n\r\n", id="bare-lf-header-line"),
    pytest.param(R + b"Host: a\r\n\n", id="bare-lf-blank-line"),
    pytest.param(b"GET /function/f HTTP/1.1\n\r\n", id="bare-lf-request-line"),
    pytest.param(b"GET /function/f HTTP/1.1\r\r\n\r\n", id="bare-cr-request-line"),
    pytest.param(R + b"Host: a\r\r\n\r\n", id="bare-cr-header-line"),
    pytest.param(R + b"X-A: a \r\n\r\n", id="trailing-space-in-value"),
    pytest.param(R + b"X-A: a\t\r\n\r\n", id="trailing-tab-in-value"),
    pytest.param(R + b"Host : a\r\n\r\n", id="space-before-colon"),
    pytest.param(R + b"X-A\t: a\r\n\r\n", id="tab-before-colon"),
    pytest.param(R + b": a\r\n\r\n", id="empty-name"),
    pytest.param(R + b"X-A a\r\n\r\n", id="no-colon"),
    pytest.param(R + b"X(A): a\r\n\r\n", id="non-token-name"),
    pytest.param(R + b"X-A\x00: a\r\n\r\n", id="nul-in-name"),
    pytest.param(R + b"X-" + b"a" * 63 + b": a\r\n\r\n", id="name-over-64"),
    # request line
    pytest.param(b"get /function/f HTTP/1.1\r\n\r\n", id="lowercase-method"),
    pytest.param(b"Get /function/f HTTP/1.1\r\n\r\n", id="mixed-case-method"),
    pytest.param(b" /function/f HTTP/1.1\r\n\r\n", id="empty-method"),
    pytest.param(b"M-SEARCH /function/f HTTP/1.1\r\n\r\n", id="method-with-hyphen"),
    pytest.param(b"ABCDEFGHIJKLMNOPQ /function/f HTTP/1.1\r\n\r\n", id="method-over-16"),
    pytest.param(b"FOO /function/f HTTP/1.1\r\n\r\n", id="unknown-method-llhttp-refuses"),
    pytest.param(b"DESCRIBE /function/f HTTP/1.1\r\n\r\n", id="rtsp-method-llhttp-refuses"),
    pytest.param(b"CONNECT /function/f HTTP/1.1\r\n\r\n", id="connect-llhttp-upgrades"),
    pytest.param(b"PRI /function/f HTTP/1.1\r\n\r\n", id="pri-llhttp-waits-for-h2"),
    pytest.param(b"TRACE /function/f HTTP/1.1\r\n\r\n", id="method-not-for-invocations"),
    pytest.param(b"ABCDEFGHIJKLMNOP /function/f HTTP/1.1\r\n\r\n", id="unknown-16-letters"),
    pytest.param(b"GET  /function/f HTTP/1.1\r\n\r\n", id="two-spaces-after-method"),
    pytest.param(b"GET /function/f  HTTP/1.1\r\n\r\n", id="two-spaces-before-version"),
    pytest.param(b"GET\t/function/f HTTP/1.1\r\n\r\n", id="tab-after-method"),
    pytest.param(b"GET * HTTP/1.1\r\n\r\n", id="asterisk-target"),
    pytest.param(b"GET http://gw/function/f HTTP/1.1\r\n\r\n", id="absolute-target"),
    pytest.param(b"GET function/f HTTP/1.1\r\n\r\n", id="relative-target"),
    pytest.param(b"GET  HTTP/1.1\r\n\r\n", id="empty-target"),
    pytest.param(b"GET /function/f#x HTTP/1.1\r\n\r\n", id="fragment-in-target"),
    pytest.param(b"GET /function/f x HTTP/1.1\r\n\r\n", id="space-in-target"),
    pytest.param(b"GET /function/\xc3\xa9 HTTP/1.1\r\n\r\n", id="obs-text-in-target"),
    pytest.param(b"GET /function/f\x00 HTTP/1.1\r\n\r\n", id="nul-in-target"),
    pytest.param(b"GET /function/f\x7f HTTP/1.1\r\n\r\n", id="del-in-target"),
    pytest.param(b"GET /function/f HTTP/1.2\r\n\r\n", id="http-1.2"),
    pytest.param(b"GET /function/f HTTP/2.0\r\n\r\n", id="http-2.0"),
    pytest.param(b"GET /function/f HTTP/0.9\r\n\r\n", id="http-0.9"),
    pytest.param(b"GET /function/f HTTP/1.10\r\n\r\n", id="http-1.10"),
    pytest.param(b"GET /function/f http/1.1\r\n\r\n", id="lowercase-http"),
    pytest.param(b"GET /function/f HTTP/1.1 \r\n\r\n", id="space-after-version"),
    pytest.param(b"GET /function/f\r\n\r\n", id="http-0.9-style"),
]


@needs_relay
@pytest.mark.parametrize("data", HAND_OVER_REQUESTS)
def test_requests_outside_the_subset_are_handed_over(data: bytes) -> None:
    assert _relay.parse_request(data, LIMIT) is None


@needs_relay
@pytest.mark.parametrize(("data", "limit"), [
    pytest.param(R + b"\r\n", len(R) + 1, id="raw-head-one-over"),
    pytest.param(R + b"X-A: b\r\n\r\n", len(R) + 9, id="raw-head-with-header-one-over"),
    pytest.param(R + b"X:" + b"v" * 50 + b"\r\n\r\n", len(b"/function/f") + 1 + 50 + 4 - 1,
                 id="counted-head-one-over"),
    pytest.param(R + b"\r\n", 0, id="limit-zero"),
    pytest.param(R + b"\r\n", -1, id="limit-negative"),
])
def test_requests_over_the_head_limit_are_handed_over(data: bytes, limit: int) -> None:
    assert _relay.parse_request(data, limit) is None


HAND_OVER_RESPONSES = [
    pytest.param(b"", id="empty"),
    pytest.param(b"HTTP/1.1 200 OK", id="partial-status-line"),
    pytest.param(OK + b"Content-Length: 0\r\n", id="partial-head"),
    pytest.param(OK + b"Content-Length: 5\r\n\r\nabc", id="partial-body"),
    pytest.param(OK + b"Content-Length: 1\r\n\r\nabc", id="body-longer-than-content-length"),
    pytest.param(OK + b"Content-Length: 0\r\n\r\n" + OK + b"Content-Length: 0\r\n\r\n",
                 id="pipelined"),
    pytest.param(OK + b"\r\n", id="no-content-length"),
    pytest.param(OK + b"\r\nbody until close", id="read-until-close"),
    pytest.param(OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", id="te-chunked"),
    pytest.param(OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="cl-te"),
    pytest.param(OK + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\na", id="cl-twice-different"),
    pytest.param(OK + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\na", id="cl-twice-same"),
    pytest.param(OK + b"Content-Length: +1\r\n\r\na", id="cl-plus"),
    pytest.param(OK + b"Content-Length: 1 \r\n\r\na", id="cl-trailing-space"),
    pytest.param(OK + b"Content-Length : 1\r\n\r\na", id="cl-space-before-colon"),
    pytest.param(OK + b"Content-Length: 1\r\n 1\r\n\r\na", id="cl-obs-fold"),
    pytest.param(OK + b"Upgrade: websocket\r\nContent-Length: 0\r\n\r\n", id="upgrade"),
    pytest.param(OK + b"Connection: upgrade\r\nContent-Length: 0\r\n\r\n", id="connection-upgrade"),
    pytest.param(OK + b"Proxy-Connection: close\r\nContent-Length: 0\r\n\r\n",
                 id="proxy-connection"),
    pytest.param(OK + b"Connection: close\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                 id="connection-twice"),
    pytest.param(OK + b"X-A: \xff\r\nContent-Length: 0\r\n\r\n", id="obs-text-in-value"),
    pytest.param(OK + b"X-A: a\x00\r\nContent-Length: 0\r\n\r\n", id="nul-in-value"),
    pytest.param(OK + b"X-A: a \r\nContent-Length: 0\r\n\r\n", id="trailing-space-in-value"),
    pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", id="bare-lf-line-endings"),
    pytest.param(OK + b"Content-Length: 0\r\n\n", id="bare-lf-blank-line"),
    pytest.param(b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", id="bare-cr"),
    pytest.param(b"HTTP/1.1 200 caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", id="obs-text-reason"),
    pytest.param(b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n", id="nul-in-reason"),
    pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="status-100"),
    pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
                 id="status-101"),
    pytest.param(b"HTTP/1.1 103 Early Hints\r\nContent-Length: 0\r\n\r\n", id="status-103"),
    pytest.param(b"HTTP/1.1 199 x\r\nContent-Length: 0\r\n\r\n", id="status-199"),
    pytest.param(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", id="status-204"),
    pytest.param(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", id="status-304"),
    pytest.param(b"HTTP/1.1 600 x\r\nContent-Length: 0\r\n\r\n", id="status-600"),
    pytest.param(b"HTTP/1.1 999 x\r\nContent-Length: 0\r\n\r\n", id="status-999"),
    pytest.param(b"HTTP/1.1 000 x\r\nContent-Length: 0\r\n\r\n", id="status-000"),
    pytest.param(b"HTTP/1.1 20 x\r\nContent-Length: 0\r\n\r\n", id="status-two-digits"),
    pytest.param(b"HTTP/1.1 2000 x\r\nContent-Length: 0\r\n\r\n", id="status-four-digits"),
    pytest.param(b"HTTP/1.1 2x0 x\r\nContent-Length: 0\r\n\r\n", id="status-not-digits"),
    pytest.param(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", id="status-without-space"),
    pytest.param(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", id="http-2.0"),
    pytest.param(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", id="http-1.2"),
    pytest.param(b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", id="lowercase-http"),
    pytest.param(b"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", id="two-spaces"),
]


@needs_relay
@pytest.mark.parametrize("data", HAND_OVER_RESPONSES)
def test_responses_outside_the_subset_are_handed_over(data: bytes) -> None:
    assert _relay.parse_response(data) is None


# ---- 4: crash safety, sizes -----------------------------------------------------------------

PREFIXES = [R, P, OK, R + b"Host: a\r\n", P + b"Content-Length: 3\r\n",
            OK + b"Content-Length: 3\r\n", b"GET /", b"HTTP/1.1 2", b"GET /f HTTP/1."]
ANY_LIMIT = st.one_of(st.sampled_from([-(2**63), -1, 0, 1, 2, 10, 11, 16, 64, sys.maxsize]),
                      st.integers(0, 4096))


def _shaped(answer: Any, size: int) -> bool:
    return answer is None or (isinstance(answer, tuple) and len(answer) == size)


@needs_relay
@settings(SETTINGS, max_examples=500)
@given(st.binary(max_size=2048), ANY_LIMIT)
def test_arbitrary_bytes_never_raise(data: bytes, limit: int) -> None:
    assert _shaped(_relay.parse_request(data, limit), 10)
    assert _shaped(_relay.parse_response(data), 4)


@needs_relay
@settings(SETTINGS, max_examples=500)
@given(st.sampled_from(PREFIXES), st.binary(max_size=256), ANY_LIMIT)
def test_a_plausible_start_then_arbitrary_bytes(prefix: bytes, tail: bytes, limit: int) -> None:
    data = prefix + tail
    answer = _relay.parse_request(data, limit)
    assert _shaped(answer, 10)
    if answer is not None:
        check_request(data, limit)
    check_response(data)


@needs_relay
def test_a_one_mebibyte_body() -> None:
    body = bytes(range(256)) * 4096
    request = P + b"Content-Length: %d\r\n\r\n" % len(body) + body
    taken = check_request(request, LIMIT)
    assert taken is not None and taken[5] == body
    response = OK + b"Content-Length: %d\r\n\r\n" % len(body) + body
    answered = check_response(response)
    assert answered is not None and answered[3] == body
    assert _relay.parse_request(request[:-1], LIMIT) is None
    assert _relay.parse_response(response + b"x") is None


@needs_relay
def test_one_mebibyte_of_junk() -> None:
    junk = bytes(range(256)) * 4096
    for data in (junk, b"a" * (1 << 20), b"GET /" + b"a" * (1 << 20), R + b"X-A: " + junk,
                 R + b"X-A: b\r\n" * 131072):
        assert _relay.parse_request(data, 1 << 21) is None
        assert _relay.parse_request(data, sys.maxsize) is None
        assert _relay.parse_response(data) is None


@needs_relay
def test_one_mebibyte_of_headers() -> None:
    lines = b"".join(b"X-H%06d: %s\r\n" % (i, b"v" * 100) for i in range(9300))
    request = R + lines + b"\r\n"
    assert len(request) > 1 << 20
    answer = check_request(request, 1 << 21)
    assert answer is not None and answer[4].count(b"\r\n") == 9300
    assert _relay.parse_request(request, LIMIT) is None
    response = OK + lines + b"Content-Length: 0\r\n\r\n"
    assert check_response(response) is not None


def _counted(target: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    return len(target) + sum(len(name) + len(value) + 4 for name, value in headers)


@needs_relay
@pytest.mark.parametrize("separator", [b": ", b":"], ids=["raw-bytes-decide", "counted-decide"])
def test_a_head_right_at_the_limit(separator: bytes) -> None:
    """Taken at exactly max(raw head, counted head), handed over one byte below."""
    target = b"/function/f"
    headers = [(b"X-H%02d" % i, b"v" * (i * 7 % 50)) for i in range(40)]
    headers.append((b"Content-Length", b"10"))
    head = b"GET " + target + b" HTTP/1.1\r\n" + b"".join(
        name + separator + value + b"\r\n" for name, value in headers) + b"\r\n"
    data = head + b"0123456789"
    raw, counted = len(head), _counted(target, headers)
    assert (raw > counted) == (separator == b": ")
    need = max(raw, counted)
    assert check_request(data, need) is not None
    assert check_request(data, need + 1) is not None
    assert _relay.parse_request(data, need - 1) is None


# ---- relay_request: the request to send on, assembled in C ----------------------------------

FF = b"x-forwarded-for: 10.0.0.7:41000\r\n"
CID = b"c0ffee00-0000-4000-8000-000000000001"
SERVED = b"x-served-by: docker-faas/test\r\n"
_START = re.compile(rb"x-start-time: (\d+)\r\n")


def _assembled(parsed: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """What relay_request must answer for a request parse_request took: the relay's rule
    (api/fastpath.py FunctionExchange.forward) written out again, independently."""
    method, target, minor, keep_alive, lines, body, length, call_id, host, flags = parsed
    if not target.startswith(b"/function/"):
        return None
    path, _, query = target.partition(b"?")
    segment, _, suffix = path[len(b"/function/"):].partition(b"/")
    ours = b""
    if call_id is None:
        ours += b"x-call-id: " + CID + b"\r\n"
    ours += b"x-start-time: T\r\n"
    if not flags & 1:
        ours += FF
    if host is None:
        name, dot, _ = segment.rpartition(b".")
        ours += b"host: " + (name if dot else segment) + b"\r\n"
    elif not flags & 2:
        ours += b"x-forwarded-host: " + host + b"\r\n"
    upstream = b"%s /%s%s HTTP/1.1\r\n%s%s\r\n%s" % (
        method, suffix, b"?" + query if query else b"", lines, ours, body)
    extra = b"x-start-time: T\r\n" + SERVED + (
        b"x-call-id: " + CID + b"\r\n" if call_id is None else b"")
    return method, segment, minor, keep_alive, upstream, extra, length, flags


def check_relay(data: bytes, limit: int) -> None:
    parsed = _relay.parse_request(data, limit)
    got = _relay.relay_request(data, limit, FF, CID, SERVED)
    want = None if parsed is None else _assembled(parsed)
    if want is None:
        assert got is None, data
        return
    assert got is not None, data
    # the start time is the clock's: the same value in both places, and a plausible one
    starts = _START.findall(got[4]) + _START.findall(got[5])
    assert len(starts) == 2 and starts[0] == starts[1] and int(starts[0]) > 1.7e18, got
    got = (*got[:4], _START.sub(b"x-start-time: T\r\n", got[4], count=1),
           _START.sub(b"x-start-time: T\r\n", got[5]), *got[6:])
    assert got == want, data


@needs_relay
@SETTINGS
@given(requests())
def test_relay_request_assembles_what_the_relay_rule_says(case: Any) -> None:
    data, limit, _ = case
    check_relay(data, limit)


@needs_relay
@SETTINGS
@given(mutated(requests(clean=True)), _limits())
def test_relay_request_on_mutated_requests(data: bytes, limit: int) -> None:
    check_relay(data, limit)


@needs_relay
@pytest.mark.parametrize("data", [
    b"POST /function/fn HTTP/1.1\r\nHost: gw:8080\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /function/fn.ns/a/b?x=1&y=2 HTTP/1.1\r\nX-Call-Id: mine\r\n\r\n",
    b"GET /function/fn/? HTTP/1.1\r\nX-Forwarded-For: a\r\nX-Forwarded-Host: b\r\nHost: c\r\n\r\n",
    b"DELETE /function/a.b.c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /function/ HTTP/1.1\r\n\r\n",
    b"GET /function/fn?q HTTP/1.1\r\n\r\n",
    b"GET /system/functions HTTP/1.1\r\n\r\n",
    b"GET /functionx HTTP/1.1\r\n\r\n",
])
def test_relay_request_examples(data: bytes) -> None:
    check_relay(data, LIMIT)


@needs_relay
def test_relay_request_refuses_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        _relay.relay_request(b"GET /function/f HTTP/1.1\r\n\r\n", LIMIT, "str", CID, SERVED)
    with pytest.raises(TypeError):
        _relay.relay_request(b"GET /function/f HTTP/1.1\r\n\r\n", LIMIT)


# ---- relay_response: the answer to give back, assembled in C --------------------------------

TABLE_11 = [b"HTTP/1.1 %d R%d\r\n" % (code, code) for code in range(600)]
EXTRA = b"x-start-time: 1\r\nx-served-by: t\r\nx-call-id: c\r\n"
TAILS = {0: b"connection: close\r\n\r\n", 1: b"connection: keep-alive\r\n\r\n", 2: b"\r\n"}


def check_relay_response(data: bytes, connection: int) -> None:
    parsed = _relay.parse_response(data)
    got = _relay.relay_response(data, TABLE_11, connection, EXTRA)
    if parsed is None:
        assert got is None, data
        return
    status, keep_alive, lines, body = parsed
    assert got == (status, keep_alive,
                   TABLE_11[status] + lines + EXTRA + TAILS[connection] + body), data


@needs_relay
@SETTINGS
@given(responses(), st.sampled_from([0, 1, 2]))
def test_relay_response_assembles_status_headers_ours_and_body(case: Any, connection: int
                                                              ) -> None:
    check_relay_response(case[0], connection)


@needs_relay
@SETTINGS
@given(mutated(responses(clean=True)), st.sampled_from([0, 1, 2]))
def test_relay_response_on_mutated_responses(data: bytes, connection: int) -> None:
    check_relay_response(data, connection)


@needs_relay
def test_relay_response_refuses_wrong_arguments() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(TypeError):
        _relay.relay_response(ok, tuple(TABLE_11), 2, EXTRA)
    with pytest.raises(ValueError):  # no line for the status
        _relay.relay_response(ok, TABLE_11[:100], 2, EXTRA)

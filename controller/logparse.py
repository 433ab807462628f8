"""Turning the engine's log stream into function log lines — pure, no I/O, no clock.

Three steps, each a plain value or state machine so they can be tested byte by byte:

* `FrameParser` cuts the bytes of `GET /containers/{id}/logs` into messages. A container
  without a TTY answers with multiplexed frames (an 8-byte header: stream type, three zero
  bytes, big-endian payload length); a TTY container answers with raw text. The first byte
  tells them apart: a frame starts with a stream type (0-3), a timestamped raw line with a
  digit. The engine writes one frame per log message, but the bytes may arrive cut anywhere.
* `Assembler` turns messages (`<RFC3339Nano timestamp> <text>`) into `Line`s. The engine
  splits lines longer than 16 KiB into several messages with the same timestamp, only the
  last ending in a newline; they are joined again. It also keeps the `Cursor`: how far the
  stream has been stored, so a reader that reconnects (`since=<cursor.ts>`) skips exactly
  the messages it already has — no line lost, none stored twice.
* `parse_rfc3339` / `format_rfc3339nano` convert between text and integer nanoseconds
  since the epoch (UTC), the one time representation the log store and the API share.
"""

from __future__ import annotations

import calendar
import re
import struct
from datetime import UTC, datetime

import attrs

STDIN, STDOUT, STDERR, SYSTEM = 0, 1, 2, 3  # the engine's stream types; SYSTEM = its errors
MAX_LINE = 256 * 1024  # a longer line is stored in pieces of this size (bytes)
_HEADER = struct.Struct(">BxxxL")
_NS = 1_000_000_000

# ---------------------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch for an RFC 3339 time (what Go's time.RFC3339 accepts).

    Fractional seconds are optional and may have any number of digits (beyond nine they
    are truncated); the zone is `Z` or `±hh:mm`. Anything else raises ValueError.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    # datetime checks the ranges (month 1-12, day within the month, hour < 24, ...)
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    seconds = calendar.timegm(moment.utctimetuple())
    zone = match.group(8)
    if zone not in ("Z", "z"):
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r}: bad zone offset")
        offset = (hours * 60 + minutes) * 60
        seconds -= offset if zone[0] == "+" else -offset
    fraction = (match.group(7) or "")[:9].ljust(9, "0")
    return seconds * _NS + int(fraction)


def format_rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, `Z` zone."""
    seconds, fraction = divmod(ns, _NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def since_param(ns: int) -> str:
    """The engine's `since=` form: seconds with a nine-digit fraction (`0` = everything)."""
    if ns <= 0:
        return "0"
    seconds, fraction = divmod(ns, _NS)
    return f"{seconds}.{fraction:09d}"


# ---------------------------------------------------------------------------- frames


class FrameParser:
    """Bytes in, `(stream, payload)` messages out, whatever the chunk boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._raw: bool | None = None  # undecided until the first byte

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        if self._raw is None and self._buffer:
            self._raw = self._buffer[0] > SYSTEM
        if self._raw:
            return self._raw_lines()
        messages = []
        start = 0
        buffer = self._buffer
        while len(buffer) - start >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            messages.append((stream, bytes(buffer[start + _HEADER.size:end])))
            start = end
        del buffer[:start]
        return messages

    def _raw_lines(self) -> list[tuple[int, bytes]]:
        cut = self._buffer.rfind(b"\n") + 1
        if not cut:
            return []
        lines = bytes(self._buffer[: cut - 1]).split(b"\n")  # not splitlines: \r is text
        del self._buffer[:cut]
        return [(STDOUT, line + b"\n") for line in lines]

    def close(self) -> list[tuple[int, bytes]]:
        """At the end of the stream: a raw stream's unfinished last line; a cut frame is
        dropped (the cursor never passed it, so the next read gets it again)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [(STDOUT, rest)] if self._raw and rest else []


# ---------------------------------------------------------------------------- lines


@attrs.frozen
class Line:
    ts: int  # nanoseconds since the epoch, the engine's time for the (first part of the) line
    stream: int  # STDOUT or STDERR
    text: str  # as the function wrote it, without the newline


@attrs.frozen
class Pending:
    """The start of a line whose end has not arrived yet."""

    stream: int
    ts: int
    data: bytes


@attrs.frozen
class Cursor:
    """Everything up to here is stored: all messages stamped before `ts`, the first `count`
    stamped exactly `ts`, and the unfinished lines in `pending` (kept with the cursor)."""

    ts: int = 0
    count: int = 0
    pending: tuple[Pending, ...] = ()


def split_timestamp(payload: bytes) -> tuple[int | None, bytes]:
    """`<timestamp> <text>` → (ns, text); (None, payload) when there is no timestamp."""
    head, sep, rest = payload.partition(b" ")
    if sep and 20 <= len(head) <= 40:
        try:
            return parse_rfc3339(head.decode("ascii")), rest
        except (ValueError, UnicodeDecodeError):
            pass
    return None, payload


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class Assembler:
    """Messages of one container in, complete lines out; one instance per connection.

    Built from the stored cursor each time the stream is (re)opened with
    `since=since_param(cursor.ts)`: the engine then repeats the messages stamped exactly
    `cursor.ts`, and the first `cursor.count` of those are skipped.
    """

    def __init__(self, cursor: Cursor) -> None:
        self._ts = cursor.ts
        self._count = cursor.count
        self._skip_ts, self._skip = cursor.ts, cursor.count
        self._pending = {p.stream: p for p in cursor.pending}
        self.errors: list[str] = []  # the engine's own complaints (stream type 3)

    @property
    def cursor(self) -> Cursor:
        pending = tuple(self._pending[s] for s in sorted(self._pending))
        return Cursor(self._ts, self._count, pending)

    def feed(self, stream: int, payload: bytes) -> list[Line]:
        if stream == SYSTEM:
            self.errors.append(_decode(payload).rstrip("\n"))
            return []
        if stream not in (STDOUT, STDERR):
            return []
        ts, data = split_timestamp(payload)
        if ts is None:
            ts = self._ts  # not expected with timestamps=1; keep the order we have
        elif self._skip and ts == self._skip_ts:
            self._skip -= 1  # a repeat of a message stored before the reconnect
            return []
        if ts > self._ts:
            self._ts, self._count = ts, 1
        elif ts == self._ts:
            self._count += 1
        # an earlier stamp (stdout and stderr are stamped independently) moves nothing
        return self._lines(stream, ts, data)

    def _lines(self, stream: int, ts: int, data: bytes) -> list[Line]:
        pending = self._pending.pop(stream, None)
        if pending is not None:
            ts, data = pending.ts, pending.data + data
        *complete, rest = data.split(b"\n")
        lines = [Line(ts, stream, _decode(part)) for part in complete]
        while len(rest) > MAX_LINE:
            lines.append(Line(ts, stream, _decode(rest[:MAX_LINE])))
            rest = rest[MAX_LINE:]
        if rest:
            self._pending[stream] = Pending(stream, ts, rest)
        return lines

    def finish(self) -> list[Line]:
        """The stream is over for good (the container stopped): unfinished lines are lines."""
        lines = [Line(p.ts, p.stream, _decode(p.data)) for p in self._pending.values()]
        self._pending.clear()
        return sorted(lines, key=lambda line: (line.ts, line.stream))

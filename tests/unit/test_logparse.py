"""The engine's log stream → lines: frames, timestamps, split lines and resuming."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.logparse import (
    MAX_LINE,
    STDERR,
    STDOUT,
    SYSTEM,
    Assembler,
    Cursor,
    FrameParser,
    Line,
    format_rfc3339nano,
    parse_rfc3339,
    since_param,
    split_timestamp,
)

NS = 1_000_000_000
T0 = 1_796_000_000 * NS  # 2026-11-30


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def stamped(ts: int, text: bytes) -> bytes:
    """What the engine sends with timestamps=1 (a fixed nine-digit fraction)."""
    seconds, fraction = divmod(ts, NS)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{fraction:09d}Z ".encode() + text


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def feed_all(parser: FrameParser, pieces: list[bytes]) -> list[tuple[int, bytes]]:
    return [m for piece in pieces for m in parser.feed(piece)] + parser.close()


# ---------------------------------------------------------------------------- time

def test_formats_like_go_rfc3339nano() -> None:
    assert format_rfc3339nano(parse_rfc3339("2023-07-04T16:32:23.380573646Z")) == \
        "2023-07-04T16:32:23.380573646Z"
    assert format_rfc3339nano(parse_rfc3339("2023-07-04T16:32:23.380Z")) == \
        "2023-07-04T16:32:23.38Z"  # trailing zeros dropped, as Go does
    assert format_rfc3339nano(parse_rfc3339("2023-07-04T16:32:23Z")) == "2023-07-04T16:32:23Z"
    assert format_rfc3339nano(0) == "1970-01-01T00:00:00Z"


def test_parses_offsets_and_long_fractions() -> None:
    utc = parse_rfc3339("2023-07-04T16:32:23Z")
    assert parse_rfc3339("2023-07-04T18:32:23+02:00") == utc
    assert parse_rfc3339("2023-07-04T15:02:23-01:30") == utc
    assert parse_rfc3339("2023-07-04t16:32:23z") == utc
    assert parse_rfc3339("2023-07-04T16:32:23.1234567891234Z") == utc + 123_456_789


@pytest.mark.parametrize("text", [
    "", "yesterday", "2023-07-04", "2023-07-04 16:32:23Z", "2023-07-04T16:32:23",
    "2023-13-01T00:00:00Z", "2023-02-30T00:00:00Z", "2023-07-04T24:00:00Z",
    "2023-07-04T16:32:60Z", "2023-07-04T16:32:23+25:00", "2023-07-04T16:32:23.Z",
    " 2023-07-04T16:32:23Z",
])
def test_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_format_then_parse_is_identity(ns: int) -> None:
    assert parse_rfc3339(format_rfc3339nano(ns)) == ns


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=2**62))
def test_engine_stamps_sort_like_time(a: int, b: int) -> None:
    ta, _ = split_timestamp(stamped(a, b"x"))
    tb, _ = split_timestamp(stamped(b, b"x"))
    assert (ta, tb) == (a, b)


def test_since_param_is_seconds_with_nine_digits() -> None:
    assert since_param(0) == "0"
    assert since_param(1500 * NS + 123) == "1500.000000123"


def test_split_timestamp_without_one_keeps_the_payload() -> None:
    assert split_timestamp(b"hello world\n") == (None, b"hello world\n")
    assert split_timestamp(stamped(T0, b"a b\n")) == (T0, b"a b\n")


# ---------------------------------------------------------------------------- frames

messages = st.lists(
    st.tuples(st.sampled_from([STDOUT, STDERR, SYSTEM]), st.binary(max_size=300)), max_size=12
)


@given(messages, st.lists(st.integers(min_value=0), max_size=20))
def test_frames_cut_anywhere_parse_to_the_same_messages(
    msgs: list[tuple[int, bytes]], points: list[int]
) -> None:
    data = b"".join(frame(s, p) for s, p in msgs)
    assert feed_all(FrameParser(), cut(data, points)) == msgs


@given(st.lists(st.binary(min_size=1, max_size=80).filter(lambda b: b"\n" not in b),
                min_size=1, max_size=10),
       st.lists(st.integers(min_value=0), max_size=20))
def test_a_tty_stream_is_split_into_lines(lines: list[bytes], points: list[int]) -> None:
    # a raw (TTY) stream with timestamps starts with a digit; without frames it is all stdout
    data = b"".join(stamped(T0 + i, line) + b"\n" for i, line in enumerate(lines))
    got = feed_all(FrameParser(), cut(data, points))
    assert got == [(STDOUT, stamped(T0 + i, line) + b"\n") for i, line in enumerate(lines)]


def test_a_cut_frame_at_the_end_is_dropped_and_a_raw_tail_kept() -> None:
    parser = FrameParser()
    assert parser.feed(frame(STDOUT, b"whole") + frame(STDOUT, b"cut off")[:10]) == \
        [(STDOUT, b"whole")]
    assert parser.close() == []
    raw = FrameParser()
    assert raw.feed(b"2026 no newline") == []
    assert raw.close() == [(STDOUT, b"2026 no newline")]


# ---------------------------------------------------------------------------- lines

texts = st.text(st.characters(exclude_characters="\n", exclude_categories=("Cs",)),
                max_size=60)


@st.composite
def engine_messages(draw: st.DrawFn) -> tuple[list[Line], list[tuple[int, bytes]]]:
    """Lines as a function wrote them, and the messages the engine sends for them: each line
    in one or more pieces with one timestamp, stamps rising (several lines may share one)."""
    lines: list[Line] = []
    msgs: list[tuple[int, bytes]] = []
    ts = T0
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        ts += draw(st.sampled_from([0, 1, 1000, NS]))
        stream = draw(st.sampled_from([STDOUT, STDERR]))
        text = draw(texts)
        lines.append(Line(ts, stream, text))
        data = text.encode() + b"\n"
        cuts = sorted(set(draw(st.lists(st.integers(1, max(len(data) - 1, 1)), max_size=3))))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        msgs.extend((stream, stamped(ts, piece)) for piece in pieces if piece)
    return lines, msgs


def assemble(assembler: Assembler, msgs: list[tuple[int, bytes]]) -> list[Line]:
    return [line for stream, payload in msgs for line in assembler.feed(stream, payload)]


@settings(deadline=None)
@given(engine_messages())
def test_pieces_of_a_line_are_joined(case: tuple[list[Line], list[tuple[int, bytes]]]) -> None:
    lines, msgs = case
    assembler = Assembler(Cursor())
    assert assemble(assembler, msgs) + assembler.finish() == lines


@given(engine_messages(), st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_resuming_from_the_cursor_loses_and_repeats_nothing(
    case: tuple[list[Line], list[tuple[int, bytes]]], breaks: list[int]
) -> None:
    """Read part of the stream, reconnect with since=cursor (the engine resends every message
    stamped at or after it), and again: the lines are those of one unbroken read."""
    lines, msgs = case
    stamps = [split_timestamp(payload)[0] or 0 for _, payload in msgs]
    got: list[Line] = []
    cursor, position = Cursor(), 0
    for stop in [*sorted(min(b, len(msgs)) for b in breaks), len(msgs)]:
        assembler = Assembler(cursor)
        # the engine answers `since`: the whole log from the first message stamped >= since
        start = next((i for i, ts in enumerate(stamps) if ts >= cursor.ts), len(msgs))
        assert start <= position  # nothing unread is skipped by the engine's filter
        got += assemble(assembler, msgs[start:stop])
        cursor, position = assembler.cursor, stop
    got += assembler.finish()
    assert got == lines


def test_stdout_and_stderr_pieces_do_not_mix() -> None:
    assembler = Assembler(Cursor())
    out = assembler.feed(STDOUT, stamped(T0, b"out-a"))
    err = assembler.feed(STDERR, stamped(T0 + 1, b"err\n"))
    out += assembler.feed(STDOUT, stamped(T0, b"out-b\n"))
    assert err == [Line(T0 + 1, STDERR, "err")]
    assert out == [Line(T0, STDOUT, "out-aout-b")]


def test_earlier_stamps_are_kept_and_the_cursor_stays_at_the_latest() -> None:
    assembler = Assembler(Cursor())
    assert assemble(assembler, [(STDERR, stamped(T0 + 5, b"b\n")),
                                (STDOUT, stamped(T0 + 3, b"a\n"))]) == [
        Line(T0 + 5, STDERR, "b"), Line(T0 + 3, STDOUT, "a")]
    assert assembler.cursor == Cursor(T0 + 5, 1)


def test_unfinished_line_survives_in_the_cursor_and_finish_emits_it() -> None:
    first = Assembler(Cursor())
    assert first.feed(STDOUT, stamped(T0, b"no newline yet")) == []
    cursor = first.cursor
    assert cursor.count == 1 and cursor.pending[0].data == b"no newline yet"
    second = Assembler(cursor)
    assert second.feed(STDOUT, stamped(T0, b"no newline yet")) == []  # the repeat, skipped
    assert second.finish() == [Line(T0, STDOUT, "no newline yet")]


def test_overlong_lines_are_stored_in_pieces() -> None:
    assembler = Assembler(Cursor())
    lines = assembler.feed(STDOUT, stamped(T0, b"x" * (2 * MAX_LINE + 5)))
    assert [len(line.text) for line in lines] == [MAX_LINE, MAX_LINE]
    assert [len(line.text) for line in assembler.finish()] == [5]


def test_engine_errors_and_bad_bytes() -> None:
    assembler = Assembler(Cursor())
    assert assembler.feed(SYSTEM, b"Error grabbing logs: boom\n") == []
    assert assembler.errors == ["Error grabbing logs: boom"]
    assert assembler.feed(STDOUT, stamped(T0, b"caf\xe9\n")) == [Line(T0, STDOUT, "caf\ufffd")]
    assert assembler.feed(0, stamped(T0, b"stdin?\n")) == []

"""The SSE parser must give the same events however the bytes are split."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_trio.adapters.sse import SSEParser
from gateway_trio.errors import UpstreamError

ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b": keep-alive comment\n\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"text":"Hi"}}\n\n'
)


def feed_all(chunks: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    parser = SSEParser()
    events: list[tuple[bytes | None, bytes]] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_single_data_events() -> None:
    events = feed_all([b'data: {"a":1}\n\ndata: [DONE]\n\n'])
    assert events == [(None, b'{"a":1}'), (None, b"[DONE]")]


def test_event_names_and_comments() -> None:
    assert feed_all([ANTHROPIC_STREAM]) == [
        (b"message_start", b'{"type":"message_start"}'),
        (b"ping", b'{"type": "ping"}'),
        (b"content_block_delta", b'{"type":"content_block_delta","delta":{"text":"Hi"}}'),
    ]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_any_split_gives_the_same_events(line_end: bytes) -> None:
    data = ANTHROPIC_STREAM.replace(b"\n", line_end) + b"data: tail" + line_end * 2
    whole = feed_all([data])
    assert len(whole) == 4
    assert feed_all(byte_by_byte(data)) == whole
    for cut in range(len(data)):
        assert feed_all([data[:cut], data[cut:]]) == whole


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: two\r\n\r\n") == [(None, b"one"), (None, b"two")]


def test_lone_cr_line_ends() -> None:
    # A final `\r` may be half of a CRLF, so that event completes with the next bytes.
    data = ANTHROPIC_STREAM.replace(b"\n", b"\r")
    assert feed_all([data, b"data: next"]) == feed_all([ANTHROPIC_STREAM])
    assert feed_all(byte_by_byte(data) + [b":"]) == feed_all([ANTHROPIC_STREAM])


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert feed_all([b"data: first\ndata:second\ndata:  third\n\n"]) == [(None, b"first\nsecond\n third")]


def test_partial_event_waits_for_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a"') == []
    assert parser.feed(b":1}\n") == []
    assert parser.feed(b"\n") == [(None, b'{"a":1}')]


def test_events_without_data_and_extra_blank_lines_are_skipped() -> None:
    assert feed_all([b"event: lonely\n\n\n\n: comment only\n\nid: 3\ndata: x\n\n"]) == [(None, b"x")]


# --- bounded and linear (issue 10, point 5) --------------------------------------------------

READ = 65536  # the transport's read size


def in_reads(data: bytes, size: int = READ) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_40_mb_event_split_across_reads_parses_in_linear_time() -> None:
    # The parser used to re-join what it held with every read: 21 s of CPU for this event.
    event = b"data: " + b"x" * (40 << 20) + b"\n\n"
    reads = in_reads(event)
    parser = SSEParser()  # the default cap is 64 MiB
    started = time.process_time()
    events = [e for read in reads for e in parser.feed(read)]
    assert time.process_time() - started < 2
    assert len(events) == 1 and events[0] == (None, event[6:-2])


def test_40_mb_of_small_events_parse_in_linear_time() -> None:
    event = b'data: {"choices":[{"index":0,"delta":{"content":"hello"}}]}\n\n'
    reads = in_reads(event * ((40 << 20) // len(event)))
    parser = SSEParser()
    started = time.process_time()
    count = sum(len(parser.feed(read)) for read in reads)
    assert time.process_time() - started < 2
    assert count == (40 << 20) // len(event)


def test_an_event_over_the_cap_is_refused_once_it_is_held_back() -> None:
    parser = SSEParser(max_event_bytes=1000)
    assert parser.feed(b"data: " + b"x" * 900) == []
    with pytest.raises(UpstreamError, match="stream event larger than"):
        parser.feed(b"x" * 200)


def test_an_event_under_the_cap_gets_through_in_many_reads() -> None:
    parser = SSEParser(max_event_bytes=1000)
    events = [e for read in in_reads(b"data: " + b"x" * 990 + b"\n\n", 7) for e in parser.feed(read)]
    assert events == [(None, b"x" * 990)]


def test_the_events_ahead_of_an_oversize_tail_still_come_out() -> None:
    # A read larger than the cap: its whole events go out, the tail fails the next read.
    parser = SSEParser(max_event_bytes=100)
    assert parser.feed(b"data: a\n\n" + b"data: " + b"x" * 200) == [(None, b"a")]
    with pytest.raises(UpstreamError):
        parser.feed(b"x")


def test_an_oversize_line_without_anything_ahead_fails_at_once() -> None:
    with pytest.raises(UpstreamError):
        SSEParser(max_event_bytes=100).feed(b"data: " + b"x" * 200)


events_and_noise = st.lists(
    st.sampled_from([b"data: one", b"data: {\"a\": 1}", b"event: e\ndata: x\ndata: y", b": comment", b"id: 3", b"data:"]),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(events_and_noise, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.lists(st.integers(0, 200), max_size=8))
def test_any_split_of_any_stream_gives_the_events_of_the_whole(blocks, line_end, cuts) -> None:
    data = b"".join(block.replace(b"\n", line_end) + line_end * 2 for block in blocks) + b"data: end" + line_end * 2
    data += b":"  # a final `\r` may be half of a CRLF: what follows it completes the last event
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    assert feed_all(pieces) == feed_all([data])
    assert feed_all(pieces)[-1] == (None, b"end")

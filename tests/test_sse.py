"""The SSE parser must give the same events however the bytes are split."""

from __future__ import annotations

import pytest

from gateway_trio.providers.sse import SSEParser

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

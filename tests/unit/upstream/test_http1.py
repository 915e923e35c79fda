"""The hand-written HTTP/1.1 client codec, checked against h11 on randomly split responses."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_trio.upstream.http1 import (
    CHUNKED,
    UNTIL_CLOSE,
    ChunkedDecoder,
    ProtocolError,
    body_length,
    encode_request,
    parse_head,
)

header_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20).map(str.encode)
bodies = st.binary(max_size=300)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, int, list[tuple[bytes, bytes]], bytes]:
    """A server's response bytes (via h11's own writer), its status, headers and body."""
    status = draw(st.sampled_from([200, 201, 400, 404, 429, 500, 503]))
    body = draw(bodies)
    framing = draw(st.sampled_from(["length", "chunked"]))
    headers = [(b"x-extra-%d" % i, value) for i, value in enumerate(draw(st.lists(header_values, max_size=3)))]
    if framing == "length":
        headers.append((b"content-length", str(len(body)).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
    server.next_event(), server.next_event()
    wire = server.send(h11.Response(status_code=status, headers=headers))
    cuts = sorted(draw(st.lists(st.integers(0, max(len(body), 1)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
    for piece in pieces:
        wire += server.send(h11.Data(data=piece))
    wire += server.send(h11.EndOfMessage())
    return wire, status, headers, body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)]) if data[a:b]]


def read_response(pieces: list[bytes]) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytearray]:
    """Our reading of the response, fed one piece at a time as a socket would."""
    buffer, head, body, decoder, left = bytearray(), None, b"", None, 0
    for piece in pieces:
        buffer += piece
        if head is None:
            head = parse_head(buffer)
            if head is None:
                continue
            left = body_length("POST", head)
            decoder = ChunkedDecoder() if left == CHUNKED else None
        if decoder is not None:
            body += decoder.decode(buffer)
        else:
            take = bytes(buffer[:left])
            del buffer[:len(take)]
            body += take
            left -= len(take)
    assert head is not None
    assert decoder.done if decoder else left == 0
    return head.status, head.headers, body, buffer


@settings(max_examples=300, deadline=None)
@given(responses(), st.lists(st.integers(0, 400), max_size=6))
def test_agrees_with_h11_however_the_bytes_are_split(response, cuts):
    wire, status, headers, body = response
    got_status, got_headers, got_body, left_over = read_response(split(wire, cuts))
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", "0")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    expected = client.next_event()
    assert (got_status, got_headers) == (expected.status_code, list(expected.headers))
    assert got_body == body
    assert not left_over


def test_a_head_waits_for_its_blank_line_and_takes_only_itself():
    buffer = bytearray(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n")
    assert parse_head(buffer) is None
    buffer += b"\r\nokHTTP/1.1"
    head = parse_head(buffer)
    assert head is not None and head.status == 200 and head.reason == b"OK" and head.reusable
    assert bytes(buffer) == b"okHTTP/1.1"


def test_bare_line_feeds_and_connection_close():
    head = parse_head(bytearray(b"HTTP/1.1 503 Busy\nConnection: close\nRetry-After:  3 \n\n"))
    assert head is not None and head.status == 503 and not head.reusable
    assert head.headers == [(b"connection", b"close"), (b"retry-after", b"3")]


@pytest.mark.parametrize("raw", [
    b"HTTP/2 200 OK\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n", b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
])
def test_malformed_heads_are_refused(raw):
    with pytest.raises(ProtocolError):
        parse_head(bytearray(raw))


def test_an_endless_head_is_refused():
    with pytest.raises(ProtocolError):
        parse_head(bytearray(b"HTTP/1.1 200 OK\r\nx: " + b"y" * 70_000))


@pytest.mark.parametrize(("method", "raw", "expected"), [
    ("HEAD", b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", 0),
    ("POST", b"HTTP/1.1 204 No Content\r\n\r\n", 0),
    ("POST", b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\n", CHUNKED),
    ("POST", b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", UNTIL_CLOSE),
    ("POST", b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n", 5),
    ("POST", b"HTTP/1.1 200 OK\r\n\r\n", UNTIL_CLOSE),
])
def test_body_framing(method, raw, expected):
    head = parse_head(bytearray(raw))
    assert head is not None and body_length(method, head) == expected


@pytest.mark.parametrize("value", [b"5, 6", b"-1", b"five"])
def test_a_content_length_that_is_not_one_number_is_refused(value):
    head = parse_head(bytearray(b"HTTP/1.1 200 OK\r\ncontent-length: " + value + b"\r\n\r\n"))
    with pytest.raises(ProtocolError):
        body_length("POST", head)


def test_chunked_extensions_and_trailers_and_what_follows():
    buffer = bytearray(b"5;name=value\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\nNEXT")
    decoder = ChunkedDecoder()
    assert decoder.decode(buffer) == b"hello" and decoder.done
    assert bytes(buffer) == b"NEXT"


@pytest.mark.parametrize("raw", [b"zz\r\n", b"5\r\nhelloXX", b"3\r\nabc\rX"])
def test_broken_chunked_framing_is_refused(raw):
    with pytest.raises(ProtocolError):
        ChunkedDecoder().decode(bytearray(raw))


def test_request_bytes_carry_the_body_length_and_refuse_injection():
    data = encode_request("POST", b"/v1/x?a=1", [(b"Host", b"up:80"), (b"Content-Length", b"99"),
                                                  (b"Transfer-Encoding", b"chunked")], b"{}")
    assert data == b"POST /v1/x?a=1 HTTP/1.1\r\nHost: up:80\r\ncontent-length: 2\r\n\r\n{}"
    assert b"content-length" not in encode_request("GET", b"/", [(b"host", b"h")], b"")
    with pytest.raises(ValueError):
        encode_request("GET", b"/", [(b"x", b"a\r\nevil: 1")], b"")
    with pytest.raises(ValueError):
        encode_request("GET", b"/ HTTP/1.1\r\nevil: 1", [], b"")


def test_endless_trailers_are_refused():
    decoder = ChunkedDecoder()
    buffer = bytearray(b"2\r\nok\r\n0\r\n")
    assert decoder.decode(buffer) == b"ok"
    with pytest.raises(ProtocolError):
        for _ in range(100):
            buffer += b"x-trailer: " + b"t" * 1000 + b"\r\n"
            decoder.decode(buffer)


def test_the_first_blank_line_ends_the_head_whatever_its_line_ends():
    buffer = bytearray(b"HTTP/1.1 200 OK\ncontent-length: 4\n\n\r\n\r\n")
    head = parse_head(buffer)
    assert head is not None and head.headers == [(b"content-length", b"4")]
    assert bytes(buffer) == b"\r\n\r\n"


def test_a_head_searched_in_steps_is_found_across_the_step():
    buffer = bytearray(b"HTTP/1.1 204 No Content\r\n\r")
    assert parse_head(buffer) is None
    searched = len(buffer)
    buffer += b"\n"
    head = parse_head(buffer, searched)
    assert head is not None and head.status == 204 and not buffer

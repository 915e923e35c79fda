"""Mock LLM upstream speaking the OpenAI and Anthropic wire formats, on bare trio sockets + h11.

Routes: chat and text completions, embeddings, moderations, audio transcriptions and image
generations (OpenAI
paths with or without `/v1`, and Azure's `/openai/deployments/{name}/...`), plus Anthropic's
`/v1/messages` (extended thinking, forced tool use, and `/v1/messages/count_tokens` too). Used in-process by the end-to-end tests (faults, timing, records of what the gateway sent) and
as a separate process by the benchmark. No web framework on purpose: the benchmark pushes ~1,000
concurrent streams through it on two cores, so a connection costs one task, one h11.Connection
and a few small objects, and SSE lines are built from pre-encoded byte templates.

Run `python -m gateway_trio.testing --help` for the CLI.
"""

from __future__ import annotations

import argparse
import base64
import email.policy
import functools
import gc
import hashlib
import heapq
import itertools
import math
import os
import re
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any, Callable, TypeVar
from urllib.parse import parse_qsl

import h11
import orjson
import trio

T = TypeVar("T")

RECEIVE_SIZE = 65536
TICK_S = 0.001  # resolution of chunk delays
FALLBACK_TEXT = "Hello from the mock upstream."
EMBEDDING_DIMENSIONS = 8
FLAG_WORD = "flag-me"  # the moderation endpoint flags inputs containing this, and nothing else
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
    "violence", "violence/graphic",
)


@dataclass
class Behavior:
    """How the mock answers requests for one model; every field is optional.

    Timing: the response headers wait `first_byte_delay_s`, falling back to `delay_s`.
    Stream faults count content chunks already sent (0 = before the first one). For a
    non-streaming request, `stall_after` / `drop_after` (any value) mean "never answer" /
    "close the connection without answering".
    """

    status: int | None = None  # non-200: answer with an error body of this status
    retry_after: float | None = None  # Retry-After header on status-fault responses
    fail_times: int | None = None  # the status fault hits only the first N requests
    first_byte_delay_s: float | None = None
    delay_s: float | None = None
    chunk_delay_s: float | None = None  # between content chunks of a stream
    chunks: int | None = None  # exact number of content chunks (text repeated/grouped)
    stall_after: int | None = None  # stream: N chunks, then silence until the client leaves
    drop_after: int | None = None  # stream: N chunks, then close TCP mid chunked body
    malformed_after: int | None = None  # stream: after N chunks, one `data: {not json` event
    error_after: int | None = None  # stream: N chunks, then an error event and end (no [DONE])
    content: str | None = None  # reply text (the error message on a status fault); default: echo
    # How many status faults were served; shared by every model using this object.
    faults_served: int = field(default=0, compare=False)

    def take_status_fault(self) -> bool:
        """Decide (and count) whether this request gets the status fault."""
        if self.status is None or self.status == 200:
            return False
        if self.fail_times is not None and self.faults_served >= self.fail_times:
            return False
        self.faults_served += 1
        return True

    @property
    def header_delay_s(self) -> float:
        if self.first_byte_delay_s is not None:
            return self.first_byte_delay_s
        return self.delay_s or 0.0


@dataclass(slots=True, eq=False)
class Received:
    """What one request looked like and what happened to its connection (trio clock times)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    model: str | None
    connection_id: int
    received_at: float
    status: int | None = None  # status code of the response we started
    first_byte_at: float | None = None
    finished_at: float | None = None  # response fully handed to the kernel
    closed_at: float | None = None  # connection seen closed (EOF, send failure, or our close)
    disconnected_early: bool = False  # the client left before the response was complete

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))


class _Ticker:
    """Shared timer for chunk delays: streams park on a per-millisecond ParkingLot and one task
    wakes each lot when due.

    Why not trio.sleep: each sleep is a cancel-scope timeout, ~4x the CPU of a park/unpark,
    and chunk delays are the mock's hot path (1,000 streams x tens of chunks a second).
    """

    __slots__ = ("_lots", "_due", "_scope")

    def __init__(self) -> None:
        self._lots: dict[int, trio.lowlevel.ParkingLot] = {}
        self._due: list[int] = []  # heap of slot numbers that have a lot
        self._scope: trio.CancelScope | None = None

    async def sleep(self, seconds: float) -> None:
        slot = math.ceil((trio.current_time() + seconds) / TICK_S)
        lot = self._lots.get(slot)
        if lot is None:
            lot = self._lots[slot] = trio.lowlevel.ParkingLot()
            heapq.heappush(self._due, slot)
            if self._scope is not None and slot * TICK_S < self._scope.deadline:
                self._scope.deadline = slot * TICK_S
        await lot.park()

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            while self._due and self._due[0] * TICK_S <= now:
                self._lots.pop(heapq.heappop(self._due)).unpark_all()
            deadline = self._due[0] * TICK_S if self._due else math.inf
            with trio.CancelScope(deadline=deadline) as self._scope:
                await trio.sleep_forever()
            self._scope = None


class MockUpstream:
    """An HTTP/1.1 server answering like OpenAI, Azure OpenAI and Anthropic, with scripted faults."""

    def __init__(self, default: Behavior | None = None, *, record: bool = True, strict: bool = False) -> None:
        self.default = default if default is not None else Behavior()
        # Strict: refuse any body field the real API does not document, as OpenAI does (see
        # `unrecognized_field`); so tests prove the gateway forwards nothing of its own.
        self.strict = strict
        self.behaviors: dict[str, Behavior] = {}
        self.record = record
        self.received: list[Received] = []
        self.open_connections = 0
        self.max_open_connections = 0
        self.port = 0
        self.base_url = ""
        self._changed = trio.Event()
        self._connection_ids = itertools.count(1)
        self._response_ids = itertools.count(1)
        self._ticker = _Ticker()

    # -- waiting, for tests -------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Return predicate()'s first truthy value, re-checking whenever a record or count changes.

        Raises trio.TooSlowError after `timeout` seconds.
        """
        with trio.fail_after(timeout):
            while True:
                if self._changed.is_set():
                    self._changed = trio.Event()
                changed = self._changed
                result = predicate()
                if result:
                    return result
                await changed.wait()

    async def wait_for_request(self, number: int = 1, timeout: float = 5.0) -> Received:
        """Wait until `number` requests have arrived and return that one (1-based)."""
        await self.wait_for(lambda: len(self.received) >= number, timeout)
        return self.received[number - 1]

    def behavior_for(self, model: str | None) -> Behavior:
        if model is not None and model in self.behaviors:
            return self.behaviors[model]
        return self.default

    def reset(self) -> None:
        """Forget records and fault counts (behaviours stay)."""
        self.received.clear()
        self.max_open_connections = self.open_connections
        for behavior in (self.default, *self.behaviors.values()):
            behavior.faults_served = 0

    # -- serving ------------------------------------------------------------------------

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled; `nursery.start(mock.serve)` returns the base URL."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown_host}:{self.port}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._ticker.run)
            await nursery.start(trio.serve_listeners, self._handle_connection, listeners)
            task_status.started(self.base_url)

    async def _handle_connection(self, accepted: trio.SocketStream) -> None:
        # Keep the stdlib socket next to the trio stream (public API: detach and rewrap), so a
        # response can try a plain non-blocking send() before paying for trio's send_all.
        raw = socket.socket(fileno=accepted.socket.detach())
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(raw))
        connection_id = next(self._connection_ids)
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)
        self._notify()
        records: list[Received] | None = [] if self.record else None
        try:
            await self._serve_requests(stream, raw, h11.Connection(h11.SERVER), connection_id, records)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:  # a bug here must cost one connection, never the whole server
            traceback.print_exc(file=sys.stderr)
        finally:
            self.open_connections -= 1
            now = trio.current_time()
            for rec in records or ():
                if rec.closed_at is None:
                    rec.closed_at = now
                    if rec.finished_at is None:
                        rec.disconnected_early = True
            self._notify()
            await trio.aclose_forcefully(stream)

    async def _serve_requests(
        self,
        stream: trio.SocketStream,
        raw: socket.socket,
        conn: h11.Connection,
        connection_id: int,
        records: list[Received] | None,
    ) -> None:
        while True:
            try:
                event = await _next_event(stream, conn)
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                request = event
                if conn.they_are_waiting_for_100_continue:
                    informational = h11.InformationalResponse(status_code=100, headers=[])
                    await stream.send_all(conn.send(informational))
                parts: list[bytes] = []
                while not isinstance(event := await _next_event(stream, conn), h11.EndOfMessage):
                    if isinstance(event, h11.Data):
                        parts.append(bytes(event.data))
            except h11.RemoteProtocolError as exc:
                await _send_protocol_error(stream, conn, exc)
                return
            rec = self._record(request, b"".join(parts), connection_id)
            if records is not None:
                records.append(rec)
            exchange = _Exchange(self, stream, raw, conn, rec)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(exchange.watch_for_eof, nursery.cancel_scope)
                try:
                    await self._respond(exchange)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    exchange.peer_gone()
                nursery.cancel_scope.cancel()
            if exchange.closed or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    def _record(self, request: h11.Request, body: bytes, connection_id: int) -> Received:
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if _is_multipart(headers):
            parsed = parse_multipart(headers["content-type"], body)
            model = parsed["fields"].get("model") if parsed else None
        else:
            try:
                parsed = orjson.loads(body) if body else None
            except orjson.JSONDecodeError:
                parsed = None
            model = parsed.get("model") if isinstance(parsed, dict) else None
        if not isinstance(model, str):
            model = _azure_deployment(path)  # Azure names the model in the path, not the body
        rec = Received(
            method=request.method.decode("latin-1"),
            path=path,
            query=query,
            headers=headers,
            body=body,
            json=parsed,
            model=model,
            connection_id=connection_id,
            received_at=trio.current_time(),
        )
        if self.record:
            self.received.append(rec)
            self._notify()
        return rec

    # -- answering ----------------------------------------------------------------------

    async def _respond(self, ex: _Exchange) -> None:
        rec = ex.rec
        route = _route(rec.method, rec.path)
        anthropic_shape = rec.path.startswith(("/v1/messages", "/messages"))
        if route is None:
            await ex.send_error(404, f"Unknown route {rec.method} {rec.path}", anthropic_shape)
            return
        kind, deployment = route
        if kind == "models":
            await ex.send_json(200, self._models_list())
            return
        if deployment is not None and "api-version" not in rec.params:
            await ex.send_json(404, {"error": {"code": "404", "message": "Resource not found"}})
            return
        if kind == "transcriptions" and not (_is_multipart(rec.headers) and rec.json):
            await ex.send_error(400, "Request body must be multipart/form-data", False)
            return
        if not isinstance(rec.json, dict):
            await ex.send_error(400, "Request body must be a JSON object", kind == "messages")
            return
        if self.strict and await _refuse_unrecognized(ex, kind, rec.json):
            return
        behavior = self.behavior_for(rec.model)
        if delay := behavior.header_delay_s:
            await trio.sleep(delay)
        if behavior.take_status_fault():
            await ex.send_fault(behavior, kind == "messages")
            return
        if kind == "embeddings":
            await self._answer_embeddings(ex, rec.json)
            return
        if kind == "moderations":
            await self._answer_moderations(ex, rec.json)
            return
        if kind == "transcriptions":
            await self._answer_transcription(ex, rec.json)
            return
        if kind == "responses":
            await _answer_responses(ex, behavior, rec.json, next(self._response_ids))
            return
        if kind == "images":
            await _answer_images(ex, behavior, rec.json)
            return
        if kind == "count_tokens":
            await _answer_count_tokens(ex, rec.json)
            return
        problem = _missing_field(kind, rec.json)
        if problem is None and kind == "messages":
            problem = anthropic_problem(rec.json)
        if problem:
            await ex.send_error(400, problem, kind == "messages", param=problem.split("`")[1])
            return
        if not rec.stream and behavior.stall_after is not None:
            await trio.sleep_forever()
        if not rec.stream and behavior.drop_after is not None:
            await ex.drop()
            return
        pieces = plan_chunks(_reply_text(behavior, rec.json), behavior.chunks)
        usage = (_prompt_tokens(rec.json), count_tokens("".join(pieces)))
        model = rec.model or "mock"
        if kind in ("chat", "completions"):
            text_completion = kind == "completions"
            if rec.stream:
                await self._stream_openai(ex, behavior, rec.json, model, pieces, usage, text_completion)
            elif text_completion:
                await ex.send_json(200, self._openai_text_completion(model, "".join(pieces), usage))
            else:
                await ex.send_json(200, self._openai_completion(model, "".join(pieces), usage))
        elif (blocks := anthropic_blocks(behavior, rec.json, "".join(pieces))) is not None:
            await self._answer_anthropic_blocks(ex, behavior, model, blocks, usage, rec.stream)
        elif rec.stream:
            await self._stream_anthropic(ex, behavior, model, pieces, usage)
        else:
            await ex.send_json(200, self._anthropic_message(model, "".join(pieces), usage))

    def _models_list(self) -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "mock"} for name in self.behaviors]
        return {"object": "list", "data": data}

    def _openai_completion(self, model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
        prompt, completion = usage
        return {
            "id": f"chatcmpl-mock{next(self._response_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _openai_text_completion(self, model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
        prompt, completion = usage
        return {
            "id": f"cmpl-mock{next(self._response_ids)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _anthropic_message(self, model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
        return {
            "id": f"msg_mock{next(self._response_ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }

    async def _stream_openai(
        self,
        ex: _Exchange,
        behavior: Behavior,
        body: dict[str, Any],
        model: str,
        pieces: list[str],
        usage: tuple[int, int],
        text_completion: bool = False,
    ) -> None:
        """Chat chunks (`choices[].delta`), or legacy completion chunks (`choices[].text`)."""
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        id_prefix, kind, field = _TEXT_CHUNK if text_completion else _CHAT_CHUNK
        head = b'data: {"id":"%s%d","object":"%s","created":%d,"model":%s,' % (
            id_prefix,
            next(self._response_ids),
            kind,
            int(time.time()),
            orjson.dumps(model),
        )
        no_usage = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        content_head = head + b'"system_fingerprint":null,"choices":[{"index":0,"%s":' % field
        content_tail = b',"logprobs":null,"finish_reason":null}]' + no_usage
        faults = _StreamFaults(behavior, b"data: {not json\n\n", _OPENAI_STREAM_ERROR)

        ex.start_stream()
        for sent, piece in enumerate(pieces):
            if sent:
                await ex.pause(behavior.chunk_delay_s)
            if await faults.at(ex, sent):
                return
            if text_completion:
                ex.event(content_head + orjson.dumps(piece) + content_tail)
            else:
                delta = {"role": "assistant", "content": piece} if sent == 0 else {"content": piece}
                ex.event(content_head + orjson.dumps(delta) + content_tail)
        if await faults.at(ex, len(pieces)):
            return
        final = b'""' if text_completion else b"{}"
        ex.event(content_head + final + b',"logprobs":null,"finish_reason":"stop"}]' + no_usage)
        if include_usage:
            prompt, completion = usage
            totals = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            ex.event(head + b'"system_fingerprint":null,"choices":[],"usage":' + orjson.dumps(totals) + b"}\n\n")
        ex.event(b"data: [DONE]\n\n")
        await ex.finish()

    async def _stream_anthropic(
        self, ex: _Exchange, behavior: Behavior, model: str, pieces: list[str], usage: tuple[int, int]
    ) -> None:
        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_mock{next(self._response_ids)}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": usage[0], "output_tokens": 1},
            },
        }
        faults = _StreamFaults(behavior, b"event: content_block_delta\ndata: {not json\n\n", _ANTHROPIC_STREAM_ERROR)

        ex.start_stream()
        ex.event(b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n" + _ANTHROPIC_BLOCK_START)
        for sent, piece in enumerate(pieces):
            if sent:
                await ex.pause(behavior.chunk_delay_s)
            if await faults.at(ex, sent):
                return
            ex.event(_ANTHROPIC_DELTA_HEAD + orjson.dumps(piece) + b"}}\n\n")
        if await faults.at(ex, len(pieces)):
            return
        ex.event(
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
            b'"stop_sequence":null},"usage":{"output_tokens":%d}}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n' % usage[1]
        )
        await ex.finish()

    async def _answer_anthropic_blocks(
        self, ex: _Exchange, behavior: Behavior, model: str, blocks: list[dict[str, Any]], usage: tuple[int, int],
        stream: bool,
    ) -> None:
        """An answer of thinking and/or tool-use blocks (see `anthropic_blocks`), whole or as
        Anthropic streams it: thinking_delta then signature_delta, input_json_delta in pieces."""
        reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        message = {
            "id": f"msg_mock{next(self._response_ids)}", "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": reason, "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }
        if not stream:
            await ex.send_json(200, message)
            return
        start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": usage[0], "output_tokens": 1}}
        events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
        for index, block in enumerate(blocks):
            events.extend(_block_events(index, block))
        events.append({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                       "usage": {"output_tokens": usage[1]}})
        events.append({"type": "message_stop"})
        ex.start_stream()
        for number, event in enumerate(events):
            if number:
                await ex.pause(behavior.chunk_delay_s)
            ex.event(b"event: %s\ndata: %s\n\n" % (event["type"].encode(), orjson.dumps(event)))
        await ex.finish()

    async def _answer_embeddings(self, ex: _Exchange, body: dict[str, Any]) -> None:
        raw = body.get("input")
        if raw is None:
            await ex.send_error(400, "Missing required parameter `input`", False, param="input")
            return
        inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        dimensions = body.get("dimensions")
        size = dimensions if isinstance(dimensions, int) and 0 < dimensions <= 4096 else EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += count_tokens(text)
            vector = embed(text, size)
            encoded: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        model = ex.rec.model or "mock-embedding"
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        await ex.send_json(200, {"object": "list", "data": data, "model": model, "usage": usage})


    async def _answer_moderations(self, ex: _Exchange, body: dict[str, Any]) -> None:
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
            texts = raw
        elif isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw):
            texts = [text_of(raw)]  # multimodal parts count as one input
        else:
            await ex.send_error(400, "Missing required parameter `input`", False, param="input")
            return
        results = []
        for text in texts:
            flagged = FLAG_WORD in text
            categories = {name: flagged and name == "harassment" for name in MODERATION_CATEGORIES}
            scores = {name: 0.99 if value else 0.0001 for name, value in categories.items()}
            results.append({"flagged": flagged, "categories": categories, "category_scores": scores})
        model = ex.rec.model or "omni-moderation-latest"
        await ex.send_json(200, {"id": f"modr-mock{next(self._response_ids)}", "model": model, "results": results})

    async def _answer_transcription(self, ex: _Exchange, form: dict[str, Any]) -> None:
        if form.get("filename") is None:
            await ex.send_error(400, "Missing required parameter `file`", False, param="file")
            return
        text = f"transcribed {form['file_size']} bytes from {form['filename']}"
        response_format = form["fields"].get("response_format", "json")
        if response_format in ("text", "srt", "vtt"):
            if response_format == "srt":
                text = f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n"
            elif response_format == "vtt":
                text = f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n"
            body = text.encode() + b"\n"
            ex.start(200, [*_TEXT_HEADERS, (b"content-length", b"%d" % len(body))])
            ex.write(body)
            await ex.finish()
            return
        if response_format == "verbose_json":
            verbose = {"task": "transcribe", "language": "english", "duration": 1.0, "text": text, "segments": []}
            await ex.send_json(200, verbose)
            return
        await ex.send_json(200, {"text": text})


# -- OpenAI Images API (`POST /v1/images/generations`): `n` images as URLs or base64 -------------

# The smallest valid PNG (1x1, transparent): what every `b64_json` image is.
MOCK_PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                  "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082")
).decode()


async def _answer_images(ex: _Exchange, behavior: Behavior, body: dict[str, Any]) -> None:
    """Checks what OpenAI checks (a string `prompt`, `n` from 1 to 10, a known format), then
    answers with `n` images whose `revised_prompt` is the prompt (or `behavior.content`).
    `gpt-image-*` models report token usage as OpenAI's do; DALL-E models report none."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        await ex.send_error(400, "Missing required parameter `prompt`", False, param="prompt")
        return
    n = body.get("n", 1)
    if type(n) is not int or not 1 <= n <= 10:
        await ex.send_error(400, "Invalid value for `n`: must be an integer from 1 to 10", False, param="n")
        return
    response_format = body.get("response_format", "url")
    if response_format not in ("url", "b64_json"):
        await ex.send_error(400, "Invalid value for `response_format`", False, param="response_format")
        return
    if behavior.stall_after is not None:
        await trio.sleep_forever()
    if behavior.drop_after is not None:
        await ex.drop()
        return
    revised = behavior.content if behavior.content is not None else prompt
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    data = []
    for index in range(n):
        image: dict[str, Any] = {"revised_prompt": revised}
        if response_format == "b64_json":
            image["b64_json"] = MOCK_PNG
        else:
            image["url"] = f"https://images.mock.invalid/{digest}-{index}.png"
        data.append(image)
    answer: dict[str, Any] = {"created": int(time.time()), "data": data}
    model = ex.rec.model or ""
    if model.startswith("gpt-image"):
        tokens = count_tokens(prompt)
        answer["usage"] = {"input_tokens": tokens, "output_tokens": 1056 * n, "total_tokens": tokens + 1056 * n,
                           "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0}}
    await ex.send_json(200, answer)


# -- OpenAI Responses API (`POST /v1/responses`): a Response object, or its event stream ------


# -- Anthropic: extended thinking, forced tools, token counts --------------------------------


def anthropic_problem(body: dict[str, Any]) -> str | None:
    """What the real Messages API refuses of the requests the gateway translates: tool blocks
    without tools, a forced tool while thinking, a thinking budget max_tokens leaves no room for."""
    has_tools = bool(body.get("tools"))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result") and not has_tools:
                return "Requests which include `tool_use` or `tool_result` blocks must define `tools`."
            if isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature"):
                return "`messages`: each thinking block needs its `signature`."
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("tool", "any"):
            return "Thinking may not be enabled when `tool_choice` forces tool use."
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024 or budget >= body.get("max_tokens", 0):
            return "`thinking.budget_tokens` must be at least 1024 and less than `max_tokens`."
    return None


def anthropic_blocks(behavior: Behavior, body: dict[str, Any], text: str) -> list[dict[str, Any]] | None:
    """The content of an answer that thinks (`thinking` enabled) or must call a tool
    (`tool_choice` of type tool or any); None for a plain text answer.

    A forced tool's input is `behavior.content` when that is a JSON object, else `{"text": ...}`.
    """
    thinking = body.get("thinking")
    thinks = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    choice = body.get("tool_choice")
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
    forced = None
    if isinstance(choice, dict) and tools:
        if choice.get("type") == "tool":
            forced = choice.get("name")
        elif choice.get("type") == "any":
            forced = tools[0]["name"]
    if not thinks and forced is None:
        return None
    blocks: list[dict[str, Any]] = []
    if thinks:
        reasoning = f"The user wrote: {text}"
        signature = hashlib.sha256(reasoning.encode()).hexdigest()[:32]
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": f"mock-sig-{signature}"})
    if forced is None:
        blocks.append({"type": "text", "text": text})
        return blocks
    try:
        tool_input = orjson.loads(behavior.content) if behavior.content else None
    except orjson.JSONDecodeError:
        tool_input = None
    if not isinstance(tool_input, dict):
        tool_input = {"text": text}
    blocks.append({"type": "tool_use", "id": f"toolu_mock{len(text)}", "name": forced, "input": tool_input})
    return blocks


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "thinking":
        opened = {"type": "thinking", "thinking": ""}
        thought = block["thinking"]
        half = len(thought) // 2
        deltas = [{"type": "thinking_delta", "thinking": thought[:half]},
                  {"type": "thinking_delta", "thinking": thought[half:]},
                  {"type": "signature_delta", "signature": block["signature"]}]
    elif kind == "tool_use":
        opened = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        third = max(1, len(arguments) // 3)
        parts = ["", arguments[:third], arguments[third:2 * third], arguments[2 * third:]]
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in parts]
    else:
        opened = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": block["text"]}]
    return [{"type": "content_block_start", "index": index, "content_block": opened},
            *({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas),
            {"type": "content_block_stop", "index": index}]


async def _answer_count_tokens(ex: _Exchange, body: dict[str, Any]) -> None:
    """`{"input_tokens": n}`: the prompt's words, plus the words of the tools' JSON."""
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        await ex.send_error(400, "`model` and `messages` are required", True)
        return
    unknown = sorted(set(body) - COUNT_TOKENS_FIELDS)
    if unknown:  # the real endpoint refuses fields it does not take
        await ex.send_error(400, f"{unknown[0]}: Extra inputs are not permitted", True)
        return
    tools = body.get("tools")
    extra = count_tokens(orjson.dumps(tools).decode().replace(",", " ")) if tools else 0
    await ex.send_json(200, {"input_tokens": _prompt_tokens(body) + extra})


COUNT_TOKENS_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"})


async def _answer_responses(ex: _Exchange, behavior: Behavior, body: dict[str, Any], number: int) -> None:
    text = responses_input_text(body.get("input"))
    if text is None:
        await ex.send_error(400, "Missing required parameter `input`", False, param="input")
        return
    stream = bool(body.get("stream"))
    if not stream and behavior.stall_after is not None:
        await trio.sleep_forever()
    if not stream and behavior.drop_after is not None:
        await ex.drop()
        return
    if behavior.content is not None:
        text = behavior.content
    pieces = plan_chunks(text if text.strip() else FALLBACK_TEXT, behavior.chunks)
    prompt = count_tokens(text_of(body.get("instructions"))) + count_tokens(_all_input_text(body.get("input")))
    usage = (prompt, count_tokens("".join(pieces)))
    reply = _MockResponse(f"resp_mock{number}", f"msg_mock{number}", ex.rec.model or "mock", "".join(pieces), usage)
    if not stream:
        await ex.send_json(200, reply.response("completed"))
        return
    await _stream_responses(ex, behavior, reply, pieces)


async def _stream_responses(ex: _Exchange, behavior: Behavior, reply: _MockResponse, pieces: list[str]) -> None:
    sequence = itertools.count()
    where = b'"item_id":%b,"output_index":0,"content_index":0' % orjson.dumps(reply.item_id)
    faults = _StreamFaults(behavior, b"event: response.output_text.delta\ndata: {not json\n\n", _RESPONSES_STREAM_ERROR)

    ex.start_stream()
    in_progress = reply.response("in_progress")
    ex.event(
        _responses_event("response.created", sequence, response=in_progress)
        + _responses_event("response.in_progress", sequence, response=in_progress)
        + _responses_event("response.output_item.added", sequence, output_index=0, item=reply.item("in_progress", []))
        + _responses_event("response.content_part.added", sequence, item_id=reply.item_id, output_index=0,
                           content_index=0, part=_output_text(""))
    )
    for sent, piece in enumerate(pieces):
        if sent:
            await ex.pause(behavior.chunk_delay_s)
        if await faults.at(ex, sent):
            return
        ex.event(
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":%d,'
            b'%b,"delta":%b,"logprobs":[]}\n\n' % (next(sequence), where, orjson.dumps(piece))
        )
    if await faults.at(ex, len(pieces)):
        return
    done = reply.item("completed", [_output_text(reply.text)])
    ex.event(
        _responses_event("response.output_text.done", sequence, item_id=reply.item_id, output_index=0,
                         content_index=0, text=reply.text, logprobs=[])
        + _responses_event("response.content_part.done", sequence, item_id=reply.item_id, output_index=0,
                           content_index=0, part=_output_text(reply.text))
        + _responses_event("response.output_item.done", sequence, output_index=0, item=done)
        + _responses_event("response.completed", sequence, response=reply.response("completed"))
    )
    await ex.finish()


@dataclass(slots=True)
class _MockResponse:
    id: str
    item_id: str
    model: str
    text: str
    usage: tuple[int, int]
    created_at: int = field(default_factory=lambda: int(time.time()))

    def item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def response(self, status: str) -> dict[str, Any]:
        done = status == "completed"
        prompt, completion = self.usage
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": [self.item("completed", [_output_text(self.text)])] if done else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage if done else None,
        }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _responses_event(kind: str, sequence: itertools.count[int], **fields: Any) -> bytes:
    event = {"type": kind, "sequence_number": next(sequence), **fields}
    return b"event: %b\ndata: %b\n\n" % (kind.encode(), orjson.dumps(event))


def responses_input_text(raw: Any) -> str | None:
    """The last user text of a Responses `input` (a string or a list of items); None if malformed."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list) or not raw:
        return None
    for item in reversed(raw):
        if isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") == "user":
            return text_of(item.get("content"))
    return ""


def _all_input_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    items = raw if isinstance(raw, list) else ()
    return " ".join(text_of(item.get("content")) for item in items if isinstance(item, dict))


class _Exchange:
    """One request/response on a connection: buffers h11 output and notices who closed first."""

    __slots__ = ("mock", "stream", "raw", "conn", "rec", "out", "closed", "chunked")

    def __init__(
        self, mock: MockUpstream, stream: trio.SocketStream, raw: socket.socket, conn: h11.Connection, rec: Received
    ) -> None:
        self.mock = mock
        self.stream = stream
        self.raw = raw
        self.conn = conn
        self.rec = rec
        self.out: list[bytes] = []
        self.closed = False
        self.chunked = False  # we frame the body chunks ourselves (h11 still ends the message)

    async def watch_for_eof(self, scope: trio.CancelScope) -> None:
        """Read while the response is produced, so a client leaving mid-delay or mid-stall is seen at once."""
        try:
            while data := await self.stream.receive_some(RECEIVE_SIZE):
                self.conn.receive_data(data)  # early bytes of the next request; h11 keeps them
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.peer_gone()
        scope.cancel()

    def peer_gone(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.rec.closed_at = trio.current_time()
        if self.rec.finished_at is None:
            self.rec.disconnected_early = True
        self.mock._notify()

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.rec.status = status
        response = h11.Response(status_code=status, headers=headers, reason=_reason(status))
        self.out.append(self.conn.send(response))

    def start_stream(self) -> None:
        """SSE headers; HTTP/1.1 peers get chunked framing that event() writes without h11."""
        self.chunked = self.conn.their_http_version == b"1.1"
        self.start(200, _SSE_HEADERS_CHUNKED if self.chunked else _SSE_HEADERS)

    def event(self, data: bytes) -> None:
        """One stream event, framed here: h11 revalidating every chunk is avoidable hot-path cost."""
        if self.chunked:
            self.out.append(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.write(data)

    def write(self, data: bytes) -> None:
        self.out.append(self.conn.send(h11.Data(data=data)))

    async def flush(self) -> None:
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        if self.rec.first_byte_at is None:
            self.rec.first_byte_at = trio.current_time()
            self.mock._notify()
        try:
            sent = self.raw.send(data)  # usually takes it all; trio's send_all costs ~3x more CPU
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        if sent < len(data):
            await self.stream.send_all(memoryview(data)[sent:])

    async def pause(self, seconds: float | None) -> None:
        """Between chunks: with no delay, keep coalescing; otherwise put the bytes on the wire first."""
        if seconds:
            await self.flush()
            await self.mock._ticker.sleep(seconds)

    async def finish(self) -> None:
        self.out.append(self.conn.send(h11.EndOfMessage()))
        await self.flush()
        self.rec.finished_at = trio.current_time()
        self.mock._notify()

    async def drop(self) -> None:
        """Close TCP mid-response (a FIN, so the bytes already sent still reach the client)."""
        await self.flush()
        self.closed = True
        self.rec.closed_at = trio.current_time()
        self.mock._notify()
        await self.stream.aclose()

    async def send_json(self, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = orjson.dumps(payload)
        length = (b"content-length", b"%d" % len(body))
        self.start(status, [*_JSON_HEADERS, length, *(headers or [])])
        self.write(body)
        await self.finish()

    async def send_error(
        self,
        status: int,
        message: str,
        anthropic: bool,
        *,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        await self.send_json(status, error_body(status, message, anthropic, param=param), headers)

    async def send_fault(self, behavior: Behavior, anthropic: bool) -> None:
        status = behavior.status or 500
        headers = []
        if behavior.retry_after is not None:
            seconds = behavior.retry_after
            headers.append((b"retry-after", (b"%d" % seconds) if seconds == int(seconds) else repr(seconds).encode()))
            headers.append((b"retry-after-ms", b"%d" % round(seconds * 1000)))
        message = behavior.content or f"Mock upstream fault: status {status}"
        await self.send_error(status, message, anthropic, headers=headers)


class _StreamFaults:
    """The mid-stream faults of a Behavior, checked at each 'N content chunks sent' point."""

    __slots__ = ("behavior", "malformed", "error")

    def __init__(self, behavior: Behavior, malformed: bytes, error: bytes) -> None:
        self.behavior = behavior
        self.malformed = malformed
        self.error = error

    async def at(self, ex: _Exchange, sent: int) -> bool:
        """Apply the faults due after `sent` chunks; True when the stream must not go on."""
        b = self.behavior
        if b.malformed_after == sent:
            ex.event(self.malformed)
        if b.error_after == sent:
            ex.event(self.error)
            await ex.finish()
            return True
        if b.drop_after == sent:
            await ex.drop()
            return True
        if b.stall_after == sent:
            await ex.flush()
            await trio.sleep_forever()
        return False


# -- wire-format pieces -----------------------------------------------------------------

_BASE_HEADERS = [(b"server", b"mock-upstream")]
_SSE_HEADERS = [*_BASE_HEADERS, (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_JSON_HEADERS = [*_BASE_HEADERS, (b"content-type", b"application/json")]
_TEXT_HEADERS = [*_BASE_HEADERS, (b"content-type", b"text/plain; charset=utf-8")]
_SSE_HEADERS_CHUNKED = [*_SSE_HEADERS, (b"transfer-encoding", b"chunked")]
_ANTHROPIC_BLOCK_START = (
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
)
_ANTHROPIC_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)
# (id prefix, object, choice field) of chat and legacy text-completion stream chunks
_CHAT_CHUNK = (b"chatcmpl-mock", b"chat.completion.chunk", b"delta")
_TEXT_CHUNK = (b"cmpl-mock", b"text_completion", b"text")
_OPENAI_STREAM_ERROR = (
    b'data: {"error":{"message":"Mock upstream failed mid-stream","type":"server_error","param":null,"code":null}}\n\n'
)
_RESPONSES_STREAM_ERROR = (
    b'event: error\ndata: {"type":"error","code":"server_error","message":"Mock upstream failed mid-stream","param":null}\n\n'
)
_ANTHROPIC_STREAM_ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)

_OPENAI_ERRORS = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@functools.cache
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Mock Status"


def error_body(status: int, message: str, anthropic: bool, *, param: str | None = None) -> dict[str, Any]:
    """The provider's error JSON for an HTTP status."""
    if anthropic:
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind, code = _OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _route(method: str, path: str) -> tuple[str, str | None] | None:
    """Map a request to (kind, azure deployment or None); None when nothing serves it."""
    if method == "GET" and path in ("/v1/models", "/models"):
        return "models", None
    if method != "POST":
        return None
    if path in ("/v1/messages", "/messages"):
        return "messages", None
    if path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
        return "count_tokens", None
    if kind := _OPENAI_ROUTES.get(path.removeprefix("/v1")):
        return kind, None
    if path == _AZURE_RESPONSES:
        return "responses", ""  # per resource, no deployment in the path; api-version still required
    if deployment := _azure_deployment(path):
        rest = path[len(_AZURE_PREFIX) + len(deployment) :]
        # Azure OpenAI serves no moderations endpoint, so neither does the mock; Responses
        # live at the resource level (`_AZURE_RESPONSES`), not under a deployment.
        if (kind := _OPENAI_ROUTES.get(rest)) and kind not in ("moderations", "responses"):
            return kind, deployment
    return None


_OPENAI_ROUTES = {  # path after `/v1` (or after an Azure deployment) -> kind
    "/chat/completions": "chat",
    "/completions": "completions",
    "/embeddings": "embeddings",
    "/moderations": "moderations",
    "/audio/transcriptions": "transcriptions",
    "/responses": "responses",
    "/images/generations": "images",
}
_AZURE_RESPONSES = "/openai/responses"


_AZURE_PREFIX = "/openai/deployments/"


def _azure_deployment(path: str) -> str | None:
    if not path.startswith(_AZURE_PREFIX):
        return None
    return path[len(_AZURE_PREFIX) :].partition("/")[0] or None


# -- strict mode: the request fields each API documents; anything else is refused ----------------

_OPENAI_SAMPLING = frozenset({
    "model", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "presence_penalty", "seed", "stop",
    "stream", "stream_options", "temperature", "top_p", "user",
})
DOCUMENTED_FIELDS: dict[str, frozenset[str]] = {
    "chat": _OPENAI_SAMPLING | {
        "messages", "audio", "function_call", "functions", "max_completion_tokens", "metadata", "modalities",
        "parallel_tool_calls", "prediction", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort",
        "response_format", "safety_identifier", "service_tier", "store", "tool_choice", "tools", "top_logprobs",
        "verbosity", "web_search_options",
    },
    "completions": _OPENAI_SAMPLING | {"prompt", "best_of", "echo", "suffix"},
    "embeddings": frozenset({"model", "input", "dimensions", "encoding_format", "user"}),
    "moderations": frozenset({"model", "input"}),
    "responses": frozenset({
        "model", "background", "conversation", "include", "input", "instructions", "max_output_tokens",
        "max_tool_calls", "metadata", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream",
        "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation",
        "user",
    }),
    "transcriptions": frozenset({
        "model", "file", "chunking_strategy", "include", "include[]", "known_speaker_names",
        "known_speaker_references", "language", "prompt", "response_format", "stream", "temperature",
        "timestamp_granularities", "timestamp_granularities[]",
    }),
    "messages": frozenset({
        "model", "messages", "max_tokens", "container", "context_management", "mcp_servers", "metadata",
        "service_tier", "stop_sequences", "stream", "system", "temperature", "thinking", "tool_choice", "tools",
        "top_k", "top_p",
    }),
}


def unrecognized_field(kind: str, body: dict[str, Any]) -> str | None:
    """The first top-level field of `body` the `kind` API does not document (a form's fields for
    transcriptions), or None."""
    documented = DOCUMENTED_FIELDS.get(kind)
    if documented is None:
        return None
    fields = body.get("fields", {}) if kind == "transcriptions" else body
    return next((name for name in fields if name not in documented), None)


async def _refuse_unrecognized(ex: _Exchange, kind: str, body: dict[str, Any]) -> bool:
    """Answer 400 as the real API does to an undocumented field; whether it did."""
    name = unrecognized_field(kind, body)
    if name is None:
        return False
    if kind == "messages":
        await ex.send_error(400, f"{name}: Extra inputs are not permitted", True)
    else:
        await ex.send_error(400, f"Unrecognized request argument supplied: {name}", False)
    return True


def _missing_field(kind: str, body: dict[str, Any]) -> str | None:
    """Reject what the real API rejects, so gateway translation bugs show up in tests."""
    if kind == "completions":
        return None if _prompt_of(body) is not None else "Missing required parameter `prompt`"
    if not isinstance(body.get("messages"), list):
        return "Missing required parameter `messages`"
    if kind == "messages" and not isinstance(body.get("max_tokens"), int):
        return "Missing required parameter `max_tokens`"
    return None


def text_of(content: Any) -> str:
    """Plain text of a message content: a string or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(texts)
    return ""


def count_tokens(text: str) -> int:
    return len(text.split())


def _prompt_of(body: dict[str, Any]) -> str | None:
    """A completions prompt as text: a string, several joined by newlines, or a token array."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(item, str) for item in prompt):
        return "\n".join(prompt)
    if isinstance(prompt, list) and all(isinstance(item, int) for item in prompt):
        return " ".join(map(str, prompt))
    return None


def _prompt_tokens(body: dict[str, Any]) -> int:
    if (prompt := _prompt_of(body)) is not None:
        return count_tokens(prompt)
    total = count_tokens(text_of(body.get("system")))
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += count_tokens(text_of(message.get("content")))
    return total


def _reply_text(behavior: Behavior, body: dict[str, Any]) -> str:
    if behavior.content is not None:
        return behavior.content
    if (prompt := _prompt_of(body)) is not None:
        return prompt if prompt.strip() else FALLBACK_TEXT
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            text = text_of(message.get("content"))
            if text.strip():
                return text
    return FALLBACK_TEXT


_WORD = re.compile(r"\s*\S+\s*")


def plan_chunks(text: str, chunks: int | None) -> list[str]:
    """Split text into stream pieces: one per word (spaces kept), or exactly `chunks` pieces.

    Fewer chunks than words groups neighbouring words; more repeats the words cyclically,
    so the streamed text is then longer than `text`.
    """
    words = _WORD.findall(text) or ([text] if text else [])
    if chunks is None:
        return words
    if chunks <= 0:
        return []
    if not words:
        return [""] * chunks
    if chunks <= len(words):
        size, extra = divmod(len(words), chunks)
        out, start = [], 0
        for index in range(chunks):
            end = start + size + (1 if index < extra else 0)
            out.append("".join(words[start:end]))
            start = end
        return out
    out = [words[index % len(words)] for index in range(chunks)]
    if not text[-1].isspace():  # a space where the text wraps around, none at the very end
        for index in range(len(words) - 1, chunks - 1, len(words)):
            out[index] += " "
        out[-1] = out[-1].rstrip()
    return out


def _is_multipart(headers: dict[str, str]) -> bool:
    return headers.get("content-type", "").lower().startswith("multipart/form-data")


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any] | None:
    """A multipart/form-data body as {"fields", "file_size", "filename"}; None if unparsable.

    The stdlib `email` parser reads form data well enough for a mock: it is handed the
    content-type as a header line so it finds the boundary itself.
    """
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    form: dict[str, Any] = {"fields": {}, "file_size": 0, "filename": None}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name == "file":
            form["filename"] = part.get_filename() or ""
            form["file_size"] = len(data)
        elif isinstance(name, str):
            form["fields"][name] = data.decode("utf-8", "replace")
    return form


def embed(text: str, size: int) -> list[float]:
    """A deterministic vector in [-1, 1) per text, so tests can compare embeddings."""
    digest = b""
    counter = 0
    while len(digest) < size:
        digest += hashlib.blake2b(f"{counter}:{text}".encode(), digest_size=64).digest()
        counter += 1
    return [round(byte / 128.0 - 1.0, 6) for byte in digest[:size]]


async def _next_event(stream: trio.SocketStream, conn: h11.Connection) -> Any:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
    return event


async def _send_protocol_error(stream: trio.SocketStream, conn: h11.Connection, exc: h11.RemoteProtocolError) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    status = exc.error_status_hint
    body = orjson.dumps(error_body(status, f"Bad HTTP request: {exc}", False))
    headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    response = h11.Response(status_code=status, headers=headers, reason=_reason(status))
    try:
        await stream.send_all(conn.send(response) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        pass


# -- command line -------------------------------------------------------------------------


def _write_port_file(path: str, port: int) -> None:
    """Write atomically, so a poller never reads a half-written port."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)


async def _main(args: argparse.Namespace) -> None:
    behavior = Behavior(
        status=args.status,
        delay_s=args.delay_s,
        first_byte_delay_s=args.first_byte_delay_s,
        chunks=args.chunks,
        chunk_delay_s=args.chunk_delay_s,
        content=args.content,
    )
    mock = MockUpstream(behavior, record=False, strict=args.strict)
    async with trio.open_nursery() as nursery:
        await nursery.start(mock.serve, args.host, args.port)
        if args.port_file:  # before the banner: whoever saw the banner may read the file
            _write_port_file(args.port_file, mock.port)
        print(f"listening on {mock.base_url}", flush=True)


def quiet_garbage_collector() -> None:
    """The mock stands in for a remote provider, so its own pauses must not show in what the
    bench measures: with a thousand streams open, the default thresholds stop the process for
    a full collection every few seconds (tens of ms each), and every open stream's timing with
    it.  Its steady state makes no cyclic garbage, so the collector can run seldom."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway_trio.testing", description="Mock OpenAI/Anthropic upstream for tests and benchmarks."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the listening port here once ready")
    parser.add_argument("--delay-s", type=float, default=None, help="wait before answering")
    parser.add_argument("--first-byte-delay-s", type=float, default=None)
    parser.add_argument("--chunks", type=int, default=None, help="content chunks per stream")
    parser.add_argument("--chunk-delay-s", type=float, default=None)
    parser.add_argument("--content", default=None, help="reply text (default: echo the last user message)")
    parser.add_argument("--status", type=int, default=None, help="answer every request with this error status")
    parser.add_argument("--strict", action="store_true", help="refuse body fields the real API does not document")
    args = parser.parse_args(argv)
    quiet_garbage_collector()
    try:
        trio.run(_main, args)
    except KeyboardInterrupt:
        pass


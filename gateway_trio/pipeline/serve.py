"""The one pipeline every LLM route goes through.

`Pipeline.serve` takes a `Call` from any route and returns an `Answer` (status, headers, and
a body or a stream of frames).  Pre-call hooks, dispatch with retries and fallbacks, the
post-call and streaming hooks, the response-headers hook, and the final logging event with
its spend record all happen here, once, in the same order for every route, streaming or
not, success or failure.  Routes only translate HTTP to a Call and an Answer back to HTTP.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

import orjson
import trio

from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.adapters.base import RawBody
from gateway_trio.apis.base import Assembler
from gateway_trio.apis.tokens import estimate_tokens
from gateway_trio.calls import Call
from gateway_trio.channels.messages import Chunks, StreamEnd
from gateway_trio.errors import BadRequest, GatewayError, UpstreamTimeout
from gateway_trio.guardrails.stage import GuardrailStage
from gateway_trio.hooks.exceptions import as_litellm
from gateway_trio.hooks.inline import HookRefusal, HookSet, rejection
from gateway_trio.hooks.kwargs import call_info, hidden_params
from gateway_trio.hooks.views import ModelResponseStream, response_object, unwrap
from gateway_trio.pipeline.access import log_access
from gateway_trio.pipeline.admission import AdmissionStage
from gateway_trio.pipeline.conversations import ConversationStage
from gateway_trio.pipeline.dispatch import Dispatcher
from gateway_trio.pipeline.frames import Frames
from gateway_trio.pipeline.headers import gateway_headers, with_litellm_names
from gateway_trio.pipeline.metrics import CallMetrics
from gateway_trio.pipeline.shutdown import Shutdown
from gateway_trio.pipeline.stream import Stream
from gateway_trio.pipeline.tracing import close_call, open_call
from gateway_trio.runtime import turns
from gateway_trio.spend.accounting import spend_record
from gateway_trio.spend.writer import SpendWriter

if TYPE_CHECKING:
    from gateway_trio.runtime.tracing import Tracing

log = logging.getLogger(__name__)

JSON = "application/json"
SSE = "text/event-stream"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
WRITE_MAX = 32 * 1024  # a stream's batch is written in pieces of about this size, at most


class StreamCut(Exception):
    """The gateway ends a stream before its end: the call's deadline or the shutdown came."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: AsyncIterator[bytes] | None = None
    content_type: str = JSON


class Pipeline:
    def __init__(
        self,
        dispatcher: Dispatcher,
        hooks: HookSet,
        callbacks: CallbackActor,
        guardrails: GuardrailStage,
        spend: SpendWriter,
        admission: AdmissionStage | None = None,
        conversations: ConversationStage | None = None,
    ) -> None:
        self.admission = admission if admission is not None else AdmissionStage(None)
        self.conversations = conversations if conversations is not None else ConversationStage(None)
        self.litellm_headers = False  # `[server] litellm_headers`: also LiteLLM's header names
        self.access_log = False  # `[server] access_log`: a line per call (pipeline/access.py)
        self.tracing: Tracing | None = None  # `[otel]`: each call's spans (pipeline/tracing.py)
        self.dispatcher = dispatcher
        self.hooks = hooks
        self.callbacks = callbacks
        self.guardrails = guardrails
        self.spend = spend
        self.shutdown = Shutdown()
        self.finished: Counter[tuple[str, str]] = Counter()  # (call_type, status): for /metrics
        self.metrics = CallMetrics()  # the per-call figures of /metrics; the gateway configures it
        self.inflight = 0  # calls served and not finished: a reload retires this pipeline at 0

    def finished_counts(self) -> tuple[tuple[str, str, int], ...]:
        """(call_type, status, calls) so far, a frozen copy for `/metrics`."""
        return tuple((call_type, status, count) for (call_type, status), count in sorted(self.finished.items()))

    async def serve(self, call: Call) -> Answer:
        self.metrics.started += 1  # in flight until `finish`
        if self.tracing is not None:
            open_call(self.tracing, call)
        self.inflight += 1  # `finish` takes it back, once per call
        try:
            return await self._serve(call)
        except Exception as error:
            self.finish(call, "failure", None, error)
            raise
        except BaseException:
            status, error = self._cut_short(call)
            self.finish(call, status, None, error)
            raise

    async def _serve(self, call: Call) -> Answer:
        try:
            # Before admission, so its reservation counts the whole conversation; its refusal after.
            missing = await self.conversations.resume(call)
            await self.admission.admit(call)
            if missing is not None:
                raise missing
            if self.hooks.pre_call:
                await self._pre_call(call)
            self.guardrails.check_requested(call)
            if call.stream:
                return await self._stream_answer(call, await self.dispatcher.open_stream(call))
            return await self._json_answer(call, await self.dispatcher.complete(call))
        except HookRefusal as refusal:
            try:
                return await self._refusal(call, refusal.text)
            except GatewayError as error:  # the refusal's answer rejected by a post-call hook
                return await self._error_answer(call, error)
        except GatewayError as error:
            return await self._error_answer(call, error)

    async def _pre_call(self, call: Call) -> None:
        asked = call.body.get("model") if isinstance(call.body, dict) else None
        try:
            call.body = await self.hooks.run_pre_call(
                call.user, call.body, call.call_type, self._active(call), call.trace
            )
        except (HookRefusal, GatewayError):
            raise
        except Exception as error:
            raise rejection(error) from error
        model = call.body.get("model") if isinstance(call.body, dict) else None
        if isinstance(model, str) and model and model != asked:
            # As in LiteLLM: the call goes to that model group, if the caller's key, team and user
            # may use it (admission's 403 otherwise), under that group's budgets and limits.
            log.info("call %s rerouted by a pre-call hook from %s to %s", call.call_id, call.model, model)
            await self.admission.readmit(call, model)

    # --- answers ------------------------------------------------------------------------

    async def _json_answer(self, call: Call, body: dict[str, Any] | RawBody) -> Answer:
        if isinstance(body, RawBody):
            return await self._raw_answer(call, body)
        if call.wire.rewrites_ids and call.deployment is not None:
            body = call.wire.rewrite_body(body, call.deployment.id)
        if self.guardrails:
            body = await self.guardrails.check_body(call, "post_call", body, response=True)
        extra: dict[str, str] = {}
        response: Any = None
        if self.hooks.post_success or self.hooks.header_hooks:
            response = response_object(body, hidden_params(call))
            if self.hooks.post_success:
                try:
                    response = await self.hooks.run_post_success(
                        call.body, call.user, response, self._active(call), call.trace
                    )
                except Exception as error:  # the hook rejects the answer (LiteLLM's way for post-call checks)
                    raise rejection(error) from error
                body = unwrap(response)
            extra.update(getattr(response, "_hidden_params", {}).get("additional_headers") or {})
        headers = self._headers(call, with_cost=True)
        headers.update(extra)
        headers.update(await self._hook_headers(call, response))
        payload = orjson.dumps(body)
        self.finish(call, "success", body, None)
        return Answer(200, headers, payload)

    async def _raw_answer(self, call: Call, body: RawBody) -> Answer:
        """An answer passed on as it came (a text transcription, a pass-through reply)."""
        headers = self._headers(call, with_cost=True)
        headers.update(await self._hook_headers(call, body))
        self.finish(call, "success", None, None)
        return Answer(200, headers, body.content, content_type=body.content_type)

    async def _error_answer(self, call: Call, error: GatewayError) -> Answer:
        if self.hooks.post_failure:
            # Hooks get LiteLLM's exception classes; handed back unchanged, the error stays ours.
            provider = call.deployment.provider if call.deployment else None
            handed = as_litellm(error, llm_provider=provider, model=call.upstream_model or call.model)
            replaced = await self.hooks.run_post_failure(
                call.body, handed, call.user, traceback.format_exc(), self._active(call), call.trace
            )
            if replaced is not handed:
                error = rejection(replaced)
        headers = self._headers(call)
        headers.update(error.headers())
        headers.update(await self._hook_headers(call, None))
        self.finish(call, "failure", None, error)
        return Answer(error.status, headers, call.wire.error_body(error))

    async def _stream_answer(self, call: Call, stream: Stream) -> Answer:
        try:
            headers = {**SSE_HEADERS, **self._headers(call)}
            if self.hooks.header_hooks:
                first = stream.first
                chunk = None
                if isinstance(first, Chunks) and first.payloads:
                    chunk = ModelResponseStream(orjson.loads(first.payloads[0]), hidden_params(call))
                headers.update(await self._hook_headers(call, chunk))
        except BaseException:
            stream.close()  # no answer will hold it: `serve` finishes the call
            raise
        # From here the frames own the stream: read, their generator ends it; never read, the
        # request's cleanup does (see frames.py).
        frames = Frames(self._frames(call, stream), lambda: self._end_stream(call, stream, None))
        return Answer(200, headers, frames=frames, content_type=SSE)

    async def _refusal(self, call: Call, text: str) -> Answer:
        """A pre-call hook refused with `text`: the answer where the call's API has one for it
        (chat's: the assistant says it), a 400 elsewhere."""
        chunks = call.api.refusal_chunks(call, text) if call.stream else None
        body = None if call.stream else call.api.refusal_body(call, text)
        if body is None and chunks is None:
            return await self._error_answer(call, BadRequest(text, code="refused"))
        call.metadata["refused_by_hook"] = True
        if body is not None:
            return await self._json_answer(call, body)
        headers = {**SSE_HEADERS, **self._headers(call)}
        headers.update(await self._hook_headers(call, None))
        self.finish(call, "success", None, None)
        return Answer(200, headers, frames=_once(call.wire.frames(chunks) + call.wire.done), content_type=SSE)

    def _active(self, call: Call) -> frozenset[str] | None:
        """Guardrails active on this call, for hooks that guardrails implement themselves."""
        if not self.hooks.scope_of:
            return None
        return frozenset(self.guardrails.active_names(call))

    def _headers(self, call: Call, *, with_cost: bool = False) -> dict[str, str]:
        headers = gateway_headers(call, with_cost=with_cost)
        if call.admission is not None:
            headers.update(call.admission.headers)
        if self.guardrails:
            applied = self.guardrails.applied_names(call)
            if applied:
                headers["x-gateway-applied-guardrails"] = ",".join(applied)
        if self.litellm_headers:
            with_litellm_names(headers, call)
        return headers

    async def _hook_headers(self, call: Call, response: Any) -> dict[str, str]:
        if not self.hooks.header_hooks:
            return {}
        return await self.hooks.run_response_headers(
            call.body, call.user, response, call.request_headers, call_info(call), self._active(call), call.trace
        )

    # --- streams ------------------------------------------------------------------------

    async def _frames(self, call: Call, stream: Stream) -> AsyncIterator[bytes]:
        wants_response = self.callbacks.wants_responses or self.conversations.wants_answer(call)
        if call.trace is not None and call.trace.capture_content:  # the answer's text goes on its span
            wants_response = True
        assembler = call.api.assembler() if wants_response else None
        guard = self.guardrails.stream_guard(call) if self.guardrails else None
        self.shutdown.add(stream)
        try:
            batches = stream.batches()
            if guard is not None:
                batches = guard.filter(batches)
            if self.hooks.sees_chunks:
                batches = self._hooked(call, batches)
            runs_user_code = guard is not None or self.hooks.sees_chunks
            last = b""  # the final batch's frames, sent with the tail in one write
            cut: GatewayError | None = None
            try:
                while True:
                    # The wait for the next batch (and the client's taking the last) is off the
                    # turn; relaying a batch is a stretch of its own (see turns.py).
                    async with turns.off_turn():
                        batch = await self._next_batch(stream, batches, runs_user_code)
                    if batch is None:
                        break
                    if last:
                        yield last
                        last = b""
                    frames = self._framed(call, batch, assembler)
                    if stream.outcome is not None:
                        last = frames
                    elif len(frames) <= WRITE_MAX:
                        yield frames
                    else:  # a slow client takes long over each write: the deadline is checked between them
                        for piece in _pieces(frames, WRITE_MAX):
                            yield piece
                            if (error := self._cut_if_due(stream)) is not None:
                                raise StreamCut(error)
            except StreamCut as stop:
                cut = stop.error
                if call.usage is None:
                    call.usage = estimated_usage(call, stream.relayed)
            blocked = guard.error if guard is not None else None
            yield last + self._tail(call, stream, assembler, blocked or cut)
        finally:
            self.shutdown.discard(stream)
            self._end_stream(call, stream, assembler)

    def _end_stream(self, call: Call, stream: Stream, assembler: Assembler | None) -> None:
        """Close the upstream and, if the call is not finished yet, finish it as cut short.
        Synchronous: safe while cancellation is under way."""
        stream.close()
        if not call.finished:
            if call.usage is None:
                call.usage = estimated_usage(call, stream.relayed)
            status, error = self._cut_short(call)
            self.finish(call, status, assembler.result(call.usage) if assembler else None, error)

    def _framed(self, call: Call, batch: list[bytes], assembler: Assembler | None) -> bytes:
        """A batch's frames, after noting its chunks for logging (assembled with the ids the
        client sees, as an unstreamed answer is logged)."""
        if self.callbacks.wants_chunks:
            for payload in batch:
                self.callbacks.stream_chunk(call, payload)
        if call.wire.rewrites_ids and call.deployment is not None:
            batch = [call.wire.rewrite_payload(p, call.deployment.id) for p in batch]
        if assembler is not None:
            for payload in batch:
                assembler.add(payload)
        return call.wire.frames(batch)

    def _tail(self, call: Call, stream: Stream, assembler: Assembler | None, error: GatewayError | None) -> bytes:
        """Finish the call and give the stream's last frames: the end mark, or an error event
        when a guardrail blocked, the gateway cut the stream, or the upstream failed."""
        response = assembler.result(call.usage) if assembler is not None else None
        if error is not None:
            self.finish(call, "failure", response, error)
            return call.wire.error_frame(error)
        if isinstance(stream.outcome, StreamEnd):
            self.finish(call, "success", response, None)
        else:
            self.finish(call, "failure", response, stream.outcome)
        return stream.tail()

    async def _next_batch(
        self, stream: Stream, batches: AsyncIterator[list[bytes]], runs_user_code: bool
    ) -> list[bytes] | None:
        """The next batch, or None at the stream's end; `StreamCut` once the call's deadline
        (or the shutdown's end) has come.

        Checked at every batch, so the time a slow client takes to read counts too.  With user
        code in the chain (guardrails, hooks) the wait itself is bounded here; without, only the
        upstream is waited for, and its call's own scope ends at the same time.  The scope spans
        the wait only, never a `yield` of the frames generator (and costs a few µs, so the plain
        stream goes without).
        """
        if (error := self._cut_if_due(stream)) is None:
            try:
                if not runs_user_code:
                    return await batches.__anext__()
                with trio.move_on_at(min(stream.deadline, self.shutdown.streams_end_at)):
                    return await batches.__anext__()
            except StopAsyncIteration:
                return None
            error = self._cut_if_due(stream)  # the wait ran out
            assert error is not None
        raise StreamCut(error)

    def _cut_if_due(self, stream: Stream) -> GatewayError | None:
        """Cut the stream once the call's deadline or the shutdown's end has come; its error."""
        now = trio.current_time()
        if now >= self.shutdown.streams_end_at:
            error: GatewayError = self.shutdown.error()
            stream.cut(error, blame_upstream=False)
        elif now >= stream.deadline:
            error = UpstreamTimeout("the request deadline passed during the stream")
            stream.cut(error, blame_upstream=True)
        else:
            return None
        return error

    def _cut_short(self, call: Call) -> tuple[str, GatewayError | None]:
        """How a call ended whose answer was cut off before it was done: the client left, or the
        server gave up on it (the graceful timeout, or a client that stopped reading past the
        deadline)."""
        if self.shutdown.begun:
            return "failure", self.shutdown.error()
        if trio.current_time() >= self.dispatcher.deadline(call):
            return "failure", UpstreamTimeout("the request deadline passed before the client took the answer")
        return "client_disconnected", None

    async def _hooked(self, call: Call, batches: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        """Run the per-chunk and iterator hooks over parsed chunks; a failing hook is skipped."""
        hidden = hidden_params(call)

        async def chunk_objects() -> AsyncIterator[Any]:
            async for batch in batches:
                for payload in batch:
                    yield ModelResponseStream(orjson.loads(payload), hidden)

        active = self._active(call)
        per_chunk = self.hooks.chunk_hooks(call.call_id, active)
        chunks = self.hooks.wrap_stream(call.user, chunk_objects(), call.body, active)
        try:
            async for chunk in chunks:
                if per_chunk:
                    if isinstance(chunk, dict):  # iterator hooks may yield plain dicts
                        chunk = ModelResponseStream(chunk, hidden)
                    chunk = await per_chunk.run(call.user, chunk)
                encoded = _encode_chunk(chunk)
                if encoded is not None:
                    yield [encoded]
        except Exception as error:
            for hook in self.hooks.stream_wrappers:
                self.hooks.count_failure(hook, "async_post_call_streaming_iterator_hook", error)
            async for batch in batches:  # the rest of the stream goes on unhooked
                yield batch

    # --- the end of every call -------------------------------------------------------------

    def finish(self, call: Call, status: str, response: dict[str, Any] | None, error: BaseException | None) -> None:
        """Submit the call's one spend record and post its final event. Synchronous: safe in `finally`.

        The record goes to the spend writer here, not with the event: hooks that cannot keep
        up may cost hook events, never a record.
        """
        if call.finished:
            return
        call.finished = True
        self.inflight -= 1
        self.finished[call.call_type, status] += 1
        record = spend_record(call, status, error)
        self.admission.settle(call, record)
        self.spend.submit(record)
        self.metrics.record(call, record, error)
        if status == "success" and response is not None:
            self.conversations.keep(call, response)
        self.callbacks.finished(call, record, response, error)
        if self.access_log:
            log_access(record, call.route)
        if call.trace is not None:  # last: the record and the event are out whatever it does
            close_call(call, record, response, error)


def estimated_usage(call: Call, chunks: int) -> dict[str, Any]:
    """Usage of a stream cut before the upstream reported it: about a token per chunk."""
    prompt = estimate_tokens(call.body)
    return {"prompt_tokens": prompt, "completion_tokens": chunks, "total_tokens": prompt + chunks, "estimated": True}


def _encode_chunk(chunk: Any) -> bytes | None:
    if chunk is None:
        return None
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    return orjson.dumps(unwrap(chunk))


def _pieces(frames: bytes, size: int) -> Iterator[bytes]:
    """`frames` in pieces of about `size` bytes, split between SSE frames (after a blank line)."""
    start = 0
    while start < len(frames):
        end = frames.find(b"\n\n", start + size)
        end = len(frames) if end < 0 else end + 2
        yield frames[start:end]
        start = end


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data

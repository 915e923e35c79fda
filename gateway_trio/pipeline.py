"""The one pipeline every LLM route goes through.

`Pipeline.serve` takes a `Call` from any route and returns an `Answer` (status, headers, and
a body or a stream of frames).  Pre-call hooks, dispatch with retries and fallbacks, the
post-call and streaming hooks, the response-headers hook, and the final logging event with
its spend record all happen here, once, in the same order for every route, streaming or
not, success or failure.  Routes only translate HTTP to a Call and an Answer back to HTTP.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
import traceback
from dataclasses import dataclass
from typing import Any, AsyncIterator

import orjson

from gateway_trio import turns
from gateway_trio.accounting import spend_record
from gateway_trio.actors.callbacks import CallbackActor
from gateway_trio.actors.spend import SpendWriter
from gateway_trio.assembly import StreamAssembler
from gateway_trio.attempts import Dispatcher, estimate_tokens
from gateway_trio.callback_kwargs import call_info, hidden_params
from gateway_trio.calls import Call
from gateway_trio.channels.messages import Chunks, StreamEnd
from gateway_trio.errors import BadRequest, GatewayError
from gateway_trio.headers import gateway_headers
from gateway_trio.hookset import HookRefusal, HookSet
from gateway_trio.objects import ModelResponse, ModelResponseStream, unwrap
from gateway_trio.guardrails.stage import GuardrailStage
from gateway_trio.providers.base import RawBody
from gateway_trio.streams import Stream
from gateway_trio.wires import OPENAI

log = logging.getLogger(__name__)

JSON = "application/json"
SSE = "text/event-stream"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CHAT = "completion"


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: AsyncIterator[bytes] | None = None
    content_type: str = JSON


def rejection(error: Exception) -> GatewayError:
    """A pre-call hook raised: reject with its status (HTTPException style) or 400."""
    if isinstance(error, GatewayError):
        return error
    status = getattr(error, "status_code", None)
    detail = getattr(error, "detail", None) or str(error) or type(error).__name__
    if not isinstance(status, int) or not 400 <= status < 600:
        status = 400
    return GatewayError(str(detail), status=status, code=str(status))


class Pipeline:
    def __init__(
        self, dispatcher: Dispatcher, hooks: HookSet, callbacks: CallbackActor, guardrails: GuardrailStage, spend: SpendWriter
    ) -> None:
        self.dispatcher = dispatcher
        self.hooks = hooks
        self.callbacks = callbacks
        self.guardrails = guardrails
        self.spend = spend
        self.finished: Counter[tuple[str, str]] = Counter()  # (call_type, status): for /metrics

    async def serve(self, call: Call) -> Answer:
        try:
            return await self._serve(call)
        except Exception as error:
            self.finish(call, "failure", None, error)
            raise
        except BaseException:
            self.finish(call, "client_disconnected", None, None)
            raise

    async def _serve(self, call: Call) -> Answer:
        try:
            if self.hooks.pre_call:
                await self._pre_call(call)
            self.guardrails.check_requested(call)
            if call.stream:
                return await self._stream_answer(call, await self.dispatcher.open_stream(call))
            return await self._json_answer(call, await self.dispatcher.complete(call))
        except HookRefusal as refusal:
            return await self._refusal(call, refusal.text)
        except GatewayError as error:
            return await self._error_answer(call, error)

    async def _pre_call(self, call: Call) -> None:
        try:
            call.body = await self.hooks.run_pre_call(call.user, call.body, call.call_type, self._active(call))
        except (HookRefusal, GatewayError):
            raise
        except Exception as error:
            raise rejection(error) from error

    # --- answers ------------------------------------------------------------------------

    async def _json_answer(self, call: Call, body: dict[str, Any] | RawBody) -> Answer:
        if isinstance(body, RawBody):
            return await self._raw_answer(call, body)
        if call.wire.rewrites_ids and call.deployment is not None:
            body = call.wire.rewrite_body(body, call.deployment.id)
        if self.guardrails:
            await self.guardrails.check_body(call, "post_call", body, response=True)
        extra: dict[str, str] = {}
        response: Any = None
        if self.hooks.post_success or self.hooks.header_hooks:
            response = ModelResponse(body, hidden_params(call))
            if self.hooks.post_success:
                response = await self.hooks.run_post_success(call.body, call.user, response, self._active(call))
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
            replaced = await self.hooks.run_post_failure(
                call.body, error, call.user, traceback.format_exc(), self._active(call)
            )
            if replaced is not error:
                error = rejection(replaced)
        headers = self._headers(call)
        headers.update(error.headers())
        headers.update(await self._hook_headers(call, None))
        self.finish(call, "failure", None, error)
        return Answer(error.status, headers, call.wire.error_body(error))

    async def _stream_answer(self, call: Call, stream: Stream) -> Answer:
        headers = {**SSE_HEADERS, **self._headers(call)}
        if self.hooks.header_hooks:
            first = stream.first
            chunk = None
            if isinstance(first, Chunks) and first.payloads:
                chunk = ModelResponseStream(orjson.loads(first.payloads[0]), hidden_params(call))
            headers.update(await self._hook_headers(call, chunk))
        return Answer(200, headers, frames=self._frames(call, stream), content_type=SSE)

    async def _refusal(self, call: Call, text: str) -> Answer:
        """A pre-call hook refused with `text`: the answer on chat routes, a 400 elsewhere."""
        if call.call_type != CHAT:
            return await self._error_answer(call, BadRequest(text, code="refused"))
        call.metadata["refused_by_hook"] = True
        created = int(time.time())
        ident = f"chatcmpl-{call.call_id}"
        if not call.stream:
            body = {
                "id": ident, "object": "chat.completion", "created": created, "model": call.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
            return await self._json_answer(call, body)
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": call.model}
        frames = OPENAI.frames([
            orjson.dumps({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]}),
            orjson.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]) + b"data: [DONE]\n\n"
        headers = {**SSE_HEADERS, **self._headers(call)}
        headers.update(await self._hook_headers(call, None))
        self.finish(call, "success", None, None)
        return Answer(200, headers, frames=_once(frames), content_type=SSE)

    def _active(self, call: Call) -> frozenset[str] | None:
        """Guardrails active on this call, for hooks that guardrails implement themselves."""
        if not self.hooks.scope_of:
            return None
        return frozenset(self.guardrails.active_names(call))

    def _headers(self, call: Call, *, with_cost: bool = False) -> dict[str, str]:
        headers = gateway_headers(call, with_cost=with_cost)
        if self.guardrails:
            applied = self.guardrails.applied_names(call)
            if applied:
                headers["x-gateway-applied-guardrails"] = ",".join(applied)
        return headers

    async def _hook_headers(self, call: Call, response: Any) -> dict[str, str]:
        if not self.hooks.header_hooks:
            return {}
        return await self.hooks.run_response_headers(
            call.body, call.user, response, call.request_headers, call_info(call), self._active(call)
        )

    # --- streams ------------------------------------------------------------------------

    async def _frames(self, call: Call, stream: Stream) -> AsyncIterator[bytes]:
        assembler = StreamAssembler() if self.callbacks.wants_responses else None
        guard = self.guardrails.stream_guard(call) if self.guardrails else None
        try:
            batches = stream.batches()
            if guard is not None:
                batches = guard.filter(batches)
            if self.hooks.sees_chunks:
                batches = self._hooked(call, batches)
            last = b""  # the final batch's frames, sent with the tail in one write
            async for batch in batches:
                await turns.take_again()  # relaying a batch is a stretch of its own (see turns.py)
                if last:
                    yield last
                    last = b""
                if assembler is not None:
                    for payload in batch:
                        assembler.add(payload)
                if self.callbacks.wants_chunks:
                    for payload in batch:
                        self.callbacks.stream_chunk(call, payload)
                if call.wire.rewrites_ids and call.deployment is not None:
                    batch = [call.wire.rewrite_payload(p, call.deployment.id) for p in batch]
                if stream.outcome is None:
                    yield call.wire.frames(batch)
                else:
                    last = call.wire.frames(batch)
            await turns.take_again()
            response = assembler.result(call.usage) if assembler is not None else None
            if guard is not None and guard.error is not None:
                tail = call.wire.error_frame(guard.error)
                self.finish(call, "failure", response, guard.error)
            elif isinstance(stream.outcome, StreamEnd):
                tail = stream.tail()
                self.finish(call, "success", response, None)
            else:
                tail = stream.tail()
                self.finish(call, "failure", response, stream.outcome)
            yield last + tail
        finally:
            stream.close()  # synchronous: safe while cancellation is under way
            if not call.finished:
                if call.usage is None:
                    call.usage = estimated_usage(call, stream.relayed)
                self.finish(call, "client_disconnected", assembler.result(call.usage) if assembler else None, None)

    async def _hooked(self, call: Call, batches: AsyncIterator[list[bytes]]) -> AsyncIterator[list[bytes]]:
        """Run the per-chunk and iterator hooks over parsed chunks; a failing hook is skipped."""
        hidden = hidden_params(call)

        async def chunk_objects() -> AsyncIterator[Any]:
            async for batch in batches:
                for payload in batch:
                    yield ModelResponseStream(orjson.loads(payload), hidden)

        active = self._active(call)
        chunks = self.hooks.wrap_stream(call.user, chunk_objects(), call.body, active)
        try:
            async for chunk in chunks:
                if self.hooks.per_chunk:
                    if isinstance(chunk, dict):  # iterator hooks may yield plain dicts
                        chunk = ModelResponseStream(chunk, hidden)
                    chunk = await self.hooks.run_per_chunk(call.user, chunk, active)
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
        self.finished[call.call_type, status] += 1
        record = spend_record(call, status, error)
        self.spend.submit(record)
        self.callbacks.finished(call, record, response, error)


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


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data

"""The pipeline alone, with a fake in the Dispatcher's place: a JSON answer, a stream and a
failure go through the same stages in the same order (pre-call hook, post-call hook, headers
hook, then the one spend record and the final event), without a router, an upstream or a socket.

The fakes stand where the pipeline's collaborators stand and keep one shared `log`, so the
order is read off one list.
"""

from __future__ import annotations

from typing import Any

import orjson
import trio
from call_factory import chat_call

from gateway_trio.calls import Call
from gateway_trio.channels.messages import Chunks, DeploymentEvent, Failure, StreamEnd
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError, UpstreamError
from gateway_trio.guardrails.stage import GuardrailStage
from gateway_trio.hooks import CustomLogger
from gateway_trio.hooks.inline import HookSet
from gateway_trio.pipeline.serve import Answer, Pipeline
from gateway_trio.pipeline.stream import Stream

DEPLOYMENT = Deployment.from_config(ModelConfig(name="m", model="openai/m-1", api_base="http://upstream.invalid/v1"))
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
REPLY = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m-1", "usage": USAGE,
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"}, "finish_reason": "stop"}]}


def chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m-1",
                         "choices": [choice]})


class FakeDispatcher:
    """In the Dispatcher's place: "routes" to one deployment and answers from its script."""

    def __init__(self, log: list[Any], *, error: GatewayError | None = None, events: list[DeploymentEvent] = (),
                 upstream_stays_open: bool = False) -> None:
        self.log, self.error, self.events = log, error, list(events)
        self.upstream_stays_open = upstream_stays_open  # more events may come: the stream waits
        self.streams: list[Stream] = []
        self.upstreams: list[trio.MemorySendChannel[DeploymentEvent]] = []

    def _route(self, call: Call) -> None:
        call.model_group, call.deployment = "m", DEPLOYMENT
        self.log.append("dispatch")
        if self.error is not None:
            raise self.error

    async def complete(self, call: Call) -> dict[str, Any]:
        self._route(call)
        call.usage = USAGE
        return orjson.loads(orjson.dumps(REPLY))

    async def open_stream(self, call: Call) -> Stream:
        self._route(call)
        first, *rest = self.events
        send, receive = trio.open_memory_channel[DeploymentEvent](len(rest) + 1)
        for event in rest:
            send.send_nowait(event)
        if self.upstream_stays_open:
            self.upstreams.append(send)
        else:
            send.close()
        self.streams.append(Stream(self, call, first, receive, trio.CancelScope(), self.deadline(call)))
        return self.streams[-1]

    def deadline(self, call: Call) -> float:
        return call.started_at + 600

    def report(self, call: Call, *, ok: bool, counts_as_failure: bool = True, error: Any = None) -> None:
        self.log.append(("report", ok))


class FakeCallbacks:
    """In the CallbackActor's place: keeps the final event instead of posting it to hooks."""

    wants_responses = True
    wants_chunks = False

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def finished(self, call: Call, record: Any, response: dict[str, Any] | None, error: BaseException | None) -> None:
        self.log.append(("finished", record.status, response, error))

    def stream_chunk(self, call: Call, chunk: bytes) -> None:
        raise AssertionError("wants_chunks is False")


class FakeSpend:
    """In the SpendWriter's place: keeps the records."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def submit(self, record: Any) -> None:
        self.log.append(("spend", record.status, record.completion_tokens))


class Recorder(CustomLogger):
    """Every in-line hook, each noting that it ran in the shared log."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self.log = log

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        self.log.append(("pre_call", call_type))
        return data

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        self.log.append(("post_success", response.choices[0].message.content))
        return response

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.log.append(("post_failure", type(original_exception).__name__))

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        self.log.append(("chunk", response.choices[0].delta.get("content")))
        return response

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None,
                                                    call_info=None):
        self.log.append(("headers", type(response).__name__))
        return {"x-recorded": "yes"}


def pipeline(log: list[Any], **script: Any) -> Pipeline:
    hooks = HookSet([Recorder(log)])
    return Pipeline(FakeDispatcher(log, **script), hooks, FakeCallbacks(log), GuardrailStage([]), FakeSpend(log))


async def read_frames(answer: Answer) -> bytes:
    assert answer.frames is not None
    return b"".join([frame async for frame in answer.frames])


async def test_a_json_answer_runs_the_hooks_then_finishes_once():
    log: list[Any] = []
    answer = await pipeline(log).serve(chat_call())
    assert answer.status == 200 and orjson.loads(answer.body)["choices"][0]["message"]["content"] == "Hello world"
    assert answer.headers["x-recorded"] == "yes" and answer.headers["x-gateway-model-id"] == DEPLOYMENT.id
    assert "x-gateway-response-cost" not in answer.headers  # no price configured for this deployment
    finished = log[-1]
    assert log[:-1] == [("pre_call", "completion"), "dispatch", ("post_success", "Hello world"),
                        ("headers", "ModelResponse"), ("spend", "success", 2)]
    assert finished[:2] == ("finished", "success") and finished[2]["choices"][0]["message"]["content"] == "Hello world"


async def test_a_stream_runs_the_chunk_hooks_and_finishes_after_the_last_frame():
    log: list[Any] = []
    events = [Chunks([chunk("Hello ")]), Chunks([chunk("world")]), Chunks([chunk(None, "stop")]),
              StreamEnd(USAGE, None)]
    answer = await pipeline(log, events=events).serve(chat_call(stream=True))
    assert answer.status == 200 and answer.content_type == "text/event-stream"
    assert answer.headers["x-recorded"] == "yes"
    assert log == [("pre_call", "completion"), "dispatch", ("headers", "ModelResponseStream")]  # nothing read yet
    frames = await read_frames(answer)
    assert frames.endswith(b"data: [DONE]\n\n") and frames.count(b"data: {") == 3
    finished = log[-1]
    assert log.count(("report", True)) == 1  # told to the router when the stream's end is read
    assert [entry for entry in log[3:-1] if entry[0] != "report"] == [
        ("chunk", "Hello "), ("chunk", "world"), ("chunk", None), ("spend", "success", 2)]
    assert finished[:2] == ("finished", "success")
    assembled = finished[2]  # what logging hooks receive: the native object, assembled from the chunks
    assert assembled["object"] == "chat.completion" and assembled["choices"][0]["message"]["content"] == "Hello world"


async def test_a_stream_the_upstream_breaks_ends_with_an_error_event_and_one_failure():
    log: list[Any] = []
    events = [Chunks([chunk("Hello ")]), Failure(UpstreamError("the upstream dropped the connection"))]
    answer = await pipeline(log, events=events).serve(chat_call(stream=True))
    frames = (await read_frames(answer)).decode()
    assert "Hello " in frames and "the upstream dropped the connection" in frames and "[DONE]" not in frames
    assert [entry[:2] for entry in log if entry[0] in ("report", "spend", "finished")] == [
        ("report", False), ("spend", "failure"), ("finished", "failure")]


async def test_a_failure_runs_the_failure_hook_then_the_headers_hook_then_finishes_once():
    log: list[Any] = []
    answer = await pipeline(log, error=UpstreamError("no answer", upstream_status=503)).serve(chat_call())
    assert answer.status == 502 and orjson.loads(answer.body)["error"]["message"] == "no answer"
    assert answer.headers["x-recorded"] == "yes"
    finished = log[-1]
    # The failure hook sees LiteLLM's class for an upstream 503 (SPEC §6), still the gateway's error.
    assert log[:-1] == [("pre_call", "completion"), "dispatch", ("post_failure", "ServiceUnavailableError"),
                        ("headers", "NoneType"), ("spend", "failure", 0)]
    assert finished[:3] == ("finished", "failure", None) and isinstance(finished[3], UpstreamError)


async def test_a_stream_the_client_leaves_finishes_once_and_stops_the_upstream_call():
    log: list[Any] = []
    serving = pipeline(log, events=[Chunks([chunk("Hello ")])], upstream_stays_open=True)
    answer = await serving.serve(chat_call(stream=True))
    assert answer.frames is not None
    assert b"Hello " in await answer.frames.__anext__()
    await answer.frames.aclose()  # the client went away mid-stream
    [stream] = serving.dispatcher.streams
    assert stream.scope.cancel_called  # the upstream call is stopped by the request's own cleanup
    assert [entry[:2] for entry in log if entry[0] in ("report", "spend", "finished")] == [
        ("report", False), ("spend", "client_disconnected"), ("finished", "client_disconnected")]

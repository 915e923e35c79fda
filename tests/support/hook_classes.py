"""Hook classes the hook tests attach, one per behaviour, in every style LiteLLM users write."""

from __future__ import annotations

import threading
from typing import Any

import trio

from gateway_trio.hooks import CustomLogger


class Recorder(CustomLogger):
    """Records every logging call it gets, and on which thread."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.threads: set[int] = set()
        self.arrived = trio.Event()

    def _note(self, name: str, value: Any) -> None:
        self.events.append((name, value))

    def log_pre_api_call(self, model, messages, kwargs):
        self.threads.add(threading.get_ident())
        self._note("log_pre_api_call", (model, messages, kwargs))

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.threads.add(threading.get_ident())
        self._note("log_success_event", (kwargs, response_obj, start_time, end_time))

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._note("log_failure_event", (kwargs, response_obj, start_time, end_time))

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._note("async_log_success_event", (kwargs, response_obj, start_time, end_time))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._note("async_log_failure_event", (kwargs, response_obj, start_time, end_time))

    def named(self, name: str) -> list[Any]:
        return [value for event, value in self.events if event == name]


class CallInfoHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None, call_info=None):
        return {
            "x-hook-new": "1",
            "x-hook-group": str(call_info["model_group"]),
            "x-hook-provider": str(call_info["provider"]),
            "x-hook-outcome": "failure" if response is None else "success",
            "x-hook-saw-auth": str("authorization" in (request_headers or {})),
            "x-hook-order": "new",
        }


class LiteLLMCallInfoHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None, litellm_call_info=None):
        return {"x-hook-litellm": str(litellm_call_info["model_id"]), "x-hook-order": "litellm"}


class KwargsHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None, **kwargs):
        return {"x-hook-kwargs": str(kwargs["call_info"]["api_base"]), "x-hook-order": "kwargs"}


class OldHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        return {"x-hook-old": str(request_headers.get("x-request-id")), "x-hook-order": "old"}


class PreCallEditor(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        text = data["messages"][-1]["content"]
        if text == "refuse me":
            return "I cannot help with that."
        if text == "reject me":
            raise PermissionError403("rejected by policy")
        data = dict(data)
        data["messages"] = [*data["messages"][:-1], {"role": "user", "content": text + " (edited)"}]
        return data


class PermissionError403(Exception):
    status_code = 403


class SuccessRewriter(CustomLogger):
    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        response.choices[0].message.content = response.choices[0].message.content.upper()
        response._hidden_params["additional_headers"] = {"x-rewritten": "yes"}
        return response


class FailureReplacer(CustomLogger):
    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict, traceback_str=None):
        return PermissionError403(f"replaced: {type(original_exception).__name__}")


class ChunkUppercaser(CustomLogger):
    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        for choice in response.choices:
            if choice.delta.get("content"):
                choice.delta.content = choice.delta.content.upper()
        return response


class StreamEditor(CustomLogger):
    """Drops the chunk holding 'drop', adds a closing chunk before the end."""

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        last = None
        async for chunk in response:
            last = chunk
            if chunk.choices and (chunk.choices[0].delta.get("content") or "").strip() == "drop":
                continue
            yield chunk
        if last is not None:
            yield {"id": last.id, "object": "chat.completion.chunk", "created": last.created, "model": last.model,
                   "choices": [{"index": 0, "delta": {"content": " [edited]"}, "finish_reason": None}]}


class Broken(CustomLogger):
    """Every method raises or hangs: none of it may reach the client.  (Its success hook
    hangs: one that raises rejects the answer, as SPEC §6 says; a timeout never does.)"""

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        await trio.sleep_forever()

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None, call_info=None):
        await trio.sleep_forever()

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        raise RuntimeError("boom per chunk")

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        await trio.sleep_forever()

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        raise RuntimeError("sync boom")


received_by_functions: list[tuple[str, Any]] = []


def on_input(kwargs):
    received_by_functions.append(("input", kwargs))


def on_success(kwargs, completion_response, start_time, end_time):
    received_by_functions.append(("success", (kwargs, completion_response, start_time, end_time)))


async def on_failure(kwargs, completion_response, start_time, end_time):
    received_by_functions.append(("failure", (kwargs, completion_response, start_time, end_time)))


actor_events: list[Any] = []
crashes = {"count": 0}


async def collecting_actor(events):
    async for event in events:
        actor_events.append(event)


async def crash_once_actor(events):
    async for event in events:
        if crashes["count"] == 0:
            crashes["count"] += 1
            raise RuntimeError("actor crash")
        actor_events.append(event)


async def always_crashing_actor(events):
    raise RuntimeError("I never work")

"""Guardrails and callbacks written the LiteLLM way: hook methods, no `apply_guardrail`.

Written from LiteLLM's documented behaviour (its call-hooks and custom-guardrail docs): a
pre-call hook may set `data["model"]` to send the call to another model group; a guardrail
brings `async_pre_call_hook`, `async_moderation_hook`, `async_post_call_success_hook` and
the streaming iterator hook, and only the ones of its configured mode run; raising rejects.
Every object notes what ran in `RUNS`, as (name, method), for the tests to read.
"""

from __future__ import annotations

from typing import Any

import trio

from gateway_trio.guardrails import CustomGuardrail
from gateway_trio.hooks import CustomLogger

RUNS: list[tuple[str, str]] = []


class HTTPException(Exception):
    """fastapi's `HTTPException` shape (`status_code`, `detail`), which LiteLLM hooks raise."""

    def __init__(self, status_code: int, detail: Any = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def asked(data: dict[str, Any]) -> str:
    """The request's last user text (chat or Anthropic messages)."""
    content = data["messages"][-1]["content"]
    return content if isinstance(content, str) else str(content)


def answered(response: Any) -> str:
    """The whole answer as text, whatever the route's shape."""
    return str(response.model_dump())


class ModeTracer(CustomGuardrail):
    """Brings every mode's hook method; each notes that it ran.  Rejects a request holding
    `reject-pre` (HTTPException 403), `reject-during` (a plain ValueError), and an answer
    holding `reject-post` (a plain ValueError), in whole answers and streams alike."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        RUNS.append((self.guardrail_name, "async_pre_call_hook"))
        if "reject-pre" in asked(data):
            raise HTTPException(status_code=403, detail="pre-call says no")
        return data

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        RUNS.append((self.guardrail_name, "async_moderation_hook"))
        if "reject-during" in asked(data):
            raise ValueError("moderation says no")

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        RUNS.append((self.guardrail_name, "async_post_call_success_hook"))
        if "reject-post" in answered(response):
            raise ValueError("post-call says no")
        return response

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        RUNS.append((self.guardrail_name, "async_post_call_streaming_iterator_hook"))
        text = ""
        async for chunk in response:
            text += answered(chunk)
            if "reject-post" in text:
                raise ValueError("post-call says no (stream)")
            yield chunk


class AnswerChecker(CustomGuardrail):
    """A post-call guardrail with only a success hook: on a stream it sees the assembled answer."""

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        RUNS.append((self.guardrail_name, "async_post_call_success_hook"))
        if "reject-post" in answered(response):
            raise ValueError("the assembled answer says no")
        return response


class Declining(ModeTracer):
    """Its own `should_run_guardrail` says no to every call: it must never be named as run."""

    def should_run_guardrail(self, data, event_type):
        return False


class PreCallOnly(CustomGuardrail):
    """Brings only a pre-call hook: configured for another mode, it has nothing to run."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        RUNS.append((self.guardrail_name, "async_pre_call_hook"))
        return data


class Moderator(CustomLogger):
    """A plain callback with `async_moderation_hook`, as LiteLLM calls it for every callback.

    It waits until the upstream has the request (set `upstream` to the test's MockUpstream):
    so it only returns when it ran while the upstream call was under way.  Rejects
    `reject-during` with an HTTPException 403.
    """

    upstream: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        RUNS.append(("Moderator", "async_moderation_hook"))
        text = asked(data)
        self.seen.append({"text": text, "call_type": call_type, "user": user_api_key_dict})
        data["messages"] = []  # a copy: what it changes must never reach the upstream
        with trio.fail_after(5):
            while not Moderator.upstream.received:
                await trio.sleep(0.01)
        if "reject-during" in text:
            raise HTTPException(status_code=403, detail={"error": "moderation says no"})


class PostCallRejecter(CustomLogger):
    """Rejects answers holding `reject-post` (a plain exception) or `reject-http` (an
    HTTPException 422), as LiteLLM's post-call checks do: by raising."""

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        RUNS.append(("PostCallRejecter", "async_post_call_success_hook"))
        text = answered(response)
        if "reject-http" in text:
            raise HTTPException(status_code=422, detail="unprocessable answer")
        if "reject-post" in text:
            raise RuntimeError("the answer is not allowed")


class Rerouter(CustomLogger):
    """LiteLLM's first call-hooks example: `data["model"] = "other-group"`, returned (text
    `reroute-return`) or only edited in place (text `reroute-inplace`)."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        text = asked(data)
        if "reroute-return" in text:
            data["model"] = "other-group"
            return data
        if "reroute-inplace" in text:
            data["model"] = "other-group"
        return None

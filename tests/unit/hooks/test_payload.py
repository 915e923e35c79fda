"""The logging kwargs and `standard_logging_object`, built from a call snapshot and its record.

What the e2e tests cannot easily reach: a pass-through request, a client that left, guardrail
runs in LiteLLM's words, the URL without its query string, and an error that is not ours.
"""

from __future__ import annotations

from datetime import datetime

from gateway_trio.adapters.pass_through import PassThroughRequest
from gateway_trio.apis import PASS_THROUGH
from gateway_trio.apis.chat import CHAT
from gateway_trio.calls import Call
from gateway_trio.errors import UpstreamTimeout
from gateway_trio.hooks import Timeout, UserAPIKeyAuth
from gateway_trio.hooks.kwargs import logging_kwargs, pre_api_call_kwargs
from gateway_trio.spend.records import GuardrailRun, SpendRecord


def record(**fields) -> SpendRecord:
    base = {
        "call_id": "c-1",
        "call_type": "completion",
        "stream": False,
        "status": "success",
        "start_time": 1000.0,
        "end_time": 1002.0,
        "ttft_ms": 500.0,
        "prompt_tokens": 3,
        "completion_tokens": None,
        "cost": None,
        "tags": ["t"],
        "metadata": {"m": 1},
        "api_key_hash": "hash-1",
        "key_alias": "app",
    }
    return SpendRecord(**{**base, **fields})


def chat_snapshot(**fields) -> Call:
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": "body-user", "top_p": 0.5}
    call = Call(
        CHAT,
        "gpt",
        body,
        call_id="c-1",
        route="/v1/chat/completions",
        start_time=1000.0,
        request_headers={"host": "gw.example:4000", "x-forwarded-proto": "https", "x-trace": "1"},
        user=UserAPIKeyAuth(api_key="hash-1", key_alias="app", team_alias="Research"),
        **fields,
    )
    return call.snapshot()


async def test_a_client_that_left_is_a_failure_to_litellm_and_keeps_its_own_status():
    kwargs = logging_kwargs(chat_snapshot(), record(status="client_disconnected"), None)
    payload = kwargs["standard_logging_object"]
    assert payload["status"] == "failure" and payload["record_status"] == "client_disconnected"
    assert payload["status_fields"]["llm_api_status"] == "failure"
    assert payload["response_cost"] == 0.0 and payload["completion_tokens"] == 0 and payload["total_tokens"] == 3
    assert payload["completionStartTime"] == 1000.5 and payload["response_time"] == 2.0
    assert payload["error_information"]["error_class"] == "" and "exception" not in kwargs
    assert payload["metadata"]["user_api_key_team_alias"] == "Research"
    assert payload["metadata"]["spend_logs_metadata"] == {"m": 1} and payload["request_tags"] == ["t"]


async def test_guardrail_runs_are_told_in_litellm_s_words():
    runs = [
        GuardrailRun("pii", "pre_call", "success", 1000.0, 2.0),
        GuardrailRun("no-secrets", "post_call", "blocked", 1001.0, 4.0, "matched"),
        GuardrailRun("later", "post_call", "not_run", 1001.5, 0.0),
    ]
    payload = logging_kwargs(chat_snapshot(), record(guardrail_information=runs), None)["standard_logging_object"]
    assert [g["guardrail_status"] for g in payload["guardrail_information"]] == [
        "success",
        "guardrail_intervened",
        "not_run",
    ]
    assert payload["guardrail_information"][1] == {
        "guardrail_name": "no-secrets",
        "guardrail_mode": "post_call",
        "guardrail_status": "guardrail_intervened",
        "guardrail_response": "matched",
        "start_time": 1001.0,
        "end_time": 1001.004,
        "duration": 0.004,
    }
    assert payload["status_fields"]["guardrail_status"] == "guardrail_intervened"
    assert payload["metadata"]["applied_guardrails"] == ["pii", "no-secrets"]


async def test_the_request_is_logged_without_its_query_string_or_credentials():
    kwargs = pre_api_call_kwargs(chat_snapshot(api_call_start_time=1000.25))
    request = kwargs["litellm_params"]["proxy_server_request"]
    assert request == {
        "url": "https://gw.example:4000/v1/chat/completions",
        "method": "POST",
        "headers": {"host": "gw.example:4000", "x-forwarded-proto": "https", "x-trace": "1"},
        "body": kwargs["additional_args"]["complete_input_dict"],
    }
    assert kwargs["user"] == "body-user" and kwargs["api_call_start_time"] == datetime.fromtimestamp(1000.25)
    assert kwargs["optional_params"] == {"user": "body-user", "top_p": 0.5}
    metadata = kwargs["litellm_params"]["metadata"]
    assert metadata["user_api_key"] == metadata["user_api_key_hash"] == "hash-1"
    assert metadata["endpoint"] == "/v1/chat/completions"


async def test_the_end_user_admission_found_wins_over_the_body_s():
    assert pre_api_call_kwargs(chat_snapshot(end_user="header-user"))["user"] == "header-user"


async def test_a_pass_through_request_is_logged_with_its_method_and_json_body():
    relayed = PassThroughRequest("PUT", "key=secret", {}, b'{"q": 1}')
    call = Call(PASS_THROUGH, "/vendor", {"request": relayed}, route="/vendor/x", request_headers={"host": "gw"})
    call = call.snapshot()
    request = pre_api_call_kwargs(call)["litellm_params"]["proxy_server_request"]
    assert request["method"] == "PUT" and request["body"] == {"q": 1} and request["url"] == "http://gw/vendor/x"
    raw = Call(PASS_THROUGH, "/vendor", {"request": PassThroughRequest("POST", "", {}, b"\x00raw")}).snapshot()
    assert pre_api_call_kwargs(raw)["litellm_params"]["proxy_server_request"]["body"] is None


async def test_a_failure_hands_litellm_s_exception_and_its_error_information():
    kwargs = logging_kwargs(chat_snapshot(), record(status="failure", error="504: late"), UpstreamTimeout("late"))
    assert isinstance(kwargs["exception"], Timeout) and kwargs["exception"].status_code == 504
    payload = kwargs["standard_logging_object"]
    assert payload["error_str"] == "504: late"
    assert payload["error_information"] == {
        "error_code": "504",
        "error_class": "Timeout",
        "llm_provider": "",
        "traceback": "",
        "error_message": "late",
    }
    foreign = logging_kwargs(chat_snapshot(), record(status="failure", error="KeyError"), KeyError("x"))
    assert isinstance(foreign["exception"], KeyError)
    assert foreign["standard_logging_object"]["error_information"]["error_class"] == "KeyError"

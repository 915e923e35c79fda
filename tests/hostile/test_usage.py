"""Hostile usage figures: no upstream reply can fail a call, cut a stream, skip or poison its
spend record, or leave a deployment's in-flight gauge up (issue 10, point 4).

One gateway serves every case: the hostile upstream reads which bad value to report from the
prompt, and answers in the wire format of the endpoint it was called on (OpenAI chat, text
completions, embeddings and Responses; Anthropic Messages), JSON or streamed.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from harness import client_and_gateway, make_config, sse_payloads

from gateway_trio.adapters.usage import (
    UsageCheck,
    chat_usage_from_messages,
    chat_usage_from_responses,
    messages_usage_from_chat,
    responses_usage_from_chat,
    token_count,
)
from hostile.hostile_upstream import LAST_CHUNK, Request, chat_chunk, chunk, head, json_reply

# What upstreams have been seen to send, or could: none of it is a token count.
BAD_VALUES: list[Any] = [1e300, -5, "lots", {"a": 1}, True, 2**64 - 1, 2**53 + 1, 2.5, [3]]
BAD_USAGES: list[Any] = [*({"bad": value} for value in BAD_VALUES), {"whole": "lots"}]


def usage_field(case: dict[str, Any], good: int) -> Any:
    return case["bad"] if "bad" in case else good


def openai_usage(case: dict[str, Any]) -> Any:
    if "whole" in case:
        return case["whole"]
    return {"prompt_tokens": usage_field(case, 7), "completion_tokens": 2, "total_tokens": 9}


def responses_usage(case: dict[str, Any]) -> Any:
    if "whole" in case:
        return case["whole"]
    return {"input_tokens": usage_field(case, 7), "output_tokens": 2, "total_tokens": 9}


def anthropic_usage(case: dict[str, Any]) -> Any:
    if "whole" in case:
        return case["whole"]
    return {"input_tokens": usage_field(case, 7), "output_tokens": 2}


def sse(events: list[tuple[str | None, Any]], *, done: bool = False) -> bytes:
    body = b""
    for name, payload in events:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        body += chunk((b"event: %s\n" % name.encode() if name else b"") + b"data: " + data + b"\n\n")
    if done:
        body += chunk(b"data: [DONE]\n\n")
    return head(200, {"content-type": "text/event-stream"}, chunked=True) + body + LAST_CHUNK


def case_of(body: dict[str, Any]) -> dict[str, Any]:
    """The bad value a test put in its prompt, whichever field carries the prompt."""
    if "messages" in body:
        content = body["messages"][-1]["content"]
    else:
        content = body.get("input", body.get("prompt"))
    text = content if isinstance(content, str) else content[0]["text"] if isinstance(content[0], dict) else content[0]
    return orjson.loads(text)


def chat_reply(case: dict[str, Any], stream: bool) -> bytes:
    if not stream:
        return json_reply({"id": "chatcmpl-h", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                        "finish_reason": "stop"}],
                           "usage": openai_usage(case)})
    usage_chunk = orjson.dumps({"id": "chatcmpl-h", "object": "chat.completion.chunk", "created": 1,
                                "model": "gpt-4o-mini", "choices": [], "usage": openai_usage(case)})
    return sse([(None, chat_chunk("hi")), (None, chat_chunk(finish="stop")), (None, usage_chunk)], done=True)


def text_reply(case: dict[str, Any], stream: bool) -> bytes:
    choice = {"index": 0, "text": "hi", "logprobs": None, "finish_reason": "stop"}
    body = {"id": "cmpl-h", "object": "text_completion", "created": 1, "model": "gpt-4o-mini", "choices": [choice]}
    if not stream:
        return json_reply({**body, "usage": openai_usage(case)})
    return sse([(None, body), (None, {**body, "choices": [], "usage": openai_usage(case)})], done=True)


def embeddings_reply(case: dict[str, Any]) -> bytes:
    usage = case["whole"] if "whole" in case else {"prompt_tokens": usage_field(case, 7), "total_tokens": 7}
    return json_reply({"object": "list", "model": "text-embedding-3-small", "usage": usage,
                       "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]})


def responses_reply(case: dict[str, Any], stream: bool) -> bytes:
    item = {"type": "message", "id": "msg_h", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
    response = {"id": "resp_h", "object": "response", "created_at": 1, "status": "completed",
                "model": "gpt-4o-mini", "output": [item], "usage": responses_usage(case)}
    if not stream:
        return json_reply(response)
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    return sse([
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": started}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                        "item_id": "msg_h", "output_index": 0, "content_index": 0, "delta": "hi"}),
        ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": response}),
    ])


def messages_reply(case: dict[str, Any], stream: bool) -> bytes:
    message = {"id": "msg_h", "type": "message", "role": "assistant", "model": "claude-3-5-haiku",
               "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": anthropic_usage(case)}
    if not stream:
        return json_reply(message)
    usage = anthropic_usage(case)
    start_usage = usage if not isinstance(usage, dict) else {"input_tokens": usage["input_tokens"], "output_tokens": 1}
    delta_usage = usage if not isinstance(usage, dict) else {"output_tokens": usage["output_tokens"]}
    return sse([
        ("message_start", {"type": "message_start",
                           "message": {**message, "content": [], "stop_reason": None, "usage": start_usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": delta_usage}),
        ("message_stop", {"type": "message_stop"}),
    ])


async def hostile_usage(request: Request, stream) -> None:
    body = request.json()
    case = case_of(body)
    streamed = bool(body.get("stream"))
    path = request.target
    if path.endswith("/chat/completions"):
        reply = chat_reply(case, streamed)
    elif path.endswith("/completions"):
        reply = text_reply(case, streamed)
    elif path.endswith("/embeddings"):
        reply = embeddings_reply(case)
    elif path.endswith("/responses"):
        reply = responses_reply(case, streamed)
    elif path.endswith("/messages"):
        reply = messages_reply(case, streamed)
    else:
        reply = json_reply({"error": {"message": f"no such path {path}"}}, status=404)
    await stream.send_all(reply)


# (route, model group, body builder, how a whole stream ends)
def chat_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def messages_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}


def prompt_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "prompt": text}


def input_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "input": text}


ROUTES = [
    ("/v1/chat/completions", "gpt", chat_body, "[DONE]"),
    ("/v1/completions", "gpt", prompt_body, "[DONE]"),
    ("/v1/embeddings", "embed", input_body, None),
    ("/v1/responses", "gpt", input_body, "response.completed"),
    ("/v1/messages", "gpt", messages_body, "message_stop"),
    ("/v1/chat/completions", "claude", chat_body, "[DONE]"),
    ("/v1/messages", "claude", messages_body, "message_stop"),
    ("/v1/responses", "claude", input_body, "response.completed"),
]


def config_for(upstream) -> Any:
    base = upstream.base_url
    return make_config(
        models=[
            {"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{base}/v1", "info": {"id": "gpt-h"}},
            {"name": "embed", "model": "openai/text-embedding-3-small", "api_base": f"{base}/v1",
             "info": {"id": "embed-h", "mode": "embedding"}},
            {"name": "claude", "model": "anthropic/claude-3-5-haiku", "api_base": base, "api_key": "sk-ant-h",
             "info": {"id": "claude-h"}},
        ],
        router={"num_retries": 0},
    )


def in_flight(metrics: str) -> dict[str, float]:
    gauges = {}
    for line in metrics.splitlines():
        if line.startswith("gateway_deployment_in_flight{"):
            labels, value = line.rsplit(" ", 1)
            gauges[labels] = float(value)
    return gauges


def ended_whole(text: str, end: str) -> bool:
    payloads = sse_payloads(text)
    if end == "[DONE]":
        return payloads[-1] == "[DONE]" and not any('"error"' in p for p in payloads)
    events = [orjson.loads(p) for p in payloads if p != "[DONE]"]
    return events[-1]["type"] == end and not any(e.get("type") == "error" for e in events)


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
async def test_bad_usage_never_fails_a_call_or_loses_its_record(hostile, streamed, caplog):
    upstream = await hostile(hostile_usage)
    calls: list[tuple[str, str, Any]] = []
    with caplog.at_level(logging.WARNING):
        async with client_and_gateway(config_for(upstream)) as (client, gateway):
            for path, model, build, end in ROUTES:
                if streamed and end is None:
                    continue
                for case in BAD_USAGES:
                    body = build(model, orjson.dumps(case).decode())
                    if streamed:
                        body["stream"] = True
                    response = await client.post(path, json=body)
                    what = f"{path} {model} {case}"
                    assert response.status_code == 200, (what, response.text)
                    if streamed:
                        assert ended_whole(response.text, end), (what, response.text)
                    calls.append((response.headers["x-gateway-call-id"], what, case))
            await gateway.spend.flush()
            records = {r["call_id"]: r for r in await gateway.spend.query(limit=1000)}
            metrics = (await client.get("/metrics")).text

    for call_id, what, case in calls:
        record = records.get(call_id)
        assert record is not None, f"no spend record for {what}"
        assert record["status"] == "success", what
        assert record["prompt_tokens"] is None, (what, record)  # unknown, not 0 and not 1e300
        assert record["cost"] is None, (what, record)  # a cost from unknown usage is unknown too
        assert record["metadata"]["usage_unknown"], (what, record)  # and says why
    assert gateway.spend.written == len(calls) and gateway.spend.dropped == 0
    assert set(in_flight(metrics).values()) == {0.0}, metrics
    # Logged once per deployment, not once per call.
    warnings = [r.getMessage() for r in caplog.records if "usage" in r.getMessage() and "not a token count" in r.getMessage()]
    for deployment in ("gpt-h", "claude-h") + (() if streamed else ("embed-h",)):
        assert sum(deployment in message for message in warnings) == 1, (deployment, warnings)
    assert "gateway_upstream_usage_invalid_total" in metrics
    assert "gateway_spend_records_unwritable_total 0.0" in metrics


async def test_good_usage_is_kept_and_priced(hostile):
    upstream = await hostile(hostile_usage)
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        ids = []
        for path, model, build, end in ROUTES:
            response = await client.post(path, json=build(model, orjson.dumps({"good": True}).decode()))
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-gateway-call-id"])
        await gateway.spend.flush()
        records = {r["call_id"]: r for r in await gateway.spend.query(limit=100)}
    for call_id in ids:
        record = records[call_id]
        assert record["prompt_tokens"] == 7
        assert record["cost"] is not None and record["cost"] > 0
        assert "usage_unknown" not in record["metadata"]


# --- the rules, unit by unit ---------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_VALUES + [None, float("nan"), float("inf"), 7.0])
def test_only_a_non_negative_int_up_to_2_53_is_a_token_count(value):
    assert token_count(value) is None


@pytest.mark.parametrize("value", [0, 7, 2**53])
def test_token_counts(value):
    assert token_count(value) == value


def test_a_count_not_reported_is_zero_one_reported_wrongly_is_unknown():
    assert chat_usage_from_messages({"output_tokens": 3}) == {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3}
    assert chat_usage_from_messages({"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": None}) == {
        "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert chat_usage_from_messages({"input_tokens": "lots", "output_tokens": 3}) == {
        "prompt_tokens": None, "completion_tokens": 3, "total_tokens": None}
    assert chat_usage_from_responses({"input_tokens": 5, "output_tokens": -1}) == {
        "prompt_tokens": 5, "completion_tokens": None, "total_tokens": None}
    # The translations for clients keep an unknown count unknown rather than inventing one.
    assert messages_usage_from_chat({"prompt_tokens": 1e300, "completion_tokens": 2}) == {"input_tokens": None, "output_tokens": 2}
    assert responses_usage_from_chat("lots")["input_tokens"] is None


def test_the_check_passes_good_usage_as_it_is_and_marks_bad_counts(caplog):
    check = UsageCheck("dep-1")
    good = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert check(good) is good and check(None) is None
    with caplog.at_level(logging.WARNING):
        first = check({"prompt_tokens": True, "completion_tokens": 2})
        second = check("lots")
    assert first == {"prompt_tokens": None, "completion_tokens": 2, "unknown": ["prompt_tokens"]}
    assert second == {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
                      "unknown": ["prompt_tokens", "completion_tokens", "total_tokens"]}
    assert check.invalid == 2
    assert len([r for r in caplog.records if "dep-1" in r.getMessage()]) == 1

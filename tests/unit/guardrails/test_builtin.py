"""The built-in guardrails (regex, pii, openai_moderation, http) and build_guardrail.

The remote guardrails run against real HTTP servers on 127.0.0.1:0 — the project's mock
upstream (its /v1/moderations flags texts containing FLAG_WORD as harassment) and, for answers
the mock never gives (malformed results, verdicts), a tiny scripted ASGI app served by hypercorn
— so no autojump_clock in those tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from gateway_trio.config import ConfigError
from gateway_trio.guardrails import CustomGuardrail, GuardrailBlocked
from gateway_trio.guardrails.builtin import BUILTINS, build_guardrail
from gateway_trio.guardrails.http import GuardrailServiceError, HTTPGuardrail
from gateway_trio.guardrails.moderation import OpenAIModerationGuardrail
from gateway_trio.guardrails.pii import PIIGuardrail, luhn_valid
from gateway_trio.guardrails.regex import RegexGuardrail
from gateway_trio.testing import FLAG_WORD, Behavior, MockUpstream

SECRET = "sk-very-secret-key-123"


async def check(guardrail: CustomGuardrail, *texts: str, input_type: str = "request") -> list[str]:
    result = await guardrail.apply_guardrail({"texts": list(texts)}, {}, input_type)  # type: ignore[arg-type]
    return result["texts"]


# -- regex --------------------------------------------------------------------------------------


async def test_regex_blocks_and_names_the_pattern_not_the_text() -> None:
    guard = RegexGuardrail("no-keys", patterns=[r"internal\.corp", r"sk-[A-Za-z0-9]{8,}"])
    with pytest.raises(GuardrailBlocked) as info:
        await check(guard, "hello", "my key is sk-abcdef123456")
    message = str(info.value)
    assert "no-keys" in message and "#1" in message
    assert "sk-abcdef123456" not in message
    assert info.value.code == "guardrail_blocked"


async def test_regex_passes_clean_text_unchanged() -> None:
    guard = RegexGuardrail("r", patterns=["forbidden"])
    inputs = {"texts": ["all fine", "still fine"]}
    assert await guard.apply_guardrail(inputs, {}, "response") is inputs


async def test_regex_custom_message_and_case_flag() -> None:
    sensitive = RegexGuardrail("r", patterns=["secret"], message="no secrets please")
    assert await check(sensitive, "SECRET plans") == ["SECRET plans"]
    insensitive = RegexGuardrail("r", patterns=["secret"], flags="i", message="no secrets please")
    with pytest.raises(GuardrailBlocked, match="no secrets please"):
        await check(insensitive, "SECRET plans")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"patterns": ["ok", "(unclosed"]}, "params.patterns[1]"),
        ({}, "params.patterns"),
        ({"patterns": []}, "params.patterns"),
        ({"patterns": [3]}, "params.patterns[0]"),
        ({"patterns": ["a"], "flags": "q"}, "params.flags"),
        ({"patterns": ["a"], "message": 5}, "params.message"),
    ],
)
def test_regex_bad_params(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError) as info:
        RegexGuardrail("bad", **params)
    assert named in str(info.value) and "'bad'" in str(info.value)


# -- pii ----------------------------------------------------------------------------------------


async def test_pii_masks_each_entity_in_mixed_text() -> None:
    guard = PIIGuardrail("pii")
    text = (
        "Write to jane.doe+news@example.co.uk or call (555) 123-4567 / +44 20 7946 0958 / "
        "1-800-555-1234 / +14155552671; pay with 4111 1111 1111 1111 or 5500-0000-0000-0004."
    )
    [masked] = await check(guard, text)
    assert masked == (
        "Write to [EMAIL] or call [PHONE] / [PHONE] / [PHONE] / [PHONE]; pay with [CARD] or [CARD]."
    )


async def test_pii_card_needs_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("1234567812345678")
    guard = PIIGuardrail("pii")
    assert await check(guard, "card 4111111111111111 order 1234567812345678 amex 3782 822463 10005") == [
        "card [CARD] order 1234567812345678 amex [CARD]"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "in 2024 we sold 150 units",
        "version 1.2.3, build 20240115, on 2024-01-15 at 10:30",
        "order #1234567 shipped to 192.168.100.1 port 8080",
        "ratio 3/4, total -42, score +7, 12345 items",
        "no at sign here but user.name and example.com",
    ],
)
async def test_pii_no_false_positives(text: str) -> None:
    inputs = {"texts": [text]}
    assert await PIIGuardrail("pii").apply_guardrail(inputs, {}, "request") is inputs


async def test_pii_entities_subset() -> None:
    guard = PIIGuardrail("pii", entities=["email"])
    assert await check(guard, "a@b.io 555-123-4567 4111111111111111") == ["[EMAIL] 555-123-4567 4111111111111111"]


async def test_pii_block_action_names_kinds_not_values() -> None:
    guard = PIIGuardrail("pii-block", action="block")
    assert await check(guard, "nothing personal") == ["nothing personal"]
    with pytest.raises(GuardrailBlocked) as info:
        await check(guard, "hi", "mail bob@example.com, card 4111 1111 1111 1111")
    message = str(info.value)
    assert "email" in message and "card" in message and "phone" not in message
    assert "bob@example.com" not in message and "4111" not in message


def test_pii_masking_holds_stream_chunks_until_checked() -> None:
    # The stage reads `default_stream_mode`: masking after the text has left would be useless.
    assert PIIGuardrail("pii").default_stream_mode == "buffer"
    assert PIIGuardrail("pii", action="block").default_stream_mode == "end"


async def test_pii_is_fast_on_long_texts() -> None:
    guard = PIIGuardrail("pii")
    long_texts = ["a" * 200_000, "1" * 200_000, "1 " * 100_000, "x@" * 100_000, "report 2024 " * 20_000]
    start = time.process_time()  # this process's CPU: what other processes on the cores do does not count
    await check(guard, *long_texts)
    assert time.process_time() - start < 2.0  # about 0.2 s; a backtracking pattern takes minutes


@pytest.mark.parametrize(
    ("params", "named"),
    [({"entities": ["email", "ssn"]}, "params.entities"), ({"entities": []}, "params.entities"),
     ({"action": "redact"}, "params.action")],
)
def test_pii_bad_params(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        PIIGuardrail("pii", **params)


# -- a scripted HTTP service for the remote guardrails --------------------------------------------


@dataclass
class Service:
    """Answers each path with a scripted (status, body) and records what it was sent."""

    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    delay_s: float = 0.0
    base: str = ""

    def answer(self, path: str, status: int, body: Any) -> None:
        self.answers[path] = (status, body if isinstance(body, bytes) else orjson.dumps(body))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((scope["path"], headers, orjson.loads(body) if body else None))
        if self.delay_s:
            await trio.sleep(self.delay_s)
        status, payload = self.answers.get(scope["path"], (404, b'{"error": "no such route"}'))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def service(nursery: trio.Nursery) -> Service:
    stub = Service()
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    binds = await nursery.start(partial(serve, stub, config))
    stub.base = binds[0]
    return stub


def moderation_result(flagged: bool, **categories: bool) -> dict[str, Any]:
    return {"flagged": flagged, "categories": categories, "category_scores": {k: 0.9 for k in categories}}


def assert_no_secret(exc: BaseException) -> None:
    assert SECRET not in str(exc) and SECRET not in repr(exc)
    # No chained exception (an httpx error can carry the URL) is shown with it.
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


# -- openai_moderation --------------------------------------------------------------------------


async def test_moderation_against_mock_upstream(upstream: MockUpstream) -> None:
    guard = OpenAIModerationGuardrail("mod", api_base=upstream.base_url + "/v1", api_key=SECRET)
    try:
        assert await check(guard, "a kind word", "another") == ["a kind word", "another"]
        with pytest.raises(GuardrailBlocked, match="harassment"):
            await check(guard, "fine", f"please {FLAG_WORD} now")
        sent = upstream.received[-1]
        assert sent.path == "/v1/moderations" and sent.headers["authorization"] == f"Bearer {SECRET}"
        assert sent.json == {"model": "omni-moderation-latest", "input": ["fine", f"please {FLAG_WORD} now"]}
    finally:
        await guard.aclose()


async def test_moderation_categories_filter_against_mock_upstream(upstream: MockUpstream) -> None:
    base = upstream.base_url + "/v1"
    violence_only = OpenAIModerationGuardrail("mod", api_base=base, categories=["violence", "self-harm"])
    harassment = OpenAIModerationGuardrail("mod", api_base=base, categories=["harassment"])
    try:
        assert await check(violence_only, FLAG_WORD) == [FLAG_WORD]
        with pytest.raises(GuardrailBlocked, match="harassment"):
            await check(harassment, FLAG_WORD)
    finally:
        await violence_only.aclose()
        await harassment.aclose()


async def test_moderation_http_500_from_mock_upstream(upstream: MockUpstream) -> None:
    upstream.behaviors["broken-moderation"] = Behavior(status=500, content=f"server error for {SECRET}")
    guard = OpenAIModerationGuardrail(
        "mod", api_base=upstream.base_url + "/v1", api_key=SECRET, model="broken-moderation"
    )
    with pytest.raises(GuardrailServiceError, match="HTTP 500") as info:
        await check(guard, "text")
    assert_no_secret(info.value)
    await guard.aclose()


async def test_moderation_flagged_blocks_and_sends_model_input_and_key(service: Service) -> None:
    service.answer("/v1/moderations", 200, {"id": "m", "results": [
        moderation_result(False, hate=False), moderation_result(True, violence=True, hate=False)]})
    guard = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1/", api_key=SECRET)
    try:
        with pytest.raises(GuardrailBlocked) as info:
            await check(guard, "first", "second")
        assert "mod" in str(info.value) and "violence" in str(info.value) and "hate" not in str(info.value)
        path, headers, body = service.received[0]
        assert path == "/v1/moderations"
        assert body == {"model": "omni-moderation-latest", "input": ["first", "second"]}
        assert headers["authorization"] == f"Bearer {SECRET}"
    finally:
        await guard.aclose()


async def test_moderation_not_flagged_passes_and_reuses_one_client(service: Service) -> None:
    service.answer("/v1/moderations", 200, {"results": [moderation_result(False, hate=False)]})
    guard = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1", model="text-moderation-stable")
    inputs = {"texts": ["hello"]}
    assert await guard.apply_guardrail(inputs, {}, "request") is inputs
    client = guard._client
    assert await guard.apply_guardrail(inputs, {}, "response") is inputs
    assert guard._client is client and client is not None
    assert "authorization" not in service.received[0][1]
    assert service.received[0][2]["model"] == "text-moderation-stable"
    await guard.aclose()
    assert guard._client is None and client.is_closed


async def test_moderation_categories_filter(service: Service) -> None:
    service.answer("/v1/moderations", 200, {"results": [moderation_result(True, harassment=True, violence=False)]})
    only_violence = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1", categories=["violence"])
    assert await check(only_violence, "rude words") == ["rude words"]
    service.answer("/v1/moderations", 200, {"results": [moderation_result(True, harassment=True, violence=True)]})
    with pytest.raises(GuardrailBlocked) as info:
        await check(only_violence, "violent words")
    assert "violence" in str(info.value) and "harassment" not in str(info.value)
    await only_violence.aclose()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": {"message": f"upstream failed for key {SECRET}"}}),
        (401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}),
        (200, b"not json " + SECRET.encode()),
        (200, {"results": "nope"}),
        (200, {"results": [{"categories": {}}]}),
        (200, []),
    ],
)
async def test_moderation_errors_raise_without_the_key(service: Service, status: int, body: Any) -> None:
    service.answer("/v1/moderations", status, body)
    guard = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1", api_key=SECRET)
    with pytest.raises(GuardrailServiceError) as info:
        await check(guard, "text")
    assert not isinstance(info.value, GuardrailBlocked)
    assert "'mod'" in str(info.value)
    if status != 200:
        assert f"HTTP {status}" in str(info.value)
    assert_no_secret(info.value)
    await guard.aclose()


async def test_moderation_unreachable_and_timeout_raise_without_the_key(service: Service) -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = OpenAIModerationGuardrail("mod", api_base=f"http://127.0.0.1:{port}/v1", api_key=SECRET)
    with pytest.raises(GuardrailServiceError, match="unreachable") as info:
        await check(dead, "text")
    assert_no_secret(info.value)
    await dead.aclose()

    service.delay_s = 1.0
    service.answer("/v1/moderations", 200, {"results": [moderation_result(False)]})
    slow = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1", api_key=SECRET, timeout_s=0.1)
    with pytest.raises(GuardrailServiceError, match="timed out") as info:
        await check(slow, "text")
    assert_no_secret(info.value)
    await slow.aclose()


async def test_moderation_skips_empty_texts(service: Service) -> None:
    guard = OpenAIModerationGuardrail("mod", api_base=service.base + "/v1")
    assert await check(guard, "") == [""]
    assert service.received == [] and guard._client is None


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "params.api_base"),
        ({"api_base": "ftp://host/v1"}, "params.api_base"),
        ({"api_base": "http://h/v1", "categories": "violence"}, "params.categories"),
        ({"api_base": "http://h/v1", "timeout_s": 0}, "params.timeout_s"),
        ({"api_base": "http://h/v1", "model": ""}, "params.model"),
        ({"api_base": "http://h/v1", "api_key": 123}, "params.api_key"),
    ],
)
def test_moderation_bad_params(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        OpenAIModerationGuardrail("mod", **params)


# -- http ---------------------------------------------------------------------------------------


async def test_http_verdict_block(service: Service) -> None:
    service.answer("/verdict", 200, {"action": "block", "reason": "policy 7"})
    guard = HTTPGuardrail("ext", url=service.base + "/verdict", headers={"x-api-key": SECRET})
    with pytest.raises(GuardrailBlocked, match="policy 7"):
        await check(guard, "one", "two", input_type="response")
    path, headers, body = service.received[0]
    assert body == {"texts": ["one", "two"], "input_type": "response", "guardrail": "ext"}
    assert headers["x-api-key"] == SECRET
    await guard.aclose()


async def test_http_verdict_mask_and_pass(service: Service) -> None:
    guard = HTTPGuardrail("ext", url=service.base + "/verdict", timeout_s=5)
    service.answer("/verdict", 200, {"action": "mask", "texts": ["[one]", "two"]})
    inputs = {"texts": ["one", "two"], "other": 1}
    result = await guard.apply_guardrail(inputs, {}, "request")
    assert result == {"texts": ["[one]", "two"], "other": 1} and inputs["texts"] == ["one", "two"]
    for action in ("pass", "allow"):
        service.answer("/verdict", 200, {"action": action})
        assert await guard.apply_guardrail(inputs, {}, "request") is inputs
    await guard.aclose()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"action": "mask", "texts": ["only one"]}),
        (200, {"action": "mask"}),
        (200, {"action": "mask", "texts": [1, 2]}),
        (200, {"action": "shrug"}),
        (200, {"verdict": "ok"}),
        (200, ["pass"]),
        (200, b"<html>" + SECRET.encode()),
        (500, {"error": SECRET}),
        (403, {"error": SECRET}),
    ],
)
async def test_http_bad_verdicts_raise(service: Service, status: int, body: Any) -> None:
    service.answer("/verdict", status, body)
    guard = HTTPGuardrail("ext", url=service.base + "/verdict", headers={"authorization": f"Bearer {SECRET}"})
    with pytest.raises(GuardrailServiceError) as info:
        await check(guard, "one", "two")
    assert "'ext'" in str(info.value)
    assert_no_secret(info.value)
    await guard.aclose()


@pytest.mark.parametrize(
    ("params", "named"),
    [({}, "params.url"), ({"url": "not a url"}, "params.url"),
     ({"url": "http://h/x", "headers": {"a": 1}}, "params.headers"),
     ({"url": "http://h/x", "timeout_s": "fast"}, "params.timeout_s")],
)
def test_http_bad_params(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        HTTPGuardrail("ext", **params)


# -- build_guardrail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "cls"),
    [
        ("regex", {"patterns": ["x"]}, RegexGuardrail),
        ("pii", {"entities": ["card"]}, PIIGuardrail),
        ("openai_moderation", {"api_base": "http://127.0.0.1:9/v1", "api_key": SECRET}, OpenAIModerationGuardrail),
        ("http", {"url": "http://127.0.0.1:9/check", "headers": {"x-k": "v"}, "timeout_s": 2}, HTTPGuardrail),
    ],
)
def test_build_each_builtin(kind: str, params: dict[str, Any], cls: type) -> None:
    assert BUILTINS[kind] is cls
    guard = build_guardrail("g1", kind, ["pre_call", "post_call"], True, params)
    assert type(guard) is cls
    assert guard.guardrail_name == "g1" and guard.default_on is True
    assert guard.event_hook == ["pre_call", "post_call"]
    assert all(guard.params[k] == v for k, v in params.items())
    assert guard.should_run_guardrail({}, "post_call") and not guard.should_run_guardrail({}, "during_call")


async def test_build_custom_class() -> None:
    guard = build_guardrail("shout", "guardrail_classes:Shout", "post_call", False, {"forbidden": "nope"})
    assert guard.guardrail_name == "shout" and guard.event_hook == ["post_call"]
    assert await check(guard, "hi there") == ["HI THERE"]
    with pytest.raises(GuardrailBlocked):
        await check(guard, "nope")


@pytest.mark.parametrize(
    ("guardrail", "params", "expected"),
    [
        ("regexp", {}, "unknown built-in 'regexp'"),
        ("regex", {"pattern": ["x"], "flags": "i"}, r"unknown params for 'regex': pattern \(known: patterns"),
        ("regex", {"patterns": ["("]}, r"params\.patterns\[0\] is not a valid regex"),
        ("pii", {"action": "nuke"}, r"params\.action"),
        ("http", {}, r"params\.url is required"),
        ("no_such_module_xyz:Thing", {}, "cannot import"),
        ("guardrail_classes:Missing", {}, "has no attribute"),
        ("guardrail_classes:NotAGuardrail", {}, "not a CustomGuardrail subclass"),
        ("guardrail_classes:shout_instance", {}, "not a CustomGuardrail subclass"),
        ("guardrail_classes:Shout", {}, "params.forbidden is required"),
        ("guardrail_classes:", {}, "expected 'package.module:object'"),
    ],
)
def test_build_errors_name_the_guardrail(guardrail: str, params: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        build_guardrail("my-guard", guardrail, "pre_call", False, params)
    assert str(info.value).startswith("guardrail 'my-guard'")

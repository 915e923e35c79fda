"""The non-chat call types (text completions, embeddings, moderations, transcriptions) on every
provider, against the real wire formats, through httpx.MockTransport."""

from __future__ import annotations

import email.policy
import os
import random
from email.message import Message
from email.parser import BytesParser
from typing import Any

import httpx
import orjson
import pytest
from wire_exchange import send

from gateway_trio.adapters import PROVIDERS
from gateway_trio.adapters.anthropic import AnthropicAdapter
from gateway_trio.adapters.azure import AzureAdapter
from gateway_trio.adapters.base import RawBody, Upload
from gateway_trio.adapters.mock import MockAdapter
from gateway_trio.adapters.openai import OpenAIAdapter, OpenAIStreamDecoder, multipart_form
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, UpstreamError

OPENAI_KEY = "sk-test-0123456789abcdefghijklmnop"
AZURE_KEY = "0123456789abcdef0123456789abcdef"
openai = OpenAIAdapter()
azure = AzureAdapter()
anthropic = AnthropicAdapter()
mock = MockAdapter()


def deployment(model: str, **overrides: Any) -> Deployment:
    return Deployment.from_config(ModelConfig(**{"name": "group", "model": model, **overrides}))


OPENAI = deployment("openai/gpt-3.5-turbo-instruct", api_key=OPENAI_KEY, api_base="https://llm.example/v1")
AZURE = deployment("azure/my-dep", api_key=AZURE_KEY, api_base="https://contoso.openai.azure.com")
ANTHROPIC = deployment("anthropic/claude-3-5-haiku", api_key="sk-ant-test")


def parse_form(content_type: str, body: bytes) -> Message:
    """Read a multipart/form-data body back with the stdlib, as an independent check."""
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart() and not message.defects
    return message


def form_parts(message: Message) -> list[tuple[str, str | None, str, bytes]]:
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_content_type(),
         part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


# -- OpenAI: text completions -------------------------------------------------------------

TEXT_COMPLETION = b"""{
  "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
  "object": "text_completion",
  "created": 1589478378,
  "model": "gpt-3.5-turbo-instruct",
  "system_fingerprint": "fp_44709d6fcb",
  "choices": [{"text": "\\n\\nThis is indeed a test", "index": 0, "logprobs": null, "finish_reason": "length"}],
  "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
}"""

TEXT_CHUNKS = [
    b'{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":null}',
    b'{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":" is","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":null}',
    b'{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":null}',
]
TEXT_USAGE_CHUNK = b'{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}'
TEXT_STREAM = b"".join(b"data: " + c + b"\n\n" for c in [*TEXT_CHUNKS, TEXT_USAGE_CHUNK]) + b"data: [DONE]\n\n"

TEXT_BODY: dict[str, Any] = {"model": "instruct", "prompt": "Say this is a test", "max_tokens": 7, "temperature": 0}


async def test_openai_text_completion_request_and_response() -> None:
    req = openai.request("text_completion", OPENAI, TEXT_BODY, "gpt-3.5-turbo-instruct", False)
    seen, response = await send(req, httpx.Response(200, content=TEXT_COMPLETION))
    assert (seen.method, str(seen.url)) == ("POST", "https://llm.example/v1/completions")
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert orjson.loads(seen.content) == {**TEXT_BODY, "model": "gpt-3.5-turbo-instruct"}
    completion = openai.response("text_completion", response.content, "gpt-3.5-turbo-instruct")
    assert completion["choices"][0]["text"] == "\n\nThis is indeed a test"
    assert completion["usage"]["total_tokens"] == 12


def test_openai_text_completion_stream_options() -> None:
    body = {**TEXT_BODY, "stream": True, "stream_options": {"include_usage": False}}
    streamed = orjson.loads(openai.text_completion_request(OPENAI, body, "m", stream=True).content)
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    plain = orjson.loads(openai.text_completion_request(OPENAI, body, "m", stream=False).content)
    assert plain["stream"] is False and "stream_options" not in plain


@pytest.mark.parametrize("payload", [b"nope", b"[]", b'{"object": "text_completion"}'])
def test_openai_text_completion_malformed(payload: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed upstream reply"):
        openai.text_completion_response(payload, "m")


def test_openai_text_completion_stream_is_the_chat_decoder() -> None:
    decoder = openai.stream("text_completion", "m")
    assert isinstance(decoder, OpenAIStreamDecoder)
    chunks = [c for i in range(0, len(TEXT_STREAM), 11) for c in decoder.feed(TEXT_STREAM[i : i + 11])]
    assert chunks == TEXT_CHUNKS  # passed through byte for byte
    assert decoder.usage_chunk == TEXT_USAGE_CHUNK
    assert decoder.usage == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert decoder.done


# -- OpenAI: embeddings and moderations ------------------------------------------------------

EMBEDDINGS = b"""{"object": "list", "data": [{"object": "embedding", "index": 0,
"embedding": [0.0023064255, -0.009327292, -0.0028842222]}], "model": "text-embedding-3-small",
"usage": {"prompt_tokens": 8, "total_tokens": 8}}"""

MODERATION = b"""{"id": "modr-0d9740456c391e43c445bf0f010940c7", "model": "omni-moderation-2024-09-26",
"results": [{"flagged": true, "categories": {"harassment": true, "violence": false},
"category_scores": {"harassment": 0.8189, "violence": 0.0001},
"category_applied_input_types": {"harassment": ["text"], "violence": ["text"]}}]}"""


async def test_openai_embeddings() -> None:
    body = {"model": "emb", "input": ["a", "b"], "encoding_format": "float"}
    req = openai.request("embeddings", OPENAI, body, "text-embedding-3-small", False)
    seen, response = await send(req, httpx.Response(200, content=EMBEDDINGS))
    assert str(seen.url) == "https://llm.example/v1/embeddings"
    assert orjson.loads(seen.content) == {**body, "model": "text-embedding-3-small"}
    answer = openai.response("embeddings", response.content, "text-embedding-3-small")
    assert answer["data"][0]["embedding"][0] == 0.0023064255 and answer["usage"]["prompt_tokens"] == 8
    with pytest.raises(UpstreamError, match="no 'data'"):
        openai.embeddings_response(b'{"object": "list"}', "m")
    with pytest.raises(BadRequest, match="stream") as refused:
        openai.request("embeddings", OPENAI, body, "m", True)
    assert refused.value.status == 400


async def test_openai_moderation_replaces_the_model_only_when_given() -> None:
    with_model = openai.request("moderation", OPENAI, {"model": "omni", "input": "hi"}, "omni-moderation-latest", False)
    seen, response = await send(with_model, httpx.Response(200, content=MODERATION))
    assert str(seen.url) == "https://llm.example/v1/moderations"
    assert orjson.loads(seen.content) == {"model": "omni-moderation-latest", "input": "hi"}
    assert openai.response("moderation", response.content, "m")["results"][0]["flagged"] is True
    without = openai.request("moderation", OPENAI, {"input": ["a", "b"]}, "omni-moderation-latest", False)
    assert orjson.loads(without.content) == {"input": ["a", "b"]}
    with pytest.raises(UpstreamError, match="no 'results'"):
        openai.moderation_response(b'{"id": "modr-x"}', "m")


# -- OpenAI: transcriptions ------------------------------------------------------------------

AUDIO = bytes(random.Random(7).randrange(256) for _ in range(4096)) + b"\r\n--\r\n\r\n"
UPLOAD = Upload(
    fields={"model": "whisper", "language": "en", "response_format": "json", "prompt": "Names: Zoë, O'Brien"},
    filename='meeting "final".wav',
    content=AUDIO,
    content_type="audio/wav",
)


async def test_openai_transcription_multipart_parses_back() -> None:
    dep = deployment("openai/whisper-1", api_key=OPENAI_KEY, headers={"x-team": "blue", "Content-Type": "text/plain"})
    req = openai.request("transcription", dep, UPLOAD, "whisper-1", False)
    seen, _ = await send(req, httpx.Response(200, json={"text": "hi"}))
    assert str(seen.url) == "https://api.openai.com/v1/audio/transcriptions"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}" and seen.headers["x-team"] == "blue"
    content_type = seen.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")  # a configured one cannot break it
    parts = form_parts(parse_form(content_type, seen.content))
    # Fields first (the client's order, model swapped in place), then the file.
    assert parts == [
        ("model", None, "text/plain", b"whisper-1"),
        ("language", None, "text/plain", b"en"),
        ("response_format", None, "text/plain", b"json"),
        ("prompt", None, "text/plain", "Names: Zoë, O'Brien".encode()),
        ("file", "meeting %22final%22.wav", "audio/wav", AUDIO),
    ]
    assert UPLOAD.fields["model"] == "whisper"  # the caller's upload is untouched


def test_multipart_boundary_is_random_and_stream_is_dropped() -> None:
    upload = Upload(fields={"stream": "true"}, filename="a.mp3", content=b"ID3")
    first = openai.transcription_request(OPENAI, upload, "gpt-4o-transcribe", False)
    second = openai.transcription_request(OPENAI, upload, "gpt-4o-transcribe", False)
    assert first.headers["content-type"] != second.headers["content-type"]
    parts = form_parts(parse_form(first.headers["content-type"], first.content))
    assert [(name, data) for name, _, _, data in parts] == [("model", b"gpt-4o-transcribe"), ("file", b"ID3")]
    with pytest.raises(BadRequest, match="stream"):
        openai.transcription_request(OPENAI, upload, "m", True)


def test_multipart_form_never_contains_its_boundary() -> None:
    body, content_type = multipart_form({}, Upload(fields={}, filename="x", content=os.urandom(64)))
    boundary = content_type.partition("boundary=")[2].encode()
    assert body.count(boundary) == 2 and body.endswith(b"--" + boundary + b"--\r\n")


def test_transcription_response_json_or_raw() -> None:
    answer = openai.response("transcription", b'{"text": "Hello.", "usage": {"type": "duration", "seconds": 2}}', "m", "application/json")
    assert answer == {"text": "Hello.", "usage": {"type": "duration", "seconds": 2}}
    for content_type, payload in [
        ("text/plain; charset=utf-8", b"Hello.\n"),
        ("application/x-subrip", b"1\n00:00:00,000 --> 00:00:01,000\nHello.\n\n"),
        ("text/vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello.\n\n"),
    ]:
        assert openai.response("transcription", payload, "m", content_type) == RawBody(payload, content_type)
    with pytest.raises(UpstreamError, match="no 'text'"):
        openai.transcription_response(b'{"task": "transcribe"}', "m", "application/json; charset=utf-8")


# -- Azure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_type", "body", "endpoint"),
    [
        ("chat", {"messages": [{"role": "user", "content": "hi"}]}, "chat/completions"),
        ("text_completion", TEXT_BODY, "completions"),
        ("embeddings", {"input": "hi"}, "embeddings"),
        ("transcription", UPLOAD, "audio/transcriptions"),
    ],
)
async def test_azure_deployment_urls(call_type: str, body: Any, endpoint: str) -> None:
    req = azure.request(call_type, AZURE, body, "my-dep", False)
    seen, _ = await send(req, httpx.Response(200, json={}))
    assert str(seen.url) == (
        f"https://contoso.openai.azure.com/openai/deployments/my-dep/{endpoint}?api-version=2024-10-21"
    )
    assert seen.headers["api-key"] == AZURE_KEY and "authorization" not in seen.headers


def test_azure_answers_read_as_openai_and_no_moderation() -> None:
    assert azure.response("text_completion", TEXT_COMPLETION, "my-dep")["object"] == "text_completion"
    assert azure.response("embeddings", EMBEDDINGS, "my-dep")["object"] == "list"
    assert isinstance(azure.stream("text_completion", "my-dep"), OpenAIStreamDecoder)
    with pytest.raises(BadRequest, match="azure deployments do not serve moderation requests") as refused:
        azure.request("moderation", AZURE, {"input": "x"}, "my-dep", False)
    assert refused.value.status == 400


# -- Anthropic ----------------------------------------------------------------------------------

MESSAGE = b"""{"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
"model": "claude-3-5-haiku-20241022", "content": [{"type": "text", "text": "Hi! "}, {"type": "text", "text": "Bye."}],
"stop_reason": "max_tokens", "stop_sequence": null,
"usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 2}}"""

MESSAGE_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-3-5-haiku-20241022","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Once"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" upon"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":3}}

event: message_stop
data: {"type":"message_stop"}

"""


async def test_anthropic_text_completion_request() -> None:
    body = {**TEXT_BODY, "prompt": ["Once", "upon a time"], "stop": "END", "top_p": 0.5, "echo": True,
            "logprobs": 2, "suffix": "x", "best_of": 1}
    req = anthropic.request("text_completion", ANTHROPIC, body, "claude-3-5-haiku", True)
    seen, _ = await send(req, httpx.Response(200, content=MESSAGE))
    assert str(seen.url) == "https://api.anthropic.com/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-test" and seen.headers["anthropic-version"] == "2023-06-01"
    assert orjson.loads(seen.content) == {
        "model": "claude-3-5-haiku",
        "messages": [{"role": "user", "content": "Once\nupon a time"}],
        "max_tokens": 7,
        "stop_sequences": ["END"],
        "temperature": 0,
        "top_p": 0.5,
        "stream": True,
    }
    plain = orjson.loads(anthropic.text_completion_request(ANTHROPIC, {"prompt": "Hi"}, "c", False).content)
    assert plain == {"model": "c", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4096}


@pytest.mark.parametrize("prompt", [None, "", [], [1, 2, 3], ["a", 2]])
def test_anthropic_text_completion_needs_text(prompt: Any) -> None:
    with pytest.raises(BadRequest, match="^prompt: ") as refused:
        anthropic.text_completion_request(ANTHROPIC, {"prompt": prompt}, "c", False)
    assert refused.value.status == 400


def test_anthropic_text_completion_response() -> None:
    answer = anthropic.response("text_completion", MESSAGE, "claude-3-5-haiku")
    assert isinstance(answer.pop("created"), int)
    assert answer == {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "object": "text_completion",
        "model": "claude-3-5-haiku-20241022",
        "choices": [{"text": "Hi! Bye.", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16,
                  "prompt_tokens_details": {"cached_tokens": 2}},
    }
    with pytest.raises(UpstreamError, match="^Overloaded$"):
        anthropic.text_completion_response(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "c")
    with pytest.raises(UpstreamError, match="malformed upstream reply"):
        anthropic.text_completion_response(b'{"id": "msg_x"}', "c")


@pytest.mark.parametrize("size", [len(MESSAGE_STREAM), 1, 9])
def test_anthropic_text_completion_stream(size: int) -> None:
    decoder = anthropic.stream("text_completion", "claude-3-5-haiku")
    raw = [c for i in range(0, len(MESSAGE_STREAM), size) for c in decoder.feed(MESSAGE_STREAM[i : i + size])]
    chunks = [orjson.loads(c) for c in raw]
    assert [c["choices"] for c in chunks] == [
        [{"text": "Once", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": " upon", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}],
    ]
    assert {(c["id"], c["object"], c["model"]) for c in chunks} == {
        ("msg_01", "text_completion", "claude-3-5-haiku-20241022")
    }
    assert decoder.done
    assert decoder.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    usage_chunk = orjson.loads(decoder.usage_chunk)
    assert usage_chunk["object"] == "text_completion" and usage_chunk["choices"] == []
    assert usage_chunk["usage"] == decoder.usage


@pytest.mark.parametrize("call_type", ["embeddings", "moderation", "transcription"])
def test_anthropic_refuses_what_it_does_not_serve(call_type: str) -> None:
    body: Any = UPLOAD if call_type == "transcription" else {"input": "x"}
    with pytest.raises(BadRequest, match=f"anthropic deployments do not serve {call_type.replace('_', ' ')}") as refused:
        anthropic.request(call_type, ANTHROPIC, body, "claude", False)
    assert refused.value.status == 400
    with pytest.raises(BadRequest, match="embeddings"):
        anthropic.response("embeddings", b"{}", "claude")


def test_anthropic_chat_still_chat() -> None:
    answer = anthropic.response("chat", MESSAGE, "c")
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "Hi! Bye."
    chunks = [orjson.loads(c) for c in anthropic.stream("chat", "c").feed(MESSAGE_STREAM)]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


# -- the built-in mock provider ------------------------------------------------------------------

MOCK = deployment("mock/echo")


async def through_mock(call_type: str, body: Any, stream: bool = False, dep: Deployment = MOCK) -> httpx.Response:
    req = mock.request(call_type, dep, body, dep.model, stream)
    async with httpx.AsyncClient(transport=mock.local_transport(dep)) as client:
        response = await client.send(httpx.Request(req.method, req.url, headers=req.headers, content=req.content))
        await response.aread()
    return response


async def test_mock_text_completion_json_and_stream() -> None:
    response = await through_mock("text_completion", {"prompt": ["echo", "me back"]})
    answer = mock.response("text_completion", response.content, "echo")
    assert answer["object"] == "text_completion" and answer["id"].startswith("cmpl-")
    assert answer["choices"] == [{"text": "echo\nme back", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}

    fixed = deployment("mock/echo", mock_response="Fixed answer here")
    streamed = await through_mock("text_completion", {"prompt": "x", "stream": True}, True, fixed)
    decoder = mock.stream("text_completion", "echo")
    chunks = [orjson.loads(c) for c in decoder.feed(streamed.content)]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Fixed answer here"
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert decoder.done and decoder.usage == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    assert orjson.loads(decoder.usage_chunk)["choices"] == []


async def test_mock_embeddings_are_deterministic() -> None:
    first = mock.response("embeddings", (await through_mock("embeddings", {"input": ["a b", "c"]})).content, "e")
    second = mock.response("embeddings", (await through_mock("embeddings", {"input": ["a b", "c"]})).content, "e")
    assert first == second
    vectors = [item["embedding"] for item in first["data"]]
    assert [item["index"] for item in first["data"]] == [0, 1]
    assert len(vectors[0]) == 8 and vectors[0] != vectors[1] and all(-1 <= v < 1 for v in vectors[0])
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    sized = mock.response("embeddings", (await through_mock("embeddings", {"input": "a b", "dimensions": 3})).content, "e")
    assert sized["data"][0]["embedding"] == vectors[0][:3]
    for bad in ({"model": "e"}, {"input": 5}, {"input": ""}, {"input": []}):
        assert (await through_mock("embeddings", bad)).status_code == 400
    tokens = mock.response("embeddings", (await through_mock("embeddings", {"input": [1, 2, 3]})).content, "e")
    assert len(tokens["data"]) == 1 and tokens["usage"]["prompt_tokens"] == 3


async def test_mock_moderations() -> None:
    answer = mock.response("moderation", (await through_mock("moderation", {"input": ["fine", "please flag-me"]})).content, "m")
    assert [r["flagged"] for r in answer["results"]] == [False, True]
    assert answer["results"][1]["categories"]["harassment"] is True
    assert not any(answer["results"][0]["categories"].values())
    parts = [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    single = mock.response("moderation", (await through_mock("moderation", {"input": parts})).content, "m")
    assert [r["flagged"] for r in single["results"]] == [False]


async def test_mock_transcription_json_and_text() -> None:
    upload = Upload(fields={"model": "whisper"}, filename="clip.wav", content=AUDIO, content_type="audio/wav")
    response = await through_mock("transcription", upload)
    answer = mock.response("transcription", response.content, "w", response.headers["content-type"])
    assert answer == {"text": f"transcribed {len(AUDIO)} bytes from clip.wav"}

    as_text = Upload(fields={"response_format": "text"}, filename="a.mp3", content=b"abc")
    response = await through_mock("transcription", as_text)
    raw = mock.response("transcription", response.content, "w", response.headers["content-type"])
    assert isinstance(raw, RawBody)
    assert raw.content == b"transcribed 3 bytes from a.mp3\n" and raw.content_type.startswith("text/plain")


async def test_mock_transcription_needs_a_file() -> None:
    async with httpx.AsyncClient(transport=mock.local_transport(MOCK)) as client:
        no_file = await client.post("http://mock.invalid/v1/audio/transcriptions", data={"model": "w"}, files={"other": b"x"})
        not_form = await client.post("http://mock.invalid/v1/audio/transcriptions", json={"model": "w"})
    assert no_file.status_code == 400 and mock.error_message(400, no_file.content) == "file: is required"
    assert not_form.status_code == 400


def test_every_provider_serves_the_expected_call_types() -> None:
    served = {
        name: {
            call_type
            for call_type in ("chat", "text_completion", "embeddings", "moderation", "transcription")
            if _serves(PROVIDERS[name], call_type)
        }
        for name in ("openai", "azure", "anthropic", "mock")
    }
    everything = {"chat", "text_completion", "embeddings", "moderation", "transcription"}
    assert served == {
        "openai": everything,
        "mock": everything,
        "azure": everything - {"moderation"},
        "anthropic": {"chat", "text_completion"},
    }


def _serves(adapter: Any, call_type: str) -> bool:
    try:
        adapter._method(call_type, "request")
    except BadRequest:
        return False
    return True

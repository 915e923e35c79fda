"""The OpenAI adapter, also used for any OpenAI-compatible server.

Our internal format *is* OpenAI's, so the work here is mostly to leave bytes alone: stream
chunks are parsed once (to see usage and errors) and forwarded as the upstream sent them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import orjson

from gateway_trio.adapters.base import AdapterBase, RawBody, SSEDecoder, Upload, UpstreamRequest
from gateway_trio.adapters.messages_chat import chat_body_from_messages, message_from_completion
from gateway_trio.adapters.messages_stream import MessagesFromChatStream
from gateway_trio.adapters.params import CHAT_FROM_MESSAGES, Unhonoured
from gateway_trio.adapters.token_count import count_answer, estimated_answer
from gateway_trio.adapters.replies import (
    client_safe,
    error_text,
    is_object_list,
    malformed,
    parse_json_reply,
    upstream_error_message,
)
from gateway_trio.adapters.typed_events import ResponsesPassthroughDecoder, parse_object, passthrough_body
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, UpstreamError


class OpenAIStreamDecoder(SSEDecoder):
    """Watches an OpenAI stream for usage and errors; passes every other chunk through untouched.

    The usage-only chunk is held back in `usage_chunk`: the pipeline forwards it only to
    clients that asked for `stream_options.include_usage`, while we always ask the upstream.
    """

    __slots__ = ()

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        for event, payload in self._parser.feed(data):
            if payload == b"[DONE]":
                self.done = True
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise malformed("a stream chunk is not valid JSON") from None
            if not isinstance(chunk, dict):
                raise malformed("a stream chunk is not a JSON object")
            if chunk.get("error") or event == b"error":
                message = error_text(chunk) or "upstream reported an error mid-stream"
                raise UpstreamError(client_safe(message))
            usage = chunk.get("usage")
            if usage:
                self.usage = usage
                if not chunk.get("choices"):
                    self.usage_chunk = payload
                    continue
            out.append(payload)


class OpenAIAdapter(AdapterBase):
    """OpenAI's API, and servers that copy it (vLLM, LM Studio, Ollama).

    Every call type is the client's body with `model` swapped for the upstream name, sent to
    the endpoint of the same name; answers are checked for their key field and passed on.
    """

    name = "openai"
    # Chat passes the client's fields on as they are; only a Messages body loses some on the way.
    unhonoured: ClassVar[Mapping[str, Unhonoured]] = {"messages": CHAT_FROM_MESSAGES}

    # -- chat and text completions ---------------------------------------------------------

    def chat_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._completion_request(deployment, "chat/completions", body, model, stream)

    def chat_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return parse_json_reply(payload, "choices", "chat completion")

    def chat_stream(self, model: str) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def text_completion_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._completion_request(deployment, "completions", body, model, stream)

    def text_completion_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return parse_json_reply(payload, "choices", "text completion")

    def text_completion_stream(self, model: str) -> OpenAIStreamDecoder:
        # Legacy completions stream the same way as chat (data lines, a usage-only chunk, [DONE]).
        return OpenAIStreamDecoder()

    def _completion_request(
        self, deployment: Deployment, endpoint: str, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        upstream = {**body, "model": model}
        if stream:
            upstream["stream"] = True
            options = upstream.get("stream_options")
            upstream["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        else:
            # OpenAI refuses stream_options on a non-streaming call.
            upstream.pop("stream_options", None)
            if "stream" in upstream:
                upstream["stream"] = False
        return self._json_request(deployment, self.endpoint_url(deployment, model, endpoint), upstream)

    # -- embeddings and moderations ----------------------------------------------------------

    def embeddings_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        _refuse_stream(stream, "embeddings")
        return self._json_request(deployment, self.endpoint_url(deployment, model, "embeddings"), {**body, "model": model})

    def embeddings_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return parse_json_reply(payload, "data", "embeddings answer")

    def moderation_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        _refuse_stream(stream, "moderation")
        # The model is optional here: without one OpenAI picks its current default, which is
        # what a client leaving it out asked for.
        upstream = {**body, "model": model} if "model" in body else body
        return self._json_request(deployment, self.endpoint_url(deployment, model, "moderations"), upstream)

    def moderation_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return parse_json_reply(payload, "results", "moderation answer")

    # -- image generation --------------------------------------------------------------------

    def image_generation_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        _refuse_stream(stream, "image generation")
        url = self.endpoint_url(deployment, model, "images/generations")
        return self._json_request(deployment, url, {**body, "model": model})

    def image_generation_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return parse_json_reply(payload, "data", "image generation answer")

    # -- audio transcriptions ----------------------------------------------------------------

    def transcription_request(
        self, deployment: Deployment, body: Upload, model: str, stream: bool
    ) -> UpstreamRequest:
        _refuse_stream(stream, "audio transcription")
        # `stream` as a form field would make the upstream answer in SSE, which this call
        # type does not relay; the client gets the whole transcript instead.
        fields = {**body.fields, "model": model}
        fields.pop("stream", None)
        content, content_type = multipart_form(fields, body)
        headers = {"content-type": content_type, **self.auth_headers(deployment), **_without_content_type(deployment.headers)}
        return UpstreamRequest("POST", self.endpoint_url(deployment, model, "audio/transcriptions"), headers, content)

    def transcription_response(self, payload: bytes, model: str, content_type: str) -> dict[str, Any] | RawBody:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type == "application/json" or media_type.endswith("+json"):
            return parse_json_reply(payload, "text", "transcription")
        # response_format text, srt or vtt: the transcript itself, passed on as it came.
        return RawBody(payload, content_type)

    # -- responses (passed through) and anthropic_messages (translated through chat) ---------

    def responses_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        url = self.responses_url(deployment, model)
        return self._json_request(deployment, url, passthrough_body(body, model, stream))

    def responses_url(self, deployment: Deployment, model: str) -> str:
        return self.endpoint_url(deployment, model, "responses")

    def responses_response(self, payload: bytes, model: str) -> dict[str, Any]:
        body = parse_object(payload, "the body")
        if body.get("object") != "response":
            raise malformed("the answer is not a Response object")
        if not is_object_list(body.get("output")):
            raise malformed("'output' in the Response is not a list of objects")
        return body

    def responses_stream(self, model: str) -> ResponsesPassthroughDecoder:
        return ResponsesPassthroughDecoder()

    def messages_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self.chat_request(deployment, chat_body_from_messages(body), model, stream)

    def messages_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return message_from_completion(self.chat_response(payload, model), model)

    def messages_stream(self, model: str) -> MessagesFromChatStream:
        return MessagesFromChatStream(self.chat_stream(model), model)

    # -- count_tokens: no such endpoint here, so an estimate, answered without the network ----

    def count_tokens_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return UpstreamRequest("POST", "", {}, local_answer=estimated_answer(body))

    def count_tokens_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return count_answer(payload)

    # -- shared pieces -----------------------------------------------------------------------

    def _json_request(self, deployment: Deployment, url: str, body: dict[str, Any]) -> UpstreamRequest:
        headers = {"content-type": "application/json", **self.auth_headers(deployment), **deployment.headers}
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def endpoint_url(self, deployment: Deployment, model: str, endpoint: str) -> str:
        """Where `endpoint` (e.g. `chat/completions`) lives for this deployment."""
        return f"{self.api_base(deployment)}/{endpoint}"

    def api_base(self, deployment: Deployment) -> str:
        if not deployment.api_base:
            raise UpstreamError(f"deployment {deployment.id} of {deployment.group!r} has no api_base")
        return deployment.api_base.rstrip("/")

    def auth_headers(self, deployment: Deployment) -> dict[str, str]:
        return {"authorization": f"Bearer {deployment.api_key}"} if deployment.api_key else {}

    def error_message(self, status: int, payload: bytes) -> str:
        return upstream_error_message(status, payload)

    def local_transport(self, deployment: Deployment) -> httpx.AsyncBaseTransport | None:
        """Real upstreams are reached over the network; only the mock answers in-process."""
        return None


def _refuse_stream(stream: bool, call_type: str) -> None:
    if stream:
        raise BadRequest(f"stream: {call_type} requests cannot be streamed", param="stream")


def _without_content_type(headers: dict[str, str]) -> dict[str, str]:
    """Configured headers minus any content-type: a multipart body needs its own boundary."""
    return {name: value for name, value in headers.items() if name.lower() != "content-type"}


# -- multipart/form-data ---------------------------------------------------------------------


def multipart_form(fields: dict[str, str], upload: Upload) -> tuple[bytes, str]:
    """`fields` then the uploaded file as a multipart/form-data body; returns (body, content-type).

    Built by hand rather than through httpx so the adapter stays free of I/O objects and the
    deployment actor can send the bytes like any other body.
    """
    boundary = _boundary(upload.content)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(_part_head(boundary, f'form-data; name="{_quote(name)}"'))
        parts.append(b"\r\n" + str(value).encode() + b"\r\n")
    disposition = f'form-data; name="file"; filename="{_quote(upload.filename or "audio")}"'
    parts.append(_part_head(boundary, disposition, upload.content_type or "application/octet-stream"))
    parts.append(b"\r\n" + upload.content + b"\r\n")
    parts.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _boundary(content: bytes) -> str:
    # 32 random hex digits practically never occur in the file; checking costs one scan.
    while True:
        boundary = f"gateway-trio-{secrets.token_hex(16)}"
        if boundary.encode() not in content:
            return boundary


def _part_head(boundary: str, disposition: str, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode()


def _quote(value: str) -> str:
    """Escape a name or filename the way browsers do (WHATWG HTML), so headers stay one line."""
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")

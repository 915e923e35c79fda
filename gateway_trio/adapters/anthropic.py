"""Anthropic's Messages API, translated to and from OpenAI chat and text completions.

Requests are rewritten field by field (system prompt, content blocks, tools); answers are
rebuilt as `chat.completion` dicts, and the event stream as `chat.completion.chunk` payloads,
so that everything past the adapter sees one wire format.  Legacy text completions ride on the
same translation: the prompt becomes one user message and the answer's text the completion.
Structured output (`response_format`) and extended thinking have modules of their own
(anthropic_json, anthropic_reasoning).  Parameters Anthropic cannot honour are named in
`unhonoured` (adapters/params.py), which the pipeline refuses or drops, never this module
silently; OpenAI's defaults (`n: 1`, zero penalties) ask for nothing and pass.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from gateway_trio.adapters.anthropic_json import JSON_TOOL, add_json_tool, json_answer, json_tool
from gateway_trio.adapters.anthropic_reasoning import (
    THINKING_BLOCKS,
    add_reasoning,
    history_blocks,
    thinking_budget,
    thinking_param,
)
from gateway_trio.adapters.base import AdapterBase, SSEDecoder, UpstreamRequest
from gateway_trio.adapters.chat_chunks import chunk_envelope
from gateway_trio.adapters.depth import MAX_JSON_DEPTH, too_deep
from gateway_trio.adapters.params import ANTHROPIC_CHAT, ANTHROPIC_TEXT_COMPLETION, Unhonoured
from gateway_trio.adapters.replies import client_safe, is_object_list, malformed, upstream_error_message
from gateway_trio.adapters.responses_stream import ResponsesThroughChat
from gateway_trio.adapters.token_count import count_answer, count_body
from gateway_trio.adapters.typed_events import MessagesPassthroughDecoder, passthrough_body
from gateway_trio.adapters.usage import add_messages_usage, chat_usage_from_messages
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, UpstreamError

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI clients usually omit it

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


# --- request: OpenAI chat body -> Messages body -------------------------------------------


def messages_body(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body; raises `BadRequest` naming the field."""
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        # Keep blocks only when they carry prompt-cache marks; a plain string reads better.
        if any("cache_control" in block for block in system):
            out["system"] = system
        else:
            out["system"] = "\n\n".join(block["text"] for block in system)
    thinking = thinking_param(body)
    budget = thinking_budget(thinking)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    # Thinking counts against max_tokens: the default leaves the answer its usual room.
    out["max_tokens"] = max_tokens if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS + (budget or 0)
    if budget is not None and out["max_tokens"] <= budget:
        field = "max_completion_tokens" if body.get("max_completion_tokens") else "max_tokens"
        raise BadRequest(f"{field}: must be greater than the thinking budget ({budget} tokens)", param=field)
    if thinking is not None:
        out["thinking"] = thinking
    if (n := body.get("n")) is not None and n != 1:
        raise BadRequest("n: anthropic returns exactly one choice", param="n")
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    for key in ("temperature", "top_p", "top_k"):  # top_k: Anthropic's own, sent through chat clients' extra body
        if body.get(key) is not None:
            out[key] = body[key]
    if stream:
        out["stream"] = True
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    _add_tools(out, body)
    tool = json_tool(body.get("response_format"))
    if tool is not None:
        add_json_tool(out, tool, thinking=budget is not None)
    return out


def text_completion_body(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The Messages API body for an OpenAI legacy completions body: the prompt as one user turn.

    Only the sampling fields both APIs share are carried over (through the chat translation,
    so they map the same way); `suffix`, `echo`, `logprobs` and `best_of` have no counterpart.
    """
    chat = {key: body[key] for key in ("max_tokens", "stop", "temperature", "top_p", "n", "user") if key in body}
    chat["messages"] = [{"role": "user", "content": _prompt_text(body.get("prompt"))}]
    return messages_body(chat, model, stream)


def _prompt_text(prompt: Any) -> str:
    """A completions `prompt` as one text; several prompts are joined into a single turn."""
    if isinstance(prompt, list) and prompt and all(isinstance(item, str) for item in prompt):
        prompt = "\n".join(prompt)
    if not isinstance(prompt, str):
        raise BadRequest("prompt: anthropic needs text (a string or a list of strings)", param="prompt")
    if not prompt:
        raise BadRequest("prompt: must not be empty", param="prompt")
    return prompt


def _messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list):
        raise BadRequest("messages: must be a list", param="messages")
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    # Anthropic wants all results for one assistant turn in a single user message.
    tool_results: list[dict[str, Any]] | None = None
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where}: must be an object", param=where)
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _content(content, f"{where}.content") if content is not None else "",
            }
            if tool_results is None:
                tool_results = []
                out.append({"role": "user", "content": tool_results})
            tool_results.append(result)
            continue
        tool_results = None
        if role in ("system", "developer"):
            system.extend(_system_blocks(content, f"{where}.content"))
        elif role == "user":
            if content is None:
                raise BadRequest(f"{where}.content: is required", param=f"{where}.content")
            out.append({"role": "user", "content": _content(content, f"{where}.content")})
        elif role == "assistant":
            turn = _assistant_content(message, where)
            if turn:
                out.append({"role": "assistant", "content": turn})
        else:
            raise BadRequest(f"{where}.role: unsupported role {role!r}", param=f"{where}.role")
    return system, out


def _system_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        blocks = [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]
        if all(block["type"] == "text" for block in blocks):
            return blocks
    raise BadRequest(f"{where}: a system message holds text only", param=where)


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]
    raise BadRequest(f"{where}: must be a string or a list of parts", param=where)


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        block: dict[str, Any] = {"type": "text", "text": part["text"]}
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise BadRequest(f"{where}.image_url.url: must be a string", param=f"{where}.image_url")
        block = _image_block(url, where)
    else:
        raise BadRequest(f"{where}.type: unsupported content part {kind!r}", param=f"{where}.type")
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(url: str, where: str) -> dict[str, Any]:
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, _, data = url.partition(",")
    media_type, _, encoding = header[len("data:"):].partition(";")
    if encoding != "base64" or not data:
        raise BadRequest(f"{where}.image_url.url: data URLs must be base64", param=f"{where}.image_url")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_content(message: dict[str, Any], where: str) -> str | list[dict[str, Any]] | None:
    content = message.get("content")
    tool_calls = message.get("tool_calls") or []
    # The turn's thinking goes back first, signed as it came: Anthropic checks it.
    blocks: list[dict[str, Any]] = history_blocks(message, where)
    if not tool_calls and not blocks:
        return _content(content, f"{where}.content") if content else None
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        blocks.extend(_part(part, f"{where}.content[{i}]") for i, part in enumerate(content))
    for i, call in enumerate(tool_calls):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{i}]"))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRequest(f"{where}.function.name: is required", param=f"{where}.function")
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise BadRequest(f"{where}.function.arguments: not valid JSON", param=f"{where}.function") from None
    if too_deep(tool_input):
        raise BadRequest(f"{where}.function.arguments: nests JSON deeper than {MAX_JSON_DEPTH} levels",
                         param=f"{where}.function", code="json_too_deep")
    return {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": tool_input}


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    # `tool_choice: "none"` keeps the tools: a history with tool calls needs them defined.
    choice = body.get("tool_choice")
    tools = body.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise BadRequest("tools: must be a list", param="tools")
    translated = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue  # Anthropic has no counterpart for OpenAI's built-in tools
        function = tool.get("function") or {}
        if not isinstance(function.get("name"), str):
            raise BadRequest(f"tools[{index}].function.name: is required", param=f"tools[{index}]")
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    if not translated:
        return
    out["tools"] = translated
    anthropic_choice = _tool_choice(choice)
    if body.get("parallel_tool_calls") is False and choice != "none":
        anthropic_choice = {**(anthropic_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if anthropic_choice:
        out["tool_choice"] = anthropic_choice


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return dict(TOOL_CHOICES[choice])
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"type": "tool", "name": name}
    raise BadRequest("tool_choice: expected 'auto', 'required', 'none' or a function", param="tool_choice")


# --- answers: Messages -> chat.completion ------------------------------------------------


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def load_message(payload: bytes) -> dict[str, Any]:
    """A Messages answer as a dict; an error-typed body raises with its (client-safe) message."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed("the body is not valid JSON") from None
    if not isinstance(message, dict):
        raise malformed("the body is not a JSON object")
    if message.get("type") == "error":
        raise UpstreamError(_error_event_message(message))
    return message


def completion_from_message(message: dict[str, Any], model: str) -> dict[str, Any]:
    texts, tool_calls, thinking = _reply_parts(message)
    reason = finish_reason(message.get("stop_reason")) or "stop"
    structured = json_answer(tool_calls)
    if structured is not None:  # asked for through response_format: the JSON is the answer
        texts, tool_calls = [structured], []
        reason = "stop" if reason == "tool_calls" else reason
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    add_reasoning(reply, thinking)
    choice = {"index": 0, "message": reply, "finish_reason": reason}
    return _answer(message, model, "chat.completion", _new_id, choice)


def text_completion_from_message(message: dict[str, Any], model: str) -> dict[str, Any]:
    texts, _, _ = _reply_parts(message)
    choice = {
        "text": "".join(texts),
        "index": 0,
        "logprobs": None,
        "finish_reason": finish_reason(message.get("stop_reason")) or "stop",
    }
    return _answer(message, model, "text_completion", _new_text_id, choice)


def _answer(
    message: dict[str, Any], model: str, kind: str, new_id: Callable[[], str], choice: dict[str, Any]
) -> dict[str, Any]:
    usage = message.get("usage")
    return {
        "id": message.get("id") or new_id(),
        "object": kind,
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [choice],
        "usage": chat_usage_from_messages({} if usage is None else usage),  # junk usage: unknown counts
    }


def _reply_parts(message: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """The text blocks, (OpenAI-shaped) tool calls and thinking blocks of an answer, in order."""
    blocks = message.get("content")
    if not isinstance(blocks, list):
        raise malformed("no 'content' in the Anthropic message")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            tool_calls.append(
                {"id": block.get("id"), "type": "function", "function": {"name": block.get("name"), "arguments": arguments}}
            )
        elif kind in THINKING_BLOCKS:
            thinking.append(block)
    return texts, tool_calls, thinking


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _new_text_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


def _error_event_message(event: dict[str, Any]) -> str:
    error = event.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return client_safe(message) if isinstance(message, str) and message else "upstream reported an error mid-stream"


# --- stream: Messages events -> chat.completion.chunk ------------------------------------


class AnthropicStreamDecoder(SSEDecoder):
    """Rebuilds OpenAI chunks from Anthropic's typed events, one event at a time."""

    object_name = "chat.completion.chunk"

    def __init__(self, model: str) -> None:
        super().__init__()
        self._id = self._new_id()
        self._model = model
        self._created = int(time.time())
        self._raw_usage: dict[str, Any] = {}
        # OpenAI numbers tool calls 0, 1, ...; Anthropic numbers all content blocks.
        self._tool_index: dict[int, int] = {}
        self._json_blocks: set[int] = set()  # blocks of the response_format tool: content
        self._thinking: dict[int, list[str]] = {}  # thinking text so far, per block

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        for _name, payload in self._parser.feed(data):
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise malformed("a stream event is not valid JSON") from None
            if not isinstance(event, dict):
                raise malformed("a stream event is not a JSON object")
            chunk = self._translate(event)
            if chunk is not None:
                out.append(chunk)

    def _translate(self, event: dict[str, Any]) -> bytes | None:
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = message.get("id") or self._id
            self._model = message.get("model") or self._model
            self._record_usage(message.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_delta":
            self._record_usage(event.get("usage"))
            reason = finish_reason((event.get("delta") or {}).get("stop_reason"))
            if reason == "tool_calls" and self._json_blocks and not self._tool_index:
                reason = "stop"  # the structured answer was the tool's input
            return self._chunk({}, reason)
        if kind == "message_stop":
            self.done = True
            self.usage_chunk = orjson.dumps(self._envelope([], usage=self.usage or chat_usage_from_messages({})))
            return None
        if kind == "error":
            raise UpstreamError(_error_event_message(event))
        return None  # ping, content_block_stop, and event types newer than this code

    def _block_start(self, event: dict[str, Any]) -> bytes | None:
        block = event.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == JSON_TOOL:
            self._json_blocks.add(event.get("index", -1))
            return None
        if kind == "redacted_thinking":
            return self._chunk({"thinking_blocks": [block]})
        if kind == "thinking":
            self._thinking[event.get("index", -1)] = [block.get("thinking") or ""]
            return None
        if kind == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[event.get("index", tool_index)] = tool_index
            call = {
                "index": tool_index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if block.get("type") == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        return None

    def _delta(self, event: dict[str, Any]) -> bytes | None:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not partial:
                return None
            index = event.get("index", -1)
            if index in self._json_blocks:
                return self._chunk({"content": partial})
            tool_index = self._tool_index.get(index, 0)
            return self._chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": partial}}]})
        if kind == "thinking_delta":
            text = delta.get("thinking") or ""
            self._thinking.setdefault(event.get("index", -1), []).append(text)
            return self._chunk({"reasoning_content": text}) if text else None
        if kind == "signature_delta":
            # The block is whole once signed: it goes out as one, ready to be sent back.
            thinking = "".join(self._thinking.pop(event.get("index", -1), ()))
            block = {"type": "thinking", "thinking": thinking, "signature": delta.get("signature")}
            return self._chunk({"thinking_blocks": [block]})
        return None

    def _record_usage(self, usage: Any) -> None:
        if usage is not None:
            add_messages_usage(self._raw_usage, usage)
            self.usage = chat_usage_from_messages(self._raw_usage)

    def _new_id(self) -> str:
        return _new_id()

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return chunk_envelope(self._id, self.object_name, self._created, self._model, choices, **extra)

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes | None:
        return orjson.dumps(self._envelope([{"index": 0, "delta": delta, "finish_reason": reason}]))


class AnthropicTextStreamDecoder(AnthropicStreamDecoder):
    """The same event translation, rendered as legacy `text_completion` stream chunks.

    Only text reaches the client: the opening role chunk and anything without text or a
    finish reason (tool deltas cannot occur, as the request carries no tools) are skipped.
    """

    object_name = "text_completion"

    def _new_id(self) -> str:
        return _new_text_id()

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes | None:
        text = delta.get("content") or ""
        if not text and reason is None:
            return None
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}
        return orjson.dumps(self._envelope([choice]))


class AnthropicAdapter(ResponsesThroughChat, AdapterBase):
    """Anthropic's `/v1/messages`, spoken as OpenAI chat and text completions."""

    name = "anthropic"
    client_headers = frozenset({"anthropic-beta"})  # beta features the client opts into
    unhonoured: ClassVar[Mapping[str, Unhonoured]] = {"chat": ANTHROPIC_CHAT, "text_completion": ANTHROPIC_TEXT_COMPLETION}

    def chat_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._messages_request(deployment, messages_body(body, model, stream))

    def chat_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return completion_from_message(load_message(payload), model)

    def chat_stream(self, model: str) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(model)

    def text_completion_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._messages_request(deployment, text_completion_body(body, model, stream))

    def text_completion_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return text_completion_from_message(load_message(payload), model)

    def text_completion_stream(self, model: str) -> AnthropicTextStreamDecoder:
        return AnthropicTextStreamDecoder(model)

    # -- anthropic_messages, passed through (responses: translated through chat, by the mixin) -

    def messages_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._messages_request(deployment, passthrough_body(body, model, stream))

    def messages_response(self, payload: bytes, model: str) -> dict[str, Any]:
        message = load_message(payload)
        if message.get("type") != "message":
            raise malformed("the answer is not a Message")
        if not is_object_list(message.get("content")):
            raise malformed("'content' in the Anthropic message is not a list of blocks")
        return message

    def messages_stream(self, model: str) -> MessagesPassthroughDecoder:
        return MessagesPassthroughDecoder()

    # -- count_tokens, at Anthropic's own endpoint -------------------------------------------

    def count_tokens_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        return self._messages_request(deployment, count_body(body, model), "/count_tokens")

    def count_tokens_response(self, payload: bytes, model: str) -> dict[str, Any]:
        return count_answer(payload)


    # No embeddings, moderation or transcription methods: Anthropic serves none of them, so
    # the dispatcher refuses those calls with a 400.

    def _messages_request(self, deployment: Deployment, body: dict[str, Any], endpoint: str = "") -> UpstreamRequest:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        headers.update(deployment.headers)
        return UpstreamRequest("POST", self.messages_url(deployment) + endpoint, headers, orjson.dumps(body))

    def messages_url(self, deployment: Deployment) -> str:
        if not deployment.api_base:
            raise UpstreamError(f"deployment {deployment.id} of {deployment.group!r} has no api_base")
        base = deployment.api_base.rstrip("/")
        # Accept bases written with or without the version segment, as users copy either.
        if base.endswith("/v1/messages"):
            return base
        if base.endswith("/v1"):
            return f"{base}/messages"
        return f"{base}/v1/messages"

    def error_message(self, status: int, payload: bytes) -> str:
        return upstream_error_message(status, payload)

    def local_transport(self, deployment: Deployment) -> httpx.AsyncBaseTransport | None:
        return None

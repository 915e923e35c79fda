"""Anthropic Messages requests served by a chat-completions upstream (OpenAI, Azure, mock).

The reverse of anthropic.py: a Messages body becomes a chat body, and the `chat.completion`
becomes a Message.  Content the chat format cannot carry (documents, server tools) is refused
with a 400 naming the field rather than silently dropped; fields chat lacks (`top_k`, ...) are
named in adapters/params.py, which the pipeline refuses or drops.  `thinking` becomes
`reasoning_effort` (as LiteLLM translates it for other models), and the chat upstream's
`reasoning_content` comes back as a thinking block.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from gateway_trio.adapters.anthropic_reasoning import reasoning_effort
from gateway_trio.adapters.chat_chunks import first_choice
from gateway_trio.adapters.depth import too_deep
from gateway_trio.adapters.tools import chat_function_tool, chat_tools
from gateway_trio.adapters.usage import messages_usage_from_chat
from gateway_trio.errors import BadRequest

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


# --- request: Messages body -> chat body -------------------------------------------------


def chat_body_from_messages(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body for a Messages body; the adapter's chat_request then sets model and stream."""
    messages = _system(body.get("system"))
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise BadRequest("messages: must be a list", param="messages")
    for index, message in enumerate(raw):
        messages.extend(_turn(message, f"messages[{index}]"))
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if isinstance(body.get("max_tokens"), int):
        out["max_tokens"] = body["max_tokens"]
    stop = body.get("stop_sequences")
    if isinstance(stop, list) and stop:
        out["stop"] = stop
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    effort = reasoning_effort(body.get("thinking"))
    if effort is not None:
        out["reasoning_effort"] = effort
    _add_tools(out, body)
    return out


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if isinstance(system, list):
        texts = []
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise BadRequest(f"system[{index}]: must be a text block", param="system")
            texts.append(block["text"])
        return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []
    raise BadRequest("system: must be a string or a list of text blocks", param="system")


def _turn(message: Any, where: str) -> list[dict[str, Any]]:
    """One Messages turn as one or more chat messages (tool results become `tool` messages)."""
    if not isinstance(message, dict):
        raise BadRequest(f"{where}: must be an object", param=where)
    role = message.get("role")
    content = message.get("content")
    if isinstance(content, str):
        if role not in ("user", "assistant"):
            raise BadRequest(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be a string or a list of blocks", param=f"{where}.content")
    if role == "user":
        return _user_turn(content, f"{where}.content")
    if role == "assistant":
        return [_assistant_turn(content, f"{where}.content")]
    raise BadRequest(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")


def _user_turn(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    # Chat wants tool answers as `tool` messages straight after the assistant's calls, so they
    # go first; the rest of the turn (and any images a tool returned) follows as a user message.
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        here = f"{where}[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            text, images = _tool_result(block, here)
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts.extend(images)
        else:
            parts.append(_user_part(block, here))
    if parts:
        single_text = len(parts) == 1 and parts[0]["type"] == "text"
        tools.append({"role": "user", "content": parts[0]["text"] if single_text else parts})
    return tools


def _user_part(block: Any, where: str) -> dict[str, Any]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text" and isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}}
    raise BadRequest(f"{where}.type: unsupported content block {kind!r}", param=f"{where}.type")


def _image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str):
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "url" and isinstance(source.get("url"), str):
        return source["url"]
    raise BadRequest(f"{where}.source: expected a base64 or url image source", param=f"{where}.source")


def _tool_result(block: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    content = block.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be a string or a list of blocks", param=f"{where}.content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for index, inner in enumerate(content):
        part = _user_part(inner, f"{where}.content[{index}]")
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            images.append(part)  # a chat tool message carries text only
    return "\n".join(texts), images


def _assistant_turn(blocks: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        here = f"{where}[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("name"), str):
                raise BadRequest(f"{here}.name: is required", param=f"{here}.name")
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the model's own reasoning; a chat upstream has nowhere to take it back
        else:
            raise BadRequest(f"{here}.type: unsupported content block {kind!r}", param=f"{here}.type")
    turn: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        turn["tool_calls"] = calls
    return turn


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = chat_tools(body.get("tools"), _tool)
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif kind in TOOL_CHOICES:
        out["tool_choice"] = TOOL_CHOICES[kind]
    else:
        raise BadRequest("tool_choice.type: expected 'auto', 'any', 'tool' or 'none'", param="tool_choice")
    if choice.get("disable_parallel_tool_use") is True and tools:
        out["parallel_tool_calls"] = False


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise BadRequest(f"{where}: must be an object", param=where)
    if tool.get("type") not in (None, "custom"):
        # Anthropic's server tools (web search, bash, ...) run at Anthropic; nothing runs them here.
        kind = tool.get("type")
        raise BadRequest(f"{where}.type: {kind!r} tools need an Anthropic deployment", param=f"{where}.type")
    return chat_function_tool(tool, where, schema_key="input_schema")


# --- answer: chat.completion -> Message --------------------------------------------------


def stop_reason(finish_reason: Any) -> str:
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def message_id(chat_id: Any) -> str:
    # Keep the upstream id inside ours, so a Message can be traced to the upstream's logs.
    return f"msg_{chat_id}" if isinstance(chat_id, str) and chat_id else f"msg_{_fallback_id()}"


def tool_input(arguments: Any) -> Any:
    """A tool call's arguments as Anthropic's `input` object.

    A reply cut short by max_tokens can end inside the arguments; `{}` then stands in, as an
    object is required and the stop reason already tells the client the call is incomplete.
    """
    if not isinstance(arguments, str) or not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) and not too_deep(value) else {}


def message_from_completion(completion: dict[str, Any], model: str) -> dict[str, Any]:
    choice, reply = first_choice(completion)
    content: list[dict[str, Any]] = []
    reasoning = reply.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        # A chat upstream signs nothing; a client sending the block back is not checked here.
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = reply.get("content") or reply.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parsed = tool_input(function.get("arguments"))
            content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed})
    if not content:
        content.append({"type": "text", "text": ""})  # clients read content[0] without looking
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": messages_usage_from_chat(completion.get("usage")),
    }


def _fallback_id() -> str:
    return uuid.uuid4().hex

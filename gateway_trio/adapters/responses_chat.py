"""OpenAI Responses requests served through chat completions (Anthropic and mock deployments).

A Responses body becomes a chat body, which the provider's own chat translation then takes
on (for Anthropic: on to a Messages body), and the `chat.completion` comes back as a Response
object.  The conversation a `previous_response_id` names is the gateway's to put in the input
(`control.conversations` keeps it); one still here is none the gateway stored, so it is "not
found", as OpenAI says of an unknown id.  What needs OpenAI's server-side tools (web search,
file search, ...) is refused with a 400 naming the field: answering without it would silently
be a different answer.  `store` and other Responses-only fields never reach the chat body.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from gateway_trio.adapters.chat_chunks import first_choice
from gateway_trio.adapters.tools import chat_function_tool, chat_tools
from gateway_trio.adapters.usage import responses_usage_from_chat
from gateway_trio.errors import BadRequest

SYSTEM_ROLES = ("system", "developer")
SKIPPED_ITEMS = frozenset({"reasoning"})  # replayed reasoning has no chat counterpart
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


# --- request: Responses body -> chat body ------------------------------------------------


def chat_body_from_responses(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body for a Responses body; the adapter's chat_request then sets model and stream."""
    previous = body.get("previous_response_id")
    if previous:
        raise previous_response_not_found(previous)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(_input(body.get("input")))
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if isinstance(body.get("max_output_tokens"), int):
        out["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(key) is not None:
            out[key] = body[key]
    _add_tools(out, body)
    _add_text_format(out, body.get("text"))
    return out


def previous_response_not_found(response_id: Any) -> BadRequest:
    """OpenAI's answer to a `previous_response_id` it has no response for."""
    return BadRequest(
        f"Previous response with id {str(response_id)[:200]!r} not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def _input(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise BadRequest("input: must be a string or a non-empty list of items", param="input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _function_call(messages, item, where)
        elif kind == "function_call_output":
            output = _output_text(item.get("output"), where)
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
        elif kind not in SKIPPED_ITEMS:
            raise BadRequest(f"{where}.type: {kind!r} items cannot be served by this deployment", param=f"{where}.type")
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    content = item.get("content")
    if role not in ("user", "assistant", *SYSTEM_ROLES):
        raise BadRequest(f"{where}.role: unsupported role {role!r}", param=f"{where}.role")
    role = "system" if role in SYSTEM_ROLES else role
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be a string or a list of parts", param=f"{where}.content")
    parts = [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    if role != "user":
        # Chat accepts text only from the model and the system, so the parts join into a string.
        if any(part["type"] != "text" for part in parts):
            raise BadRequest(f"{where}.content: {role} messages hold text only", param=f"{where}.content")
        return {"role": role, "content": "".join(part["text"] for part in parts)}
    return {"role": "user", "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise BadRequest(f"{where}.type: unsupported content part {kind!r}", param=f"{where}.type")


def _function_call(messages: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    if not isinstance(item.get("name"), str):
        raise BadRequest(f"{where}.name: is required", param=f"{where}.name")
    arguments = item.get("arguments")
    call = {
        "id": item.get("call_id"),
        "type": "function",
        "function": {"name": item["name"], "arguments": arguments if isinstance(arguments, str) else "{}"},
    }
    # One model turn that said something and called tools arrives as several items; chat
    # wants it as one assistant message.
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(_part(part, f"{where}.output[{i}]").get("text", "") for i, part in enumerate(output))
    raise BadRequest(f"{where}.output: must be a string", param=f"{where}.output")


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = chat_tools(body.get("tools"), _tool)
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if choice is None:
        return
    if choice in ("auto", "none", "required"):
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise BadRequest("tool_choice: expected 'auto', 'none', 'required' or a function", param="tool_choice")


def _tool(tool: Any, where: str) -> dict[str, Any]:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise BadRequest(f"{where}.type: {kind!r} tools need an OpenAI deployment", param=f"{where}.type")
    return chat_function_tool(tool, where, schema_key="parameters")


def _add_text_format(out: dict[str, Any], text: Any) -> None:
    form = text.get("format") if isinstance(text, dict) else None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {key: form[key] for key in ("name", "schema", "strict", "description") if key in form}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}


# --- answer: chat.completion -> Response -------------------------------------------------


def response_id(chat_id: Any) -> str:
    # Keep the upstream id inside ours so a Response can be traced to the upstream's logs.
    return f"resp_{chat_id}" if isinstance(chat_id, str) and chat_id else f"resp_{uuid.uuid4().hex}"


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def message_item(item: str, text: str, status: str = "completed", *, refusal: bool = False) -> dict[str, Any]:
    part = {"type": "refusal", "refusal": text} if refusal else output_text_part(text)
    return {"type": "message", "id": item, "status": status, "role": "assistant", "content": [part]}


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def function_call_item(item: str, call_id: Any, name: Any, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    rid: str,
    created_at: int,
    model: str,
    output: list[dict[str, Any]],
    status: str,
    usage: dict[str, Any] | None,
    finish_reason: Any = None,
) -> dict[str, Any]:
    """A Response with the fields SDKs read; request echoes we do not have stay at defaults."""
    reason = INCOMPLETE_REASONS.get(finish_reason) if status == "incomplete" else None
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def final_status(finish_reason: Any) -> str:
    """`incomplete` when the answer was cut short, as OpenAI reports it; else `completed`."""
    return "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"


def response_from_completion(completion: dict[str, Any], model: str) -> dict[str, Any]:
    choice, reply = first_choice(completion)
    output: list[dict[str, Any]] = []
    text = reply.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(item_id("msg"), text))
    elif isinstance(reply.get("refusal"), str) and reply["refusal"]:
        output.append(message_item(item_id("msg"), reply["refusal"], refusal=True))
    for call in reply.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            arguments = function.get("arguments")
            arguments = arguments if isinstance(arguments, str) else "{}"
            output.append(function_call_item(item_id("fc"), call.get("id"), function.get("name"), arguments))
    finish = choice.get("finish_reason")
    created = completion.get("created")
    return response_object(
        response_id(completion.get("id")),
        created if isinstance(created, int) else int(time.time()),
        completion.get("model") or model,
        output,
        final_status(finish),
        responses_usage_from_chat(completion.get("usage")),
        finish,
    )

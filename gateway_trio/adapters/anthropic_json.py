"""Structured output on Anthropic: OpenAI's `response_format` as a forced tool, as LiteLLM does.

The Messages API answers to a JSON schema reliably through tool use: the schema becomes the
input schema of one tool, `json_tool_call` (LiteLLM's name, so answers look the same), which
the model is made to call; the call's input, as a JSON string, is the answer's `content`, with
finish reason `stop`, streamed or not.  The answer is told apart by that tool's name alone (the
reply carries nothing of the request), so a client tool of that name would be read the same way.
With thinking on, Anthropic refuses a forced tool: the tool is offered, not forced.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.errors import BadRequest

JSON_TOOL = "json_tool_call"
ANY_OBJECT = {"type": "object", "additionalProperties": True, "properties": {}}


def json_tool(response_format: Any) -> dict[str, Any] | None:
    """The tool standing for `response_format`, or None when it asks for plain text."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"name": JSON_TOOL, "description": "Answer with a JSON object.", "input_schema": dict(ANY_OBJECT)}
    if kind != "json_schema":
        raise BadRequest(
            "response_format.type: expected 'text', 'json_object' or 'json_schema'", param="response_format"
        )
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise BadRequest("response_format.json_schema: must be an object", param="response_format")
    schema = spec.get("schema")
    if schema is None:
        schema = dict(ANY_OBJECT)
    elif not isinstance(schema, dict):
        raise BadRequest("response_format.json_schema.schema: must be an object", param="response_format")
    description = "Answer with JSON matching this schema"
    if isinstance(spec.get("name"), str):
        description += f" ({spec['name']})"
    if isinstance(spec.get("description"), str) and spec["description"]:
        description += f": {spec['description']}"
    return {"name": JSON_TOOL, "description": description + ".", "input_schema": schema}


def add_json_tool(out: dict[str, Any], tool: dict[str, Any], thinking: bool) -> None:
    """Offer the JSON tool beside the client's tools, forced unless the model thinks."""
    out["tools"] = [*(out.get("tools") or []), tool]
    if not thinking:
        out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}


def json_answer(tool_calls: list[dict[str, Any]]) -> str | None:
    """The JSON text of an answer made through the JSON tool, or None if it is not one."""
    if len(tool_calls) == 1 and tool_calls[0]["function"]["name"] == JSON_TOOL:
        return tool_calls[0]["function"]["arguments"]
    return None

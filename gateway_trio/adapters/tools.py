"""Chat-completions function tools, built from the other formats' tool definitions."""

from __future__ import annotations

from typing import Any, Callable

from gateway_trio.errors import BadRequest

EMPTY_SCHEMA = {"type": "object", "properties": {}}


def chat_function_tool(tool: dict[str, Any], where: str, *, schema_key: str) -> dict[str, Any]:
    """`{"type": "function", "function": {...}}` from a tool whose JSON schema is at `schema_key`
    (`input_schema` in Anthropic's format, `parameters` in the Responses API's)."""
    if not isinstance(tool.get("name"), str):
        raise BadRequest(f"{where}.name: is required", param=f"{where}.name")
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get(schema_key) or dict(EMPTY_SCHEMA)}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def chat_tools(tools: Any, convert: Callable[[Any, str], dict[str, Any]]) -> list[dict[str, Any]] | None:
    """A body's `tools`, each made a chat tool by `convert(tool, where)`; None when there are none."""
    if not tools:
        return None
    if not isinstance(tools, list):
        raise BadRequest("tools: must be a list", param="tools")
    return [convert(tool, f"tools[{index}]") for index, tool in enumerate(tools)]

"""`GET /guardrails/list` and `POST /guardrails/apply_guardrail` (master key)."""

from __future__ import annotations

import orjson
from quart import Blueprint, Response, request

from gateway_trio.apis.chat import CHAT
from gateway_trio.apis.checks import parse_json_object
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest, NotFound
from gateway_trio.gateway import Gateway
from gateway_trio.routes.errors import JSON, errors_as_responses


def guardrail_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("guardrails", __name__)

    async def require_master() -> None:
        await gateway.control.require_master(request.headers, "manage guardrails")

    @routes.get("/guardrails/list")
    @errors_as_responses
    async def list_guardrails() -> Response:
        await require_master()
        body = {"guardrails": [g.describe() for g in gateway.guardrails.by_name.values()]}
        return Response(orjson.dumps(body), 200, content_type=JSON)

    @routes.post("/guardrails/apply_guardrail")
    @errors_as_responses
    async def apply_guardrail() -> Response:
        await require_master()
        body = parse_json_object(await request.get_data(cache=False))
        name, text = body.get("guardrail_name"), body.get("text")
        if not isinstance(name, str) or not name:
            raise BadRequest("'guardrail_name' is required", param="guardrail_name")
        if not isinstance(text, str):
            raise BadRequest("'text' is required and must be a string", param="text")
        stage = gateway.guardrails  # the current config's
        guardrail = stage.by_name.get(name)
        if guardrail is None:
            raise NotFound(f"no guardrail named {name!r}", param="guardrail_name")
        probe = Call(CHAT, "", {"messages": [{"role": "user", "content": text}]})
        mode = guardrail.modes[0]
        texts = await stage.run(probe, guardrail, mode, [text], probe.body, "request")
        run = probe.guardrail_runs[-1]
        answer = {"response_text": texts[0], "guardrail_name": name, "status": run.status, "duration_ms": run.duration_ms}
        return Response(orjson.dumps(answer), 200, content_type=JSON)

    return routes

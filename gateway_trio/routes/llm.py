"""The LLM routes.  Each turns an HTTP request into a `Call` and hands it to the pipeline;
none of them calls a hook, guardrail or logger itself."""

from __future__ import annotations

from typing import Any, Callable

import orjson
from quart import Blueprint, Response, request

from gateway_trio.auth import authenticate
from gateway_trio.calls import Call, public_headers
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.headers import gateway_headers
from gateway_trio.requests import check_chat, parse_json_object, require_model, stream_flags, upstream_body

JSON = "application/json"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

CallBuilder = Callable[[dict[str, Any]], Call]


def error_response(error: GatewayError, call: Call | None) -> Response:
    headers = gateway_headers(call) if call is not None else {}
    headers.update(error.headers())
    return Response(error.openai_json(), error.status, headers, content_type=JSON)


def chat_call(body: dict[str, Any]) -> Call:
    model = require_model(body)
    check_chat(body)
    stream, include_usage = stream_flags(body)
    return Call("completion", model, upstream_body(body), stream, include_usage)


def llm_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("llm", __name__)
    master_key = gateway.config.server.master_key
    master = master_key.get_secret_value() if master_key else None
    pipeline = gateway.pipeline

    async def serve_call(build: CallBuilder) -> Response:
        call: Call | None = None
        try:
            authenticate(request.headers, master)
            call = build(parse_json_object(await request.get_data(cache=False)))
            call.request_headers = public_headers(request.headers)
            if call.stream:
                stream = await pipeline.open_stream(call)
                response = Response(stream.frames(), 200, {**SSE_HEADERS, **gateway_headers(call)},
                                    content_type="text/event-stream")
                response.timeout = None  # the gateway's own deadlines apply, not Quart's 60 s
                return response
            answer = await pipeline.complete(call)
            return Response(orjson.dumps(answer), 200, gateway_headers(call, with_cost=True), content_type=JSON)
        except GatewayError as error:
            return error_response(error, call)

    @routes.post("/v1/chat/completions")
    @routes.post("/chat/completions")
    async def chat_completions() -> Response:
        return await serve_call(chat_call)

    return routes

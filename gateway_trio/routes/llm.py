"""The LLM routes.  Each turns an HTTP request into a `Call` and the pipeline's `Answer` back
into HTTP; none of them calls a hook, guardrail or logger itself."""

from __future__ import annotations

from typing import Any, Callable

from quart import Blueprint, Response, request

from gateway_trio.auth import Authenticator
from gateway_trio.calls import Call, public_headers
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.pipeline import JSON, Answer
from gateway_trio.requests import call_options, check_chat, parse_json_object, require_model, stream_flags

CallBuilder = Callable[[dict[str, Any]], Call]


def to_response(answer: Answer) -> Response:
    if answer.frames is None:
        return Response(answer.body, answer.status, answer.headers, content_type=answer.content_type)
    response = Response(answer.frames, answer.status, answer.headers, content_type=answer.content_type)
    response.timeout = None  # the gateway's own deadlines apply, not Quart's 60 s
    return response


def chat_call(body: dict[str, Any]) -> Call:
    model = require_model(body)
    check_chat(body)
    stream, include_usage = stream_flags(body)
    call = Call("completion", model, body, stream, include_usage)
    call_options(call)
    return call


def llm_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("llm", __name__)
    master_key = gateway.config.server.master_key
    authenticate = Authenticator(master_key.get_secret_value() if master_key else None)
    pipeline = gateway.pipeline

    async def serve_call(build: CallBuilder) -> Response:
        try:
            user = authenticate(request.headers)
            call = build(parse_json_object(await request.get_data(cache=False)))
        except GatewayError as error:
            return Response(error.openai_json(), error.status, error.headers(), content_type=JSON)
        call.user = user
        call.request_headers = public_headers(request.headers)
        return to_response(await pipeline.serve(call))

    @routes.post("/v1/chat/completions")
    @routes.post("/chat/completions")
    async def chat_completions() -> Response:
        return await serve_call(chat_call)

    return routes

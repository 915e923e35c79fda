"""The LLM routes.  Each reads an HTTP request into a `Call` and turns the pipeline's `Answer`
back into HTTP; none of them calls a hook, guardrail or logger itself."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson
from quart import Blueprint, Response, request

from gateway_trio.adapters.base import Upload
from gateway_trio.adapters.pass_through import PassThroughRequest
from gateway_trio.apis.parsing import (
    chat_call,
    embeddings_call,
    messages_call,
    moderation_call,
    parse_json_object,
    responses_call,
    text_completion_call,
    transcription_call,
)
from gateway_trio.apis.wires import ANTHROPIC, OPENAI, RAW, ResponseIds, ResponsesWire, Wire, response_id_key
from gateway_trio.calls import Call, public_headers
from gateway_trio.config import PassThroughConfig, ServerConfig
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.pipeline.headers import sendable
from gateway_trio.pipeline.serve import Answer

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Reader = Callable[[], Awaitable[Call]]


def to_response(answer: Answer) -> Response:
    headers = sendable(answer.headers)
    if answer.frames is None:
        return Response(answer.body, answer.status, headers, content_type=answer.content_type)
    response = Response(answer.frames, answer.status, headers, content_type=answer.content_type)
    response.timeout = None  # the gateway's own deadlines apply, not Quart's 60 s
    return response


async def json_body() -> dict[str, Any]:
    return parse_json_object(await request.get_data(cache=False))


async def read_upload() -> tuple[dict[str, str], Upload | None]:
    form = await request.form
    files = await request.files
    stored = files.get("file")
    fields = {key: form[key] for key in form}
    if stored is None:
        return fields, None
    return fields, Upload(fields, stored.filename or "audio", stored.read(),
                          stored.content_type or "application/octet-stream")


def llm_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("llm", __name__)
    authenticate = gateway.authenticate
    pipeline = gateway.pipeline
    moderation_default = next(
        (d.group for d in gateway.deployments if d.info.mode == "moderation"), None
    )
    responses_wire = ResponsesWire(response_ids(gateway.config.server))

    async def serve(read: Reader, wire: Wire = OPENAI, *, x_api_key: bool = False) -> Response:
        try:
            user = authenticate(request.headers, allow_x_api_key=x_api_key)
            call = await read()
        except GatewayError as error:
            return Response(wire.error_body(error), error.status, error.headers(), content_type="application/json")
        call.user = user
        call.request_headers = public_headers(request.headers)
        return to_response(await pipeline.serve(call))

    def json_route(build: Callable[[dict[str, Any]], Call]) -> Reader:
        async def read() -> Call:
            return build(await json_body())
        return read

    @routes.post("/v1/chat/completions")
    @routes.post("/chat/completions")
    async def chat_completions() -> Response:
        return await serve(json_route(chat_call))

    @routes.post("/v1/completions")
    @routes.post("/completions")
    async def completions() -> Response:
        return await serve(json_route(text_completion_call))

    @routes.post("/v1/embeddings")
    @routes.post("/embeddings")
    async def embeddings() -> Response:
        return await serve(json_route(embeddings_call))

    @routes.post("/v1/moderations")
    @routes.post("/moderations")
    async def moderations() -> Response:
        return await serve(json_route(lambda body: moderation_call(body, moderation_default)))

    @routes.post("/v1/responses")
    @routes.post("/responses")
    async def responses() -> Response:
        return await serve(json_route(lambda body: responses_call(body, responses_wire)), responses_wire)

    @routes.post("/v1/messages")
    @routes.post("/messages")
    async def messages() -> Response:
        return await serve(json_route(messages_call), ANTHROPIC, x_api_key=True)

    @routes.post("/v1/audio/transcriptions")
    @routes.post("/audio/transcriptions")
    async def transcriptions() -> Response:
        async def read() -> Call:
            fields, upload = await read_upload()
            return transcription_call(fields, upload)
        return await serve(read)

    for index, route in enumerate(gateway.config.pass_through):
        routes.add_url_rule(route.path, f"pass_through_{index}", pass_through_handler(route, serve), methods=METHODS)

    return routes


def response_ids(server: ServerConfig) -> ResponseIds:
    """The signer of this gateway's response ids, keyed as `response_id_key` explains."""
    secret, master_key = server.response_id_secret, server.master_key
    return ResponseIds(response_id_key(
        secret.get_secret_value() if secret else None, master_key.get_secret_value() if master_key else None
    ))


def pass_through_handler(route: PassThroughConfig, serve: Callable[..., Awaitable[Response]]) -> Callable[[], Awaitable[Response]]:
    async def read() -> Call:
        content = await request.get_data(cache=False)
        headers = public_headers(request.headers) if route.forward_headers else {}
        relayed = PassThroughRequest(request.method, request.query_string.decode(), headers, content)
        call = Call("pass_through_endpoint", route.path, {"request": relayed}, stream=wants_stream(content))
        call.wire = RAW
        return call

    async def handler() -> Response:
        return await serve(read)

    return handler


def wants_stream(content: bytes) -> bool:
    """A JSON body asking for `"stream": true` gets its answer relayed as it arrives."""
    if b'"stream"' not in content:
        return False
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("stream") is True

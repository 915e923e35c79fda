"""The LLM routes, registered from the list of APIs (`apis.APIS`) and the config's
pass-through routes.  Each reads an HTTP request's body the way its API says (JSON, a form,
or raw bytes), lets the API check it into a `Call`, and turns the pipeline's `Answer` back
into HTTP; none of them calls a hook, guardrail or logger itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response, request

from gateway_trio import apis
from gateway_trio.adapters.base import Upload
from gateway_trio.adapters.pass_through import PassThroughRequest
from gateway_trio.apis.base import Api, Form
from gateway_trio.apis.checks import parse_json_object
from gateway_trio.apis.options import apply_headers
from gateway_trio.apis.pass_through import Relayed
from gateway_trio.calls import public_headers
from gateway_trio.config import PassThroughConfig
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.pipeline.headers import sendable
from gateway_trio.pipeline.serve import Answer

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Handler = Callable[[], Awaitable[Response]]


def to_response(answer: Answer) -> Response:
    headers = sendable(answer.headers)
    if answer.frames is None:
        return Response(answer.body, answer.status, headers, content_type=answer.content_type)
    response = Response(answer.frames, answer.status, headers, content_type=answer.content_type)
    response.timeout = None  # the gateway's own deadlines apply, not Quart's 60 s
    return response


async def read_form() -> Form:
    form = await request.form
    files = await request.files
    stored = files.get("file")
    fields = {key: form[key] for key in form}
    if stored is None:
        return Form(fields, None)
    return Form(fields, Upload(fields, stored.filename or "audio", stored.read(),
                               stored.content_type or "application/octet-stream"))


async def read_body(api: Api) -> Any:
    """The request's body as `api` reads it."""
    if api.body == "multipart":
        return await read_form()
    content = await request.get_data(cache=False)
    return content if api.body == "raw" else parse_json_object(content)


def llm_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("llm", __name__)
    caller = gateway.control.caller

    def handler(api: Api, content: Callable[[], Awaitable[Any]]) -> Handler:
        async def serve() -> Response:
            # The current config's pipeline, taken once: the call keeps it to its end (a reload).
            pipeline = gateway.pipeline
            try:
                user, tenant = await caller(request.headers, allow_x_api_key=api.x_api_key)
                body = await content()
                # As the current config serves it (a reload may change it); pass-through as built.
                call = gateway.current.apis.get(api.name, api).parse(body)
                call.request_headers = public_headers(request.headers)
                apply_headers(call)  # x-gateway-timeout and kin, checked like the body
            except GatewayError as error:
                pipeline.metrics.refused(request.path, error)
                return Response(api.wire.error_body(error), error.status, error.headers(),
                                content_type="application/json")
            call.user = user
            call.tenant = tenant
            call.route = request.path
            return to_response(await pipeline.serve(call))
        return serve

    for api in apis.APIS:
        served = api.configured(gateway.config)
        view = handler(served, lambda served=served: read_body(served))
        for path in served.paths:
            routes.add_url_rule(path, served.name, view, methods=["POST"])

    pass_through = apis.PASS_THROUGH.configured(gateway.config)
    for index, route in enumerate(gateway.config.pass_through):
        routes.add_url_rule(route.path, f"pass_through_{index}", handler(pass_through, relayed(route)), methods=METHODS)

    return routes


def relayed(route: PassThroughConfig) -> Callable[[], Awaitable[Relayed]]:
    async def read() -> Relayed:
        content = await request.get_data(cache=False)
        headers = public_headers(request.headers) if route.forward_headers else {}
        return Relayed(route.path, PassThroughRequest(request.method, request.query_string.decode(), headers, content))
    return read

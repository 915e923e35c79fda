"""`GET` and `DELETE /v1/responses/{id}` for the responses the gateway keeps (those of
deployments served through chat, `control.conversations`), in OpenAI's shapes.

The caller must be the key that made the response, or a key of its team, as for
`previous_response_id`; any other id, one of a native Responses deployment included, is a 404.
"""

from __future__ import annotations

import time

import orjson
from quart import Blueprint, Response, request

from gateway_trio.control.admission import check_key
from gateway_trio.control.conversations import Owner
from gateway_trio.errors import NotFound
from gateway_trio.gateway import Gateway
from gateway_trio.routes.errors import JSON, errors_as_responses

PATHS = ("/v1/responses/<response_id>", "/responses/<response_id>")


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id {response_id[:200]!r} not found.", param="response_id")


def response_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("responses", __name__)

    async def reader() -> Owner:
        """Who asks: 401 for no key or an unknown, blocked or expired one."""
        _, tenant = await gateway.control.caller(request.headers)
        if tenant is not None:
            check_key(tenant, time.time())
        return Owner.of(tenant)

    @errors_as_responses
    async def retrieve(response_id: str) -> Response:
        state = await gateway.conversations.recall(response_id, await reader())
        if state is None:
            raise not_found(response_id)
        return Response(state.response, 200, content_type=JSON)

    @errors_as_responses
    async def delete(response_id: str) -> Response:
        if not await gateway.conversations.delete(response_id, await reader()):
            raise not_found(response_id)
        body = {"id": response_id, "object": "response", "deleted": True}
        return Response(orjson.dumps(body), 200, content_type=JSON)

    for path in PATHS:
        routes.add_url_rule(path, f"retrieve{path}", retrieve, methods=["GET"])
        routes.add_url_rule(path, f"delete{path}", delete, methods=["DELETE"])
    return routes

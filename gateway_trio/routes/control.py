"""What the control-plane routes (keys, teams, users, customers) share: the body, the
answer, and who may call them.

Every one of them is the master key's, but for `/key/info` of the caller's own key, and all
answer refusals in OpenAI's error shape through `errors_as_responses`.  The control plane
lives while the gateway runs (its store is opened at start); a route reached before that
answers 503 rather than failing on a missing store.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from quart import Response, request

from gateway_trio.control.admin import Admin
from gateway_trio.control.requests import Body, parse_body
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.routes.errors import JSON

B = TypeVar("B", bound=Body)


class NotReady(GatewayError):
    status = 503
    error_type = "service_unavailable"


async def admin_of(gateway: Gateway, action: str) -> Admin:
    """The admin operations, for the master key only: 403 for a virtual key (it is known, just
    not allowed), 401 for no key or one that is no key of ours."""
    admin = running_admin(gateway)
    await gateway.control.require_master(request.headers, action)
    return admin


def running_admin(gateway: Gateway) -> Admin:
    if gateway.admin is None:
        raise NotReady("the control plane is starting; try again in a moment")
    return gateway.admin


async def body_of(model: type[B]) -> B:
    """The request's JSON body as `model`, or a 400 naming what is wrong."""
    return parse_body(model, await request.get_data(cache=False))


def answer(payload: Any) -> Response:
    return Response(orjson.dumps(payload), 200, content_type=JSON)


__all__ = ["NotReady", "admin_of", "answer", "body_of", "running_admin"]

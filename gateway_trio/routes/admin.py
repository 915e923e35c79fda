"""Routes about the gateway itself: models and health."""

from __future__ import annotations

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, request

from gateway_trio.auth import Authenticator
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
from gateway_trio.metrics import metrics_text, registry_for

JSON = "application/json"


def admin_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("admin", __name__)
    master_key = gateway.config.server.master_key
    authenticate = Authenticator(master_key.get_secret_value() if master_key else None)

    @routes.get("/v1/models")
    @routes.get("/models")
    async def models() -> Response:
        try:
            authenticate(request.headers)
        except GatewayError as error:
            return Response(error.openai_json(), error.status, content_type=JSON)
        routes_ = {route.path for route in gateway.config.pass_through}
        names = [n for n in gateway.router.group_names() if n not in routes_] + sorted(gateway.config.router.aliases)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "gateway-trio"} for name in names]
        return Response(orjson.dumps({"object": "list", "data": data}), 200, content_type=JSON)

    @routes.get("/health/liveliness")
    @routes.get("/health/liveness")
    async def liveliness() -> Response:
        return Response(orjson.dumps("I'm alive!"), 200, content_type=JSON)

    registry = registry_for(gateway)

    @routes.get("/metrics")
    async def metrics() -> Response:
        return Response(metrics_text(registry), 200, content_type=CONTENT_TYPE_LATEST)

    @routes.get("/health/readiness")
    async def readiness() -> Response:
        ready = gateway.ready.is_set()
        body = {"status": "healthy" if ready else "starting", "deployments": len(gateway.deployments)}
        return Response(orjson.dumps(body), 200 if ready else 503, content_type=JSON)

    return routes

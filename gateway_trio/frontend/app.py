"""The Quart-Trio frontend: routes in, actors started in the app's nursery."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import httpx
import orjson
import trio
from quart import Response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from gateway_trio.config import ConfigError, GatewayConfig
from gateway_trio.errors import BadRequest, GatewayError, NotFound
from gateway_trio.frontend.handler import GatewayApp
from gateway_trio.frontend.intake import reading_bodies, too_large
from gateway_trio.frontend.serving import reload_on_sighup
from gateway_trio.gateway import Gateway
from gateway_trio.routes.admin import admin_routes
from gateway_trio.routes.customers import customer_routes
from gateway_trio.routes.guardrails import guardrail_routes
from gateway_trio.routes.keys import key_routes
from gateway_trio.routes.llm import METHODS as PASS_THROUGH_METHODS
from gateway_trio.routes.llm import llm_routes
from gateway_trio.routes.metrics import GAUGE_MODES, metric_families
from gateway_trio.routes.responses import response_routes
from gateway_trio.routes.spend import spend_routes
from gateway_trio.routes.teams import team_routes
from gateway_trio.routes.users import user_routes
from gateway_trio.runtime.turns import taking_turns
from gateway_trio.runtime.worker_samples import WorkerSamples

log = logging.getLogger(__name__)

PASS_THROUGH_ENDPOINT = "llm.pass_through_"  # the endpoints routes/llm.py gives configured routes


def create_app(
    config: GatewayConfig,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    hooks: list[Any] | None = None,
    metrics_dir: str | None = None,
    workers: int = 1,
) -> GatewayApp:
    """Build the whole gateway for `config` without starting it (`check-config` builds one too).

    `metrics_dir` is where worker processes share their metrics (`runtime.worker_samples`).

    Raises `ConfigError`, naming the key, for anything in the config that could not work.
    """
    gateway = Gateway(config, transports=transports, hooks=hooks, workers=workers)
    app = GatewayApp("gateway_trio")
    # The intake middleware below enforces both; Quart's own checks stay as a second line.
    app.config["MAX_CONTENT_LENGTH"] = int(config.server.max_request_mb * 1024 * 1024)
    app.config["BODY_TIMEOUT"] = config.server.request_body_timeout_s
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = config.server.graceful_timeout_s
    app.gateway = gateway  # type: ignore[attr-defined]

    workers = None if metrics_dir is None else WorkerSamples(metrics_dir, gauge_modes=GAUGE_MODES)

    @app.before_serving
    async def start_actors() -> None:
        await app.nursery.start(gateway.run)
        app.nursery.start_soon(reload_on_sighup, gateway)
        if workers is not None:
            await app.nursery.start(workers.run, partial(metric_families, gateway))

    @app.after_serving
    async def drain_actors() -> None:
        # Runs once hypercorn has finished the in-flight requests; the actors stop after it.
        with trio.move_on_after(config.server.graceful_timeout_s + 5):
            await gateway.drain()

    app.register_blueprint(llm_routes(gateway))
    app.register_blueprint(response_routes(gateway))
    app.register_blueprint(admin_routes(gateway, workers))
    app.register_blueprint(spend_routes(gateway))
    app.register_blueprint(key_routes(gateway))
    app.register_blueprint(team_routes(gateway))
    app.register_blueprint(user_routes(gateway))
    app.register_blueprint(customer_routes(gateway))
    app.register_blueprint(guardrail_routes(gateway))
    check_pass_through_paths(app, config)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        mapped: GatewayError
        if error.code == 413:
            mapped = too_large(config.server.max_request_mb)
        elif error.code == 404:
            mapped = NotFound("no such route")
        elif error.code == 405:
            mapped = GatewayError("method not allowed", status=405)
        else:
            mapped = BadRequest(error.description or "bad request", status=error.code or 400)
        return Response(mapped.openai_json(), mapped.status, content_type="application/json")

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error while serving a request")
        body = {"error": {"message": "internal gateway error", "type": "internal_error", "param": None, "code": "500"}}
        return Response(orjson.dumps(body), 500, content_type="application/json")

    # Last, so they wrap everything Quart does for a request; the body is in before the turns.
    app.asgi_app = reading_bodies(  # type: ignore[method-assign]
        taking_turns(app.asgi_app, gateway.turnstile), max_request_mb=config.server.max_request_mb, body_timeout_s=config.server.request_body_timeout_s,
    )
    return app


def check_pass_through_paths(app: GatewayApp, config: GatewayConfig) -> None:
    """A pass-through route on a path the gateway serves itself would either never be reached
    or take that route's calls (LLM, admin, health) away: refuse it, naming the key."""
    own = Map([Rule(rule.rule, methods=rule.methods, endpoint=rule.endpoint)
               for rule in app.url_map.iter_rules() if not rule.endpoint.startswith(PASS_THROUGH_ENDPOINT)])
    urls = own.bind("gateway")
    for index, route in enumerate(config.pass_through):
        for method in PASS_THROUGH_METHODS:
            try:
                endpoint, _ = urls.match(route.path, method)
            except HTTPException:  # NotFound, MethodNotAllowed, a slash redirect: not this route
                continue
            raise ConfigError(f"{config.source}: pass_through[{index}].path: {route.path!r} is a gateway route "
                              f"already ({method} {endpoint.rpartition('.')[2]})")

"""Routes about the gateway itself: models, health and reloading its config."""

from __future__ import annotations

import os

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, current_app, request

from gateway_trio.config import ConfigError
from gateway_trio.control.admission import allows_model
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest
from gateway_trio.gateway import Gateway
from gateway_trio.pipeline.health import probe_all
from gateway_trio.routes.errors import JSON, errors_as_responses
from gateway_trio.routes.metrics import metrics_text
from gateway_trio.runtime.worker_samples import WorkerSamples


def admin_routes(gateway: Gateway, workers: WorkerSamples | None = None) -> Blueprint:
    """Models, health and metrics; `workers` makes /metrics the sum of every worker process."""
    routes = Blueprint("admin", __name__)

    @routes.get("/v1/models")
    @routes.get("/models")
    @errors_as_responses
    async def models() -> Response:
        _, tenant = await gateway.control.caller(request.headers)
        routes_ = {route.path for route in gateway.config.pass_through}
        names = [n for n in gateway.router.group_names() if n not in routes_] + sorted(gateway.config.router.aliases)
        if tenant is not None:  # a virtual key sees what it may call, its own aliases included
            names = [n for n in [*names, *sorted(tenant.key.aliases)] if allows_model(tenant, n)]
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "gateway-trio"} for name in names]
        return Response(orjson.dumps({"object": "list", "data": data}), 200, content_type=JSON)

    @routes.get("/v1/model/info")
    @routes.get("/model/info")
    @errors_as_responses
    async def model_info() -> Response:
        """LiteLLM's deployment list: no key, no credentials in `api_base`; a virtual key sees its models."""
        _, tenant = await gateway.control.caller(request.headers)
        data = [
            {
                "model_name": d.group,
                "litellm_params": {"model": d.model, "api_base": d.public_api_base},
                "model_info": {"id": d.id, **d.info.model_dump(exclude={"id"})},
            }
            for d in gateway.deployments
            if d.provider != "pass_through" and (tenant is None or allows_model(tenant, d.group))
        ]
        return Response(orjson.dumps({"data": data}), 200, content_type=JSON)

    @routes.get("/model_group/info")
    @errors_as_responses
    async def model_group_info() -> Response:
        """LiteLLM's per-group summary: providers, context and prices (the dearest deployment's),
        limits summed over the group; a virtual key sees its groups only."""
        _, tenant = await gateway.control.caller(request.headers)
        data = [
            group_summary(name, members)
            for name, members in sorted(gateway.router.groups.items())
            if members[0].provider != "pass_through" and (tenant is None or allows_model(tenant, name))
        ]
        return Response(orjson.dumps({"data": data}), 200, content_type=JSON)

    @routes.get("/routes")
    @errors_as_responses
    async def route_list() -> Response:
        """Every route this gateway serves, as LiteLLM's `/routes` lists them (master key)."""
        await gateway.control.require_master(request.headers, "list routes")
        listed = [
            {"path": rule.rule, "methods": sorted(rule.methods - {"HEAD", "OPTIONS"}), "name": rule.endpoint}
            for rule in current_app.url_map.iter_rules()
            if rule.endpoint != "static"
        ]
        return Response(orjson.dumps({"routes": sorted(listed, key=lambda r: r["path"])}), 200, content_type=JSON)

    @routes.get("/health/liveliness")
    @routes.get("/health/liveness")
    async def liveliness() -> Response:
        return Response(orjson.dumps("I'm alive!"), 200, content_type=JSON)

    @routes.get("/health")
    @errors_as_responses
    async def health() -> Response:
        await gateway.control.require_master(request.headers, "probe deployments")
        generation = gateway.current
        healthy, unhealthy = await probe_all(generation.dispatcher, generation.deployments,
                                             generation.config.router.health_check_timeout_s)
        body = {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}
        return Response(orjson.dumps(body), 200, content_type=JSON)

    @routes.post("/config/reload")
    @errors_as_responses
    async def reload_config() -> Response:
        """Read the config file again and serve it from the next call on (master key); a config
        that cannot work is a 400 naming its key, and the old one keeps serving."""
        await gateway.control.require_master(request.headers, "reload the config")
        try:
            summary = await gateway.reload()
        except ConfigError as error:
            raise BadRequest(f"config not reloaded: {error}", code="invalid_config") from None
        return Response(orjson.dumps({"status": "reloaded", **summary}), 200, content_type=JSON)

    @routes.get("/metrics")
    @errors_as_responses
    async def metrics() -> Response:
        if not gateway.config.server.metrics_public:
            await gateway.control.require_master(request.headers, "read metrics")
        return Response(await metrics_text(gateway, workers), 200, content_type=CONTENT_TYPE_LATEST)

    @routes.get("/health/readiness")
    async def readiness() -> Response:
        ready = gateway.ready.is_set()
        body = {
            "status": "healthy" if ready else "starting",
            "deployments": len(gateway.deployments),
            # LiteLLM's field: dashboards read it.  The database is opened before ready is set.
            "db": "connected" if gateway.database.is_up else "Not connected",
            "worker_pid": os.getpid(),  # which worker process answered, with `--workers N`
            # "shared" through Redis, or counted "per worker" / "per instance" (SPEC §10).
            "limits": gateway.limits_scope,
        }
        return Response(orjson.dumps(body), 200 if ready else 503, content_type=JSON)

    return routes


def group_summary(name: str, members: list[Deployment]) -> dict[str, object]:
    """One entry of `/model_group/info`: what a client may plan with, no credential."""

    def most(values: list[float | int | None]) -> float | int | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    def total(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    return {
        "model_group": name,
        "providers": sorted({d.provider for d in members}),
        "mode": members[0].info.mode,
        "max_input_tokens": most([d.info.max_input_tokens for d in members]),
        "max_output_tokens": most([d.info.max_output_tokens for d in members]),
        "input_cost_per_token": most([d.info.input_cost_per_token for d in members]),
        "output_cost_per_token": most([d.info.output_cost_per_token for d in members]),
        "tpm": total([d.tpm for d in members]),
        "rpm": total([d.rpm for d in members]),
    }

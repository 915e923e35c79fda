"""Routes about the gateway itself: models and health."""

from __future__ import annotations

import os

import orjson
import trio
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, current_app, request

from gateway_trio.apis import APIS
from gateway_trio.control.admission import allows_model
from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError
from gateway_trio.gateway import Gateway
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
        healthy, unhealthy = await probe_all(gateway)
        body = {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}
        return Response(orjson.dumps(body), 200, content_type=JSON)

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


# Each deployment mode's probe: the API it is probed through, with that API's probe body.
PROBES = {api.probe[0]: api for api in APIS if api.probe is not None}
PROBE_TIMEOUT_S = 10.0
PROBE_CONCURRENCY = 16


async def probe_all(gateway: Gateway) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Call every deployment once, a few at a time; which answered and which did not."""
    healthy: list[dict[str, object]] = []
    unhealthy: list[dict[str, object]] = []
    limit = trio.CapacityLimiter(PROBE_CONCURRENCY)

    async def probe(deployment: Deployment) -> None:
        entry: dict[str, object] = {"model_group": deployment.group, "model_id": deployment.id,
                                    "provider": deployment.provider, "api_base": deployment.public_api_base}
        api = PROBES[deployment.info.mode]
        body = {"model": deployment.model, **api.probe[1]}
        async with limit:
            try:
                await gateway.dispatcher.probe(deployment, api.adapter_method, body, PROBE_TIMEOUT_S)
            except GatewayError as error:
                unhealthy.append({**entry, "error": error.message})
                return
        healthy.append(entry)

    async with trio.open_nursery() as nursery:
        for deployment in gateway.deployments:
            if deployment.provider != "pass_through" and "*" not in deployment.model and deployment.info.mode in PROBES:
                nursery.start_soon(probe, deployment)
    return healthy, unhealthy

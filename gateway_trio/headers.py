"""The `x-gateway-*` response headers (SPEC §5), built the same way for every route.

A header whose value is not known (no deployment chosen yet, cost not known before the body)
is left out, never invented.
"""

from __future__ import annotations

from gateway_trio.calls import Call
from gateway_trio.costs import response_cost


def gateway_headers(call: Call, *, with_cost: bool = False) -> dict[str, str]:
    headers = {
        "x-gateway-call-id": call.call_id,
        "x-gateway-attempted-retries": str(call.attempted_retries),
        "x-gateway-attempted-fallbacks": str(call.attempted_fallbacks),
        "x-gateway-overhead-ms": f"{call.overhead_ms():.2f}",
    }
    if call.model_group:
        headers["x-gateway-model-group"] = call.model_group
    deployment = call.deployment
    if deployment is not None:
        headers["x-gateway-model-id"] = deployment.id
        headers["x-gateway-provider"] = deployment.provider
        if deployment.public_api_base:
            headers["x-gateway-model-api-base"] = deployment.public_api_base
    if with_cost:
        cost = response_cost(deployment, call.usage, call.upstream_model)
        if cost is not None:
            headers["x-gateway-response-cost"] = f"{cost:.10g}"
    return headers

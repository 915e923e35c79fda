"""The `x-gateway-*` response headers (SPEC §5), built the same way for every route.

A header whose value is not known (no deployment chosen yet, cost not known before the body)
is left out, never invented.
"""

from __future__ import annotations

import logging
import re

import trio

from gateway_trio.calls import Call
from gateway_trio.spend.costs import response_cost

log = logging.getLogger(__name__)

# RFC 9110: a field name is a token; a value holds no control character but tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_WARNED_LIMIT = 100
_warned: set[str] = set()


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


# Our header -> LiteLLM's name for the same figure (`[server] litellm_headers`).
LITELLM_NAMES = {
    "x-gateway-call-id": "x-litellm-call-id",
    "x-gateway-model-id": "x-litellm-model-id",
    "x-gateway-model-group": "x-litellm-model-group",
    "x-gateway-model-api-base": "x-litellm-model-api-base",
    "x-gateway-attempted-retries": "x-litellm-attempted-retries",
    "x-gateway-attempted-fallbacks": "x-litellm-attempted-fallbacks",
    "x-gateway-response-cost": "x-litellm-response-cost",
    "x-gateway-applied-guardrails": "x-litellm-applied-guardrails",
    "x-gateway-overhead-ms": "x-litellm-overhead-duration-ms",
    "x-gateway-key-spend": "x-litellm-key-spend",
}


def with_litellm_names(headers: dict[str, str], call: Call) -> None:
    """Add LiteLLM's names of the gateway headers present, and its `response-duration-ms`."""
    for ours, theirs in LITELLM_NAMES.items():
        value = headers.get(ours)
        if value is not None:
            headers[theirs] = value
    headers["x-litellm-response-duration-ms"] = f"{(trio.current_time() - call.started_at) * 1000:.2f}"


def sendable(headers: dict[str, str]) -> dict[str, str]:
    """`headers` without those no HTTP response may carry (a name that is not a token, a value
    with CR, LF or another control character), which would otherwise turn the answer into a 500.

    Ours are always fine; hook-made ones may echo what a client sent.  One joined check keeps
    the common case to a couple of microseconds.
    """
    if "" not in headers and _TOKEN.fullmatch("".join(headers)) and not _CONTROL.search("\t".join(headers.values())):
        return headers
    kept = {}
    for name, value in headers.items():
        if name and _TOKEN.fullmatch(name) and not _CONTROL.search(value):
            kept[name] = value
        elif len(_warned) < _WARNED_LIMIT and name not in _warned:
            _warned.add(name)
            log.warning("dropped response header %r: its name or value is not valid in HTTP (set by a hook?)", name)
    return kept

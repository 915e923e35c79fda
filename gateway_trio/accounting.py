"""Turning a finished call into its one spend record."""

from __future__ import annotations

import time

from gateway_trio.calls import Call
from gateway_trio.costs import response_cost
from gateway_trio.errors import GatewayError
from gateway_trio.records import SpendRecord, Status


def spend_record(call: Call, status: Status, error: BaseException | None) -> SpendRecord:
    deployment = call.deployment
    usage = call.usage or {}
    ttft_ms = None
    if call.first_chunk_at is not None:
        ttft_ms = (call.first_chunk_at - call.started_at) * 1000
    if error is None:
        message = None
    elif isinstance(error, GatewayError):
        message = f"{error.status}: {error.message}"
    else:
        message = type(error).__name__
    return SpendRecord(
        call_id=call.call_id,
        call_type=call.call_type,
        stream=call.stream,
        status=status,
        start_time=call.start_time,
        end_time=time.time(),
        api_key_hash=call.user.api_key,
        key_alias=call.user.key_alias,
        model_group=call.model_group,
        model_id=deployment.id if deployment else None,
        provider=deployment.provider if deployment else None,
        api_base=deployment.public_api_base if deployment else None,
        ttft_ms=ttft_ms,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost=response_cost(deployment, call.usage, call.upstream_model),
        cache_hit=call.cache_hit,
        attempted_retries=call.attempted_retries,
        attempted_fallbacks=call.attempted_fallbacks,
        guardrail_information=list(call.guardrail_runs),
        error=message,
        tags=list(call.tags),
        metadata=dict(call.metadata),
    )

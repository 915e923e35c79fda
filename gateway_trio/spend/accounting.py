"""Turning a finished call into its one spend record."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway_trio.adapters.usage import UNKNOWN, reported_tokens
from gateway_trio.errors import GatewayError
from gateway_trio.spend.costs import response_cost
from gateway_trio.spend.records import SpendRecord, Status

if TYPE_CHECKING:
    from gateway_trio.calls import Call

# Client metadata larger than this (JSON-encoded) is not stored; a marker says so and how large.
MAX_METADATA_BYTES = 16 * 1024
METADATA_TRUNCATED = "metadata_truncated"
# The gateway's note, in a record's metadata, of the usage counts the upstream reported wrongly.
UNKNOWN_USAGE = "usage_unknown"


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
        team_id=call.user.team_id,
        user_id=call.user.user_id if call.tenant is not None else None,
        end_user=call.end_user,
        model_group=call.model_group,
        model_id=deployment.id if deployment else None,
        provider=deployment.provider if deployment else None,
        api_base=deployment.public_api_base if deployment else None,
        ttft_ms=ttft_ms,
        prompt_tokens=reported_tokens(usage, "prompt_tokens"),
        completion_tokens=reported_tokens(usage, "completion_tokens"),
        cost=response_cost(deployment, call.usage, call.upstream_model),
        cache_hit=call.cache_hit,
        attempted_retries=call.attempted_retries,
        attempted_fallbacks=call.attempted_fallbacks,
        guardrail_information=list(call.guardrail_runs),
        error=message,
        tags=list(call.tags),
        metadata=record_metadata(call.metadata, usage),
    )


def record_metadata(metadata: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """The client's metadata as the record keeps it: bounded, and noting unknown usage."""
    kept = capped_metadata(metadata)
    unknown = usage.get(UNKNOWN)
    if unknown:
        kept[UNKNOWN_USAGE] = list(unknown)
    return kept


def capped_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` (a copy), or a marker in its place when it encodes to more than the cap.

    Every record waits in the spend writer's queue and is stored and read back whole: a client
    must not be able to make each one megabytes long.
    """
    if not metadata:
        return {}
    try:
        size = len(orjson.dumps(metadata, default=str, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError:
        size = len(repr(metadata))  # what the store keeps of it then
    if size <= MAX_METADATA_BYTES:
        return dict(metadata)
    return {METADATA_TRUNCATED: {"encoded_bytes": size, "limit_bytes": MAX_METADATA_BYTES}}

"""The `kwargs` LiteLLM-style logging hooks receive, built from a call and its spend record.

The logging kwargs are built in the callback actor from a `CallSnapshot` (frozen, taken at the
call's end or dispatch), never from the live `Call`; `call_info` and `hidden_params` read only
what both have, so the pipeline uses them on the live call for its in-line hooks.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway_trio.spend.records import SpendRecord

if TYPE_CHECKING:
    from gateway_trio.calls import Call, CallSnapshot


def call_info(call: Call | CallSnapshot) -> dict[str, Any]:
    """What every route tells hooks about the chosen deployment (SPEC §6 `call_info`)."""
    deployment = call.deployment
    return {
        "provider": deployment.provider if deployment else None,
        "model_id": deployment.id if deployment else None,
        "model_info": deployment.model_info() if deployment else None,
        "api_base": deployment.public_api_base if deployment else None,
        "model_group": call.model_group,
    }


def hidden_params(call: Call | CallSnapshot, response_cost: float | None = None) -> dict[str, Any]:
    """What LiteLLM keeps in `response._hidden_params`: where the answer came from."""
    info = call_info(call)
    return {
        "custom_llm_provider": info["provider"],
        "model_id": info["model_id"],
        "api_base": info["api_base"],
        "model_group": info["model_group"],
        "response_cost": response_cost,
        "additional_headers": {},
    }


def litellm_params(call: CallSnapshot) -> dict[str, Any]:
    user = call.user
    info = call_info(call)
    metadata = {
        **call.metadata,
        "user_api_key_hash": user.api_key,
        "user_api_key_alias": user.key_alias,
        "user_api_key_team_id": user.team_id,
        "user_api_key_user_id": user.user_id,
        "tags": list(call.tags),
        "headers": call.request_headers,
        "model_group": call.model_group,
        "model_info": info["model_info"],
        "deployment": info["model_id"],
    }
    return {
        "metadata": metadata,
        "api_base": info["api_base"],
        "custom_llm_provider": info["provider"],
        "model_info": info["model_info"],
    }


def pre_api_call_kwargs(call: CallSnapshot) -> dict[str, Any]:
    return {
        "model": call.upstream_model or call.model,
        "messages": call.body.get("messages"),
        "input": call.body.get("input", call.body.get("prompt")),
        "call_type": call.call_type,
        "stream": call.stream,
        "litellm_call_id": call.call_id,
        "litellm_params": litellm_params(call),
        "optional_params": {k: v for k, v in call.body.items() if k not in ("messages", "input", "prompt", "model")},
        "additional_args": {"complete_input_dict": call.body},
    }


def logging_kwargs(call: CallSnapshot, record: SpendRecord, error: BaseException | None) -> dict[str, Any]:
    kwargs = pre_api_call_kwargs(call)
    completion_start = record.start_time + record.ttft_ms / 1000 if record.ttft_ms is not None else None
    kwargs.update(
        response_cost=record.cost,
        cache_hit=record.cache_hit,
        start_time=datetime.fromtimestamp(record.start_time),
        end_time=datetime.fromtimestamp(record.end_time),
        completion_start_time=datetime.fromtimestamp(completion_start) if completion_start else None,
        model_group=call.model_group,
        standard_logging_object=record.as_dict(),
    )
    if error is not None:
        kwargs["exception"] = error
        kwargs["traceback_exception"] = repr(error)
    return kwargs

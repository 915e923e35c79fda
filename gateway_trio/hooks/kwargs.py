"""The `kwargs` LiteLLM-style logging hooks receive, built from a call and its spend record.

The logging kwargs are built in the callback actor from a `CallSnapshot` (frozen, taken at the
call's end or dispatch), never from the live `Call`; `call_info` and `hidden_params` read only
what both have, so the pipeline uses them on the live call for its in-line hooks.  Nothing here
runs on the request path: only the callback actor builds kwargs, and only for hooks that exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway_trio.adapters.pass_through import PassThroughRequest
from gateway_trio.hooks.exceptions import as_litellm
from gateway_trio.hooks.payload import standard_logging_payload
from gateway_trio.spend.records import SpendRecord

if TYPE_CHECKING:
    from gateway_trio.calls import Call, CallSnapshot

# The request's own fields: everything else in its body is a model parameter.
_INPUT_FIELDS = frozenset({"messages", "input", "prompt", "model"})


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
    """What LiteLLM keeps in `response._hidden_params`: where the answer came from.

    `custom_llm_provider` and `model` are what `litellm.completion_cost` prices an answer by.
    """
    info = call_info(call)
    return {
        "custom_llm_provider": info["provider"],
        "model_id": info["model_id"],
        "api_base": info["api_base"],
        "model_group": info["model_group"],
        "model": call.upstream_model,
        "litellm_call_id": call.call_id,
        "response_cost": response_cost,
        "additional_headers": {},
    }


def model_parameters(call: CallSnapshot) -> dict[str, Any]:
    """The request's parameters other than its input and model (LiteLLM's `optional_params`)."""
    return {k: v for k, v in call.body.items() if k not in _INPUT_FIELDS}


def end_user(call: CallSnapshot) -> str | None:
    """The caller's customer: the body's `user`, or the end-user header (as admission read it)."""
    if call.end_user is not None:
        return call.end_user
    user = call.body.get("user")
    return user if isinstance(user, str) else None


def proxy_server_request(call: CallSnapshot) -> dict[str, Any]:
    """The HTTP request as the gateway received it, as LiteLLM's proxy logs it: never a credential
    (headers without them; the URL without its query string, where keys sometimes travel)."""
    headers = call.request_headers
    scheme = headers.get("x-forwarded-proto", "http")
    host = headers.get("host", "")
    relayed = call.body.get("request")
    if isinstance(relayed, PassThroughRequest):
        method, body = relayed.method, _json_or_none(relayed.content)
    else:
        method, body = "POST", call.body
    return {"url": f"{scheme}://{host}{call.route}", "method": method, "headers": headers, "body": body}


def _json_or_none(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def litellm_params(call: CallSnapshot) -> dict[str, Any]:
    user = call.user
    info = call_info(call)
    metadata = {
        **call.metadata,
        "user_api_key": user.api_key,  # LiteLLM's name of the key's hash, beside the explicit one
        "user_api_key_hash": user.api_key,
        "user_api_key_alias": user.key_alias,
        "user_api_key_team_id": user.team_id,
        "user_api_key_team_alias": user.team_alias,
        "user_api_key_user_id": user.user_id,
        "user_api_key_user_email": user.user_email,
        "user_api_key_end_user_id": end_user(call),
        "user_api_key_metadata": user.metadata,
        "requester_metadata": call.metadata,
        "tags": list(call.tags),
        "headers": call.request_headers,
        "endpoint": call.route,
        "model_group": call.model_group,
        "model_info": info["model_info"],
        "deployment": info["model_id"],
    }
    return {
        "metadata": metadata,
        "litellm_call_id": call.call_id,
        "api_base": info["api_base"],
        "custom_llm_provider": info["provider"],
        "model_info": info["model_info"],
        "proxy_server_request": proxy_server_request(call),
    }


def pre_api_call_kwargs(call: CallSnapshot) -> dict[str, Any]:
    started = call.api_call_start_time
    return {
        "model": call.upstream_model or call.model,
        "messages": call.body.get("messages"),
        "input": call.body.get("input", call.body.get("prompt")),
        "call_type": call.call_type,
        "stream": call.stream,
        "user": end_user(call),
        "litellm_call_id": call.call_id,
        "litellm_params": litellm_params(call),
        "optional_params": model_parameters(call),
        "additional_args": {"complete_input_dict": call.body},
        "api_call_start_time": datetime.fromtimestamp(started) if started is not None else None,
    }


def logging_kwargs(
    call: CallSnapshot, record: SpendRecord, error: BaseException | None, response: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The kwargs of a success or failure event; `response` is the answer's body, if any."""
    kwargs = pre_api_call_kwargs(call)
    completion_start = record.start_time + record.ttft_ms / 1000 if record.ttft_ms is not None else None
    provider = call.deployment.provider if call.deployment else None
    exception = as_litellm(error, llm_provider=provider, model=kwargs["model"]) if error is not None else None
    kwargs.update(
        response_cost=record.cost,
        cache_hit=record.cache_hit,
        start_time=datetime.fromtimestamp(record.start_time),
        end_time=datetime.fromtimestamp(record.end_time),
        completion_start_time=datetime.fromtimestamp(completion_start) if completion_start else None,
        model_group=call.model_group,
        standard_logging_object=standard_logging_payload(
            call,
            record,
            response,
            exception,
            model=kwargs["model"],
            end_user=kwargs["user"],
            metadata=kwargs["litellm_params"]["metadata"],
            parameters=kwargs["optional_params"],
            hidden=hidden_params(call, record.cost),
        ),
    )
    if exception is not None:
        kwargs["exception"] = exception
        kwargs["traceback_exception"] = repr(error)
    return kwargs

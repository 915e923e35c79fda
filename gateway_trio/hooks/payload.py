"""`kwargs["standard_logging_object"]`: LiteLLM's `StandardLoggingPayload`, beside the spend record.

Tools written for LiteLLM read this payload by LiteLLM's field names and types (times as unix
seconds, `status` "success" or "failure", `metadata` as `StandardLoggingMetadata`).  The spend
record's own fields (SPEC §8) are kept in the same dict; where a name means something else in
LiteLLM's payload, LiteLLM's meaning holds and the record's value stays under another name
(`record_status`: `client_disconnected` is a `failure` to LiteLLM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway_trio.errors import GatewayError
from gateway_trio.spend.records import GuardrailRun, SpendRecord

if TYPE_CHECKING:
    from gateway_trio.calls import CallSnapshot

# The spend record's guardrail verdicts in LiteLLM's words.
GUARDRAIL_STATUS = {
    "success": "success",
    "blocked": "guardrail_intervened",
    "failed": "guardrail_failed_to_respond",
    "not_run": "not_run",
}


def standard_logging_payload(
    call: CallSnapshot,
    record: SpendRecord,
    response: dict[str, Any] | None,
    exception: BaseException | None,
    *,
    model: str,
    end_user: str | None,
    metadata: dict[str, Any],
    parameters: dict[str, Any],
    hidden: dict[str, Any],
) -> dict[str, Any]:
    status = "success" if record.status == "success" else "failure"
    ran = [run for run in record.guardrail_information if run.status != "not_run"]
    body = call.body
    payload = record.as_dict()
    payload.update(
        id=record.call_id,
        trace_id=record.call_id,  # one record per request, retries and fallbacks folded in
        call_id=record.call_id,
        call_type=record.call_type,
        stream=record.stream,
        status=status,
        record_status=record.status,
        status_fields={"llm_api_status": status, "guardrail_status": _guardrail_status(record.guardrail_information)},
        response_cost=record.cost or 0.0,
        response_cost_failure_debug_info=None,
        custom_llm_provider=record.provider,
        prompt_tokens=record.prompt_tokens or 0,
        completion_tokens=record.completion_tokens or 0,
        total_tokens=(record.prompt_tokens or 0) + (record.completion_tokens or 0),
        startTime=record.start_time,
        endTime=record.end_time,
        completionStartTime=record.start_time + record.ttft_ms / 1000
        if record.ttft_ms is not None
        else record.end_time,
        response_time=record.end_time - record.start_time,
        model=model,
        model_id=record.model_id,
        model_group=record.model_group,
        model_map_information={
            "model_map_key": model,
            "model_map_value": call.deployment.model_info() if call.deployment else None,
        },
        api_base=record.api_base or "",
        metadata={
            "user_api_key_hash": record.api_key_hash,
            "user_api_key_alias": record.key_alias,
            "user_api_key_org_id": None,
            "user_api_key_team_id": record.team_id,
            "user_api_key_user_id": record.user_id,
            "user_api_key_user_email": call.user.user_email,
            "user_api_key_team_alias": call.user.team_alias,
            "user_api_key_end_user_id": end_user,
            "spend_logs_metadata": record.metadata or None,
            "requester_ip_address": None,
            "requester_metadata": dict(call.metadata),
            "prompt_management_metadata": None,
            "applied_guardrails": [run.name for run in ran],
            "user_api_key_metadata": metadata.get("user_api_key_metadata"),
        },
        cache_hit=record.cache_hit,
        cache_key=None,
        saved_cache_cost=0.0,
        request_tags=list(record.tags),
        end_user=end_user,
        requester_ip_address=None,
        messages=body.get("messages", body.get("input", body.get("prompt"))),
        response=response,
        error_str=record.error if status == "failure" else None,
        error_information=_error_information(exception, record) if status == "failure" else None,
        model_parameters=parameters,
        hidden_params={**hidden, "cache_key": None, "litellm_overhead_time_ms": None},
        guardrail_information=[_guardrail_run(run) for run in record.guardrail_information],
    )
    return payload


def _guardrail_status(runs: list[GuardrailRun]) -> str:
    verdicts = {run.status for run in runs}
    for verdict in ("blocked", "failed", "success"):
        if verdict in verdicts:
            return GUARDRAIL_STATUS[verdict]
    return "not_run"


def _guardrail_run(run: GuardrailRun) -> dict[str, Any]:
    return {
        "guardrail_name": run.name,
        "guardrail_mode": run.mode,
        "guardrail_status": GUARDRAIL_STATUS[run.status],
        "guardrail_response": run.detail,
        "start_time": run.start_time,
        "end_time": run.start_time + run.duration_ms / 1000,
        "duration": run.duration_ms / 1000,
    }


def _error_information(exception: BaseException | None, record: SpendRecord) -> dict[str, Any]:
    status = exception.status if isinstance(exception, GatewayError) else None
    return {
        "error_code": str(status) if status is not None else "",
        "error_class": type(exception).__name__ if exception is not None else "",
        "llm_provider": record.provider or "",
        "traceback": "",
        "error_message": exception.message if isinstance(exception, GatewayError) else (record.error or ""),
    }

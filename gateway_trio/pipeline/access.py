"""One access line per call, from its spend record: what an operator tails, greps and ships.

Written at the call's end, in every worker, with the same fields in both log formats (SPEC §11).
The line never holds a key: the record it comes from never does.  Its `error` is the record's,
already free of credentials, cut short so one bad upstream cannot flood the log.
"""

from __future__ import annotations

import logging

from gateway_trio.spend.records import SpendRecord

access_log = logging.getLogger("gateway_trio.access")
ERROR_CHARS = 200


def log_access(record: SpendRecord, route: str) -> None:
    """Log `record`'s line at INFO (nothing is built when INFO is off)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    latency_ms = round((record.end_time - record.start_time) * 1000, 1)
    fields = {
        "call_id": record.call_id,
        "route": route,
        "call_type": record.call_type,
        "stream": record.stream,
        "status": record.status,
        "model_group": record.model_group,
        "model_id": record.model_id,
        "provider": record.provider,
        "latency_ms": latency_ms,
        "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 1),
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost": record.cost,
        "key_alias": record.key_alias,
        "team_id": record.team_id,
        "attempted_retries": record.attempted_retries,
        "attempted_fallbacks": record.attempted_fallbacks,
    }
    if record.error:
        fields["error"] = record.error[:ERROR_CHARS]
    access_log.info("%s %s %s %sms", route or record.call_type, record.status, record.model_group or "-", latency_ms,
                    extra={"fields": fields})


__all__ = ["log_access"]

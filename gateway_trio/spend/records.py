"""The spend log record (SPEC §8): one per request, retries and fallbacks folded in.

It never holds a key or a secret: callers are identified by the hash of their key.  Records
are frozen: once built at a call's end, the same record goes to the spend writer and to the
logging hooks, and neither can change what the other sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["success", "failure", "client_disconnected"]


@dataclass(frozen=True, slots=True)
class GuardrailRun:
    name: str
    mode: str
    status: Literal["success", "blocked", "failed", "not_run"]
    start_time: float
    duration_ms: float
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SpendRecord:
    call_id: str
    call_type: str
    stream: bool
    status: Status
    start_time: float  # unix seconds
    end_time: float
    api_key_hash: str | None = None
    key_alias: str | None = None
    # Who else the call is charged to: the key's team and user, and the caller's customer.
    team_id: str | None = None
    user_id: str | None = None
    end_user: str | None = None
    model_group: str | None = None
    model_id: str | None = None
    provider: str | None = None
    api_base: str | None = None
    ttft_ms: float | None = None
    # None: the upstream reported the count, but not as a token count (see adapters/usage.py).
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    cost: float | None = None
    cache_hit: bool = False
    attempted_retries: int = 0
    attempted_fallbacks: int = 0
    guardrail_information: list[GuardrailRun] = field(default_factory=list)
    error: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

"""A Call: one client request as it travels the pipeline, whatever route it came from."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from gateway_trio.deployment import Deployment
from gateway_trio.hooks import UserAPIKeyAuth
from gateway_trio.spend.records import GuardrailRun

if TYPE_CHECKING:
    from gateway_trio.apis.base import Api
    from gateway_trio.apis.wires import Wire

# Headers that carry credentials: never forwarded to hooks, logs or upstreams.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "x-goog-api-key"}
)


def public_headers(headers: Any) -> dict[str, str]:
    """The client's headers minus credentials, names lower-cased."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


@dataclass(slots=True)
class Call:
    api: Api  # the client API it came in on: everything that differs between routes
    model: str  # as the client asked
    body: dict[str, Any]
    stream: bool = False
    include_usage: bool = False
    request_headers: dict[str, str] = field(default_factory=dict)
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    start_time: float = field(default_factory=time.time)
    started_at: float = field(default_factory=trio.current_time)
    model_group: str | None = None
    deployment: Deployment | None = None
    attempted_retries: int = 0
    attempted_fallbacks: int = 0
    upstream_wait_s: float = 0.0
    first_chunk_at: float | None = None
    usage: dict[str, Any] | None = None
    user: UserAPIKeyAuth = field(default_factory=UserAPIKeyAuth)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    requested_guardrails: list[str] = field(default_factory=list)
    guardrail_runs: list[GuardrailRun] = field(default_factory=list)
    cache_hit: bool = False
    finished: bool = False  # its one spend record / final event has been posted
    pinned_deployment: str | None = None  # a follow-up that must reach the same deployment

    @property
    def call_type(self) -> str:
        """LiteLLM's name of the call's API ("completion", "embeddings", ...)."""
        return self.api.call_type

    @property
    def wire(self) -> Wire:
        """How the route's answers look."""
        return self.api.wire

    @property
    def upstream_model(self) -> str | None:
        return self.deployment.upstream_model(self.model) if self.deployment else None

    def overhead_ms(self) -> float:
        """Time spent in the gateway itself, not waiting on upstreams or backoffs."""
        elapsed = trio.current_time() - self.started_at
        return max(0.0, (elapsed - self.upstream_wait_s) * 1000)

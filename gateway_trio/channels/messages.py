"""The small immutable vocabulary the actors speak.

Requests carry their own reply channel; answers come back on it.  A deployment actor answers
with a stream of events on a per-call channel: one `Reply` (non-streaming), or `Chunks`...
then `StreamEnd` (streaming), or a `Failure` at any point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import trio

from gateway_trio.deployment import Deployment
from gateway_trio.errors import GatewayError

# --- to the router ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Pick:
    """Ask the router for a deployment of `group`, preferring ones not in `tried`."""

    group: str
    tried: frozenset[str]
    input_tokens: int
    pinned: str | None
    reply: trio.MemorySendChannel[Union[Deployment, GatewayError]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt on a deployment ended; feeds cooldowns and the routing strategies."""

    deployment_id: str
    ok: bool
    latency_s: float
    tokens: int = 0
    # A failure the client caused (a 4xx) says nothing about the deployment's health.
    counts_as_failure: bool = True
    rate_limited: bool = False  # the upstream said 429: busy, not broken


@dataclass(frozen=True, slots=True)
class DeploymentLoad:
    """One deployment's load as the router saw it when asked."""

    group: str
    deployment_id: str
    inflight: int
    cooling_down: bool
    cooldowns: int = 0  # times it was cooled down since start
    failing: bool = False  # not cooling, but failed in the last minute (toward a cooldown)
    unhealthy: bool = False  # the background health check found it down


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """The router's state at one moment, for `/metrics`: every Outcome sent before it counts."""

    loads: tuple[DeploymentLoad, ...]


@dataclass(frozen=True, slots=True)
class Health:
    """How a background health probe of a deployment went: an unhealthy one is skipped by the
    router until a later probe answers."""

    deployment_id: str
    healthy: bool


@dataclass(frozen=True, slots=True)
class AskSnapshot:
    """Ask the router for a `RouterSnapshot`, answered on `reply` between two messages."""

    reply: trio.MemorySendChannel[RouterSnapshot]


@dataclass(frozen=True, slots=True)
class SharedLoad:
    """What the other instances (through Redis) add to one deployment's load, as last synced."""

    inflight: int = 0  # their calls in flight on it
    requests: int = 0  # their requests and tokens in the current minute
    tokens: int = 0
    failures: int = 0  # their failures in the current minute
    cooled_for_s: float = 0.0  # a cooldown one of them (or we) set, still this long to run


@dataclass(frozen=True, slots=True)
class LocalLoad:
    """What this instance did on one deployment since the last sync, and holds now."""

    inflight: int
    requests: int
    tokens: int
    failures: int
    cooled_for_s: float  # a cooldown this router set since the last sync (0: none)


@dataclass(frozen=True, slots=True)
class ExchangeLoads:
    """Give the router the others' loads; it answers with its own since the last exchange."""

    shared: dict[str, SharedLoad]
    reply: trio.MemorySendChannel[dict[str, LocalLoad]]


# --- to a deployment actor -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Dispatch:
    """One attempt of a call on one deployment.

    `cancel_scope` is entered by the deployment actor's task for this attempt; the caller
    cancels it to stop the upstream call (client gone, deadline passed, another attempt won).
    The actor sets `sent` once it holds a slot and sends the request, and only from then gives
    the upstream `first_event_within` seconds for its first event: how long a call queued for
    a slot is not the upstream's doing, and the caller must tell the two apart.
    """

    adapter_method: str  # which of the adapter's methods serve it (the API's), e.g. "chat"
    body: dict[str, Any]
    model: str
    stream: bool
    reply: trio.MemorySendChannel["DeploymentEvent"]
    cancel_scope: trio.CancelScope
    first_event_within: float = math.inf
    sent: trio.Event = field(default_factory=trio.Event)
    # Client headers the provider reads (`anthropic-beta`), added to what the adapter builds.
    client_headers: dict[str, str] = field(default_factory=dict)
    # The attempt span's W3C trace context for the upstream (`[otel]` on), None otherwise.
    traceparent: str | None = None


# --- from a deployment actor -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reply:
    body: dict[str, Any]
    usage: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Chunks:
    """Chunk payloads (JSON bytes, no SSE framing) read from the upstream in one go."""

    payloads: list[bytes]


@dataclass(frozen=True, slots=True)
class StreamEnd:
    usage: dict[str, Any] | None
    usage_chunk: bytes | None


@dataclass(frozen=True, slots=True)
class Failure:
    error: GatewayError


DeploymentEvent = Union[Reply, Chunks, StreamEnd, Failure]

"""Events for the callback actor and for user actors (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["pre_api_call", "success", "failure", "stream_chunk"]


@dataclass(frozen=True, slots=True)
class HookEvent:
    """One thing that happened to a call.

    For `success` and `failure` the payload holds LiteLLM-style `kwargs`, `response_obj`,
    `start_time` and `end_time`; for `pre_api_call` it holds `model`, `messages` and `kwargs`;
    for `stream_chunk` it holds `call_id` and `chunk` (the chunk's JSON bytes).
    """

    kind: EventKind
    payload: dict[str, Any]

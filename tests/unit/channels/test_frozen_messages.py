"""Messages between tasks cannot change after they are sent: assigning to one raises."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio

from gateway_trio.channels.events import HookEvent
from gateway_trio.channels.messages import Chunks, Dispatch, Failure, Outcome, Pick, Reply, StreamEnd
from gateway_trio.errors import UpstreamError
from gateway_trio.spend.records import GuardrailRun, SpendRecord


def messages() -> list[tuple[Any, str]]:
    send, _ = trio.open_memory_channel[Any](1)
    return [
        (SpendRecord("id", "completion", False, "success", 1.0, 2.0), "status"),
        (GuardrailRun("g", "pre_call", "success", 1.0, 0.5), "status"),
        (HookEvent("success", {}), "kind"),
        (Pick("g", frozenset(), 0, None, send), "group"),
        (Outcome("d", True, 0.1), "ok"),
        (Dispatch("completion", {}, "m", False, send, trio.CancelScope()), "body"),
        (Reply({}, None), "body"),
        (Chunks([b"{}"]), "payloads"),
        (StreamEnd(None, None), "usage"),
        (Failure(UpstreamError("x")), "error"),
    ]


@pytest.mark.parametrize("index", range(len(messages())))
async def test_a_message_cannot_be_changed(index: int) -> None:
    message, field = messages()[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, field, None)

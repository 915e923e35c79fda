"""Example user actor: append one JSON line per finished call to an audit file.

Attach with `[hooks] actors = ["audit_actor:audit_actor"]`; the file is `$GATEWAY_AUDIT_LOG`
(default `audit.jsonl`).  The gateway supervises it: a crash restarts it with backoff.
"""

from __future__ import annotations

import os

import orjson
import trio

from gateway_trio.channels.events import HookEvent


async def audit_actor(events: trio.MemoryReceiveChannel[HookEvent]) -> None:
    path = os.environ.get("GATEWAY_AUDIT_LOG", "audit.jsonl")
    async with await trio.open_file(path, "ab") as audit:
        async for event in events:
            if event.kind not in ("success", "failure"):
                continue
            record = event.payload["kwargs"]["standard_logging_object"]
            line = {
                "kind": event.kind,
                "call_id": record["call_id"],
                "model_group": record["model_group"],
                "status": record["status"],
                "tokens": record["prompt_tokens"] + record["completion_tokens"],
                "cost": record["cost"],
            }
            await audit.write(orjson.dumps(line) + b"\n")
            await audit.flush()

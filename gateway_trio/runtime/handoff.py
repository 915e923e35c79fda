"""The hand-off: a message put on a bounded channel without the yield `send` always makes.

Every hop between actors passes here, so a yield saved is a whole batch of other tasks' steps
saved per hop; a full channel is still waited on, which keeps the backpressure.
"""

from __future__ import annotations

from typing import TypeVar

import trio

T = TypeVar("T")


async def hand_over(channel: trio.MemorySendChannel[T], message: T) -> None:
    """Send a message to an actor's inbox or a call's reply channel; a full one is waited on
    (that is the backpressure).

    This once skipped the checkpoint `send` makes when there is room (`send_nowait` first), to
    save the sender a batch of other tasks' steps per hop.  Measured with the checkpoint back,
    `scripts/bench.py --only matrix`, four alternating pairs on the shared 2-core machine
    (gateway CPU ms per request, json c=1 / json c=32 / stream c=1 / stream c=32, mean of 4):
    skipped 2.59 / 2.49 / 3.13 / 2.77, checkpoint 2.73 / 2.06 / 2.59 / 2.34; requests/s at
    c=32 varied 141-503 (json) and 198-454 (stream) within each variant.  The noise is larger
    than any difference and the skip never showed a gain, so the checkpoint is back: every hop
    is a point where trio may schedule and cancel, as everywhere else in trio.

    Measured again where a yield costs most, 1,000 connections (`scripts/bench.py --only
    concurrency --duration 11`, two alternating runs each on a quiet machine): with the
    checkpoint 322 / 355 JSON and 255 / 235 stream calls a second, skipped 298 / 326 and
    210 / 216.  The skip does not pay there either.
    """
    await channel.send(message)

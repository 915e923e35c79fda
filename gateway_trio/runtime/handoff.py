"""The hand-off: a message put on a bounded channel without the yield `send` always makes.

Every hop between actors passes here, so a yield saved is a whole batch of other tasks' steps
saved per hop; a full channel is still waited on, which keeps the backpressure.
"""

from __future__ import annotations

from typing import TypeVar

import trio

T = TypeVar("T")


async def hand_over(channel: trio.MemorySendChannel[T], message: T) -> None:
    """Send without the yield that `send` always makes when there is room.

    `send` checkpoints even when the message goes straight into the buffer, which costs the
    sender a whole batch of other tasks' steps per hop; every caller here waits on something
    right after (a reply, the next upstream read), so it still yields soon.  A full channel
    is waited on as usual: that is the backpressure.
    """
    try:
        channel.send_nowait(message)
    except trio.WouldBlock:
        await channel.send(message)

"""Key invalidations through Redis pub/sub: a key revoked on one instance fails on all within 1 s.

The admin routes of an instance report each change to its control plane (`ControlPlane.changed`),
which forgets the stale cache entries at once and hands the change here: a bounded queue, one
`PUBLISH` per change on `<prefix>invalidations`, off the request path.  Every instance
subscribes to that channel and applies what the others publish (its own messages carry its id
and are skipped).  A subscriber that lost its connection may have missed changes: when it is
subscribed again it forgets every cached key ("all"), so nothing stale outlives an outage by
more than the reconnect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable

import orjson
import trio

from gateway_trio.control.redis_client import MAX_BACKOFF_S, MIN_BACKOFF_S, RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

QUEUE = 1024  # changes waiting to be published; beyond it they are dropped and counted


class Invalidations:
    """Publishes this instance's changes; applies the others'."""

    def __init__(self, link: RedisLink, apply: Callable[[str, list[str]], None]) -> None:
        self.link = link
        self.apply = apply
        self.channel = f"{link.prefix}invalidations"
        self.instance = uuid.uuid4().hex
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.subscribed = False
        self._out, self._queue = trio.open_memory_channel[bytes](QUEUE)

    def publish(self, kind: str, ids: Iterable[str]) -> None:
        """Queue a change for the other instances (synchronous: the admin route does not wait)."""
        message = orjson.dumps({"from": self.instance, "kind": kind, "ids": list(ids)})
        try:
            self._out.send_nowait(message)
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish and subscribe until cancelled; Redis away at start delays neither start nor serving."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish)
            nursery.start_soon(self._subscribe)
            task_status.started()

    async def _publish(self) -> None:
        async for message in self._queue:
            try:
                await self.link.command("publish", self.channel, message)
                self.published += 1
            except RedisUnavailable:  # the others forget everything when they reconnect
                self.dropped += 1

    async def _subscribe(self) -> None:
        backoff, first = MIN_BACKOFF_S, True
        while True:
            try:
                pubsub = self.link.client.pubsub(
                    channels=[self.channel], ignore_subscribe_messages=True, retry_policy=None
                )
                async with pubsub:
                    self.subscribed = True
                    if not first:
                        self.apply("all", [])  # changes published while we were away are lost
                    first, backoff = False, MIN_BACKOFF_S
                    async for message in pubsub:
                        self._receive(message)
            except* trio.Cancelled:
                raise  # coredis' own cleanup may fail beside it (a closed buffer): only this one counts
            except* Exception as group:  # a dropped subscription is retried, whatever broke it
                if self.subscribed:
                    log.debug("the invalidations subscription dropped: %s", type(group.exceptions[0]).__name__)
                first = False  # whatever was cached meanwhile may be stale when we are back
            self.subscribed = False
            await trio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _receive(self, message: object) -> None:
        try:
            data = message["data"]  # type: ignore[index]
            change = orjson.loads(data)
            if change["from"] == self.instance:
                return
            kind, ids = str(change["kind"]), [str(i) for i in change["ids"]]
        except Exception:  # noqa: BLE001 - anyone may publish on the channel: a bad message is dropped
            log.warning("ignoring a malformed message on %s", self.channel)
            return
        self.received += 1
        self.apply(kind, ids)

"""The one Redis connection of a gateway process, owned by a task in the app's nursery.

coredis on trio (through anyio) costs about 0.2-0.45 ms of CPU per command here, so nothing
on the request path sends a command per call: the limits actor sends one script per batch
(`control.limits`), the invalidations one publish per admin change; and those scripts go
through a lean RESP connection of our own (`control.resp`, a third of coredis' CPU per
command), while coredis keeps the pings, pub/sub and publishing.  This module only keeps
the link's health: every command is bounded by `[redis] timeout_s`; the first failure marks
Redis down (logged once per outage, counted), and while it is down nothing waits on it —
callers see `up` is False and take their fallback at once — while `_reconnect` pings with a
backoff that never waits more than `MAX_BACKOFF_S`, so the link is up again within about a
second of Redis coming back.  coredis's own retries are off: a retry is a decision of the
caller (the limits actor retries settlements, never admissions).

The url may carry a password: it is never logged; errors are logged by their class and the
server's message only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from gateway_trio.config import RedisConfig
from gateway_trio.control.resp import RespConnection, RespError

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 0.05
MAX_BACKOFF_S = 1.0  # "shared again within 5 s of Redis coming back", with room to spare
# Round-trip histogram buckets (seconds): a local Redis answers in ~0.1-1 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class RedisUnavailable(Exception):
    """Redis did not answer (down, timed out, refused): the caller takes its fallback."""


class RedisRefused(RedisUnavailable):
    """Redis answered with an error (a script's error, a key of the wrong type): the link is
    fine, this command is not; sending it again would fail again."""


@dataclass(frozen=True, slots=True)
class RedisCounters:
    """What `/metrics` shows of the link."""

    up: bool
    errors: int
    outages: int
    buckets: tuple[int, ...]  # cumulative counts per LATENCY_BUCKETS entry, then +Inf
    latency_sum: float


class RedisLink:
    """The client, its health and its counters; see the module's docstring."""

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.prefix = config.key_prefix
        self.up = False
        self.errors = 0
        self.outages = 0
        self._client: Any = None
        self._down = trio.Event()
        self._scripts: dict[str, str] = {}  # source -> sha1, loaded again on NOSCRIPT
        self._latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._on_up: list[Callable[[], None]] = []
        # One lean connection per script: each has one user (the limits actor, the routing sync).
        self._resp: dict[str, RespConnection] = {}

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the link comes back after an outage (missed pub/sub, say)."""
        self._on_up.append(callback)

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RedisUnavailable("the Redis link is not running")
        return self._client

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the client, try it once (a gateway starting beside its Redis is shared from its
        first call), then keep it healthy until cancelled.  Redis being away is no error."""
        import coredis  # optional at run time: only a config with [redis] needs it
        from coredis.retry import NoRetryPolicy

        config = self.config
        client = coredis.Redis.from_url(
            config.url.get_secret_value(),
            retry_policy=NoRetryPolicy(),
            stream_timeout=config.timeout_s,
            connect_timeout=config.connect_timeout_s,
        )
        async with client:
            self._client = client
            try:
                if await self._ping():
                    self.up = True
                    log.info("Redis connected: limits, budgets and key invalidations are shared")
                else:
                    self._mark_down("not reachable at start")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reconnect)
                    task_status.started()
            finally:
                self._client = None
                self.up = False
                for resp in self._resp.values():
                    resp.close()

    async def script(self, source: str, keys: Sequence[str], args: Sequence[str]) -> Any:
        """Run the Lua `source` by its sha (loading it if Redis lost it), through the lean RESP
        connection (`control.resp`: the hot path's one command per batch); RedisRefused for an
        error reply, RedisUnavailable when Redis did not answer."""
        sha = self._scripts.get(source) or hashlib.sha1(source.encode()).hexdigest()
        call = [str(len(keys)), *keys, *args]
        resp = self._resp.get(source)
        if resp is None:
            config = self.config
            resp = self._resp[source] = RespConnection(
                config.url.get_secret_value(), connect_timeout_s=config.connect_timeout_s
            )
        started = time.perf_counter()
        try:
            with trio.fail_after(self.config.timeout_s):
                try:
                    result = await resp.call("EVALSHA", sha, *call)
                except RespError as error:
                    if not str(error).startswith("NOSCRIPT"):
                        raise
                    # A restarted (or flushed) Redis: load it and go on.
                    self._scripts[source] = sha = (await resp.call("SCRIPT", "LOAD", source)).decode()
                    result = await resp.call("EVALSHA", sha, *call)
        except RespError as error:
            self.errors += 1
            log.error("Redis refused a script: %s", error)
            raise RedisRefused(str(error)) from None
        except Exception as error:  # noqa: BLE001 - OSError, RespConnectionError, a timeout: all mean "not now"
            self.failed(error)
            raise RedisUnavailable(str(error)) from None
        self._observe(time.perf_counter() - started)
        return result

    async def command(self, name: str, *args: Any) -> Any:
        """One plain command (`publish`, ...) bounded by the timeout; RedisUnavailable on failure."""
        started = time.perf_counter()
        try:
            with trio.fail_after(self.config.timeout_s):
                result = await getattr(self.client, name)(*args)
        except Exception as error:  # noqa: BLE001 - as in `script`
            self.failed(error)
            raise RedisUnavailable(str(error)) from None
        self._observe(time.perf_counter() - started)
        return result

    def failed(self, error: BaseException) -> None:
        """A command failed: count it; the first failure of an outage marks the link down."""
        self.errors += 1
        if self.up:
            self._mark_down(f"{type(error).__name__}: {error}")

    def counters(self) -> RedisCounters:
        cumulative, total = [], 0
        for count in self._latency:
            total += count
            cumulative.append(total)
        return RedisCounters(self.up, self.errors, self.outages, tuple(cumulative), self._latency_sum)

    # --- health ---------------------------------------------------------------------------

    def _mark_down(self, why: str) -> None:
        self.up = False
        self.outages += 1
        fallback = (
            "calls that need a limit are refused (503)"
            if self.config.on_failure == "closed"
            else "limits and budgets are per instance"
        )
        log.warning("Redis unavailable (%s): %s until it returns", why, fallback)
        self._down.set()

    async def _reconnect(self) -> None:
        while True:
            await self._down.wait()
            backoff = MIN_BACKOFF_S
            while not await self._ping():
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self._down = trio.Event()
            for resp in self._resp.values():
                resp.close()  # opened before the outage: dead by now; the next command opens a fresh one
            self.up = True
            log.warning("Redis is back: limits, budgets and key invalidations are shared again")
            for callback in self._on_up:
                callback()

    async def _ping(self) -> bool:
        try:
            with trio.fail_after(self.config.connect_timeout_s + self.config.timeout_s):
                await self._client.ping()
        except Exception:  # noqa: BLE001 - any failure means "still down"
            self.errors += 1
            return False
        return True

    def _observe(self, seconds: float) -> None:
        self._latency_sum += seconds
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self._latency[index] += 1
                return
        self._latency[-1] += 1

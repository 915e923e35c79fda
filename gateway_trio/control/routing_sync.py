"""Deployment loads shared through Redis: rpm/tpm counters, calls in flight, failures, cooldowns.

The router decides every pick from its own memory and never waits on Redis (`actors.router`);
this task keeps that memory in step with the other instances, every `SYNC_INTERVAL_S`:
it asks the router (through its inbox) for what this instance did since the last sync, adds
that to Redis in one script call for all deployments, and hands the router the others' share
for the next picks.  So a deployment's `rpm`/`tpm`, `max_parallel_requests`, the failures that
count towards `allowed_fails` and the least-busy / usage-based strategies see every instance's
calls, a fraction of a second late; a cooldown set by one instance cools the deployment on all.
Counters are per wall-clock minute (`<prefix>{router}:use:<id>:<minute>`), calls in flight one
field per instance, dropped when an instance stops refreshing it (crashed).  With Redis away
the others' share is taken as zero: each instance routes on its own counts until it returns.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

import orjson
import trio

from gateway_trio.actors.router import RouterActor
from gateway_trio.channels.messages import LocalLoad, SharedLoad
from gateway_trio.control.redis_client import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 0.2
FRESH_MS = 3000  # an instance's calls in flight count while it refreshed them this recently
TAG = "{router}"

ROUTING_SCRIPT = r"""
local b = cjson.decode(ARGV[1])
local out = {}
for i, d in ipairs(b.deps) do
  local use, fail, cool, fl = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  if d.q > 0 then redis.call('HINCRBY', use, 'q', d.q) end
  if d.t > 0 then redis.call('HINCRBY', use, 't', d.t) end
  redis.call('PEXPIRE', use, 120000)
  if d.f > 0 then
    redis.call('INCRBY', fail, d.f)
    redis.call('PEXPIRE', fail, 120000)
  end
  if d.c > 0 then redis.call('SET', cool, '1', 'PX', math.floor(d.c * 1000)) end
  redis.call('HSET', fl, b.instance, string.format('%d:%d', d.fl, b.now_ms))
  redis.call('PEXPIRE', fl, 60000)
  local others = 0
  local all = redis.call('HGETALL', fl)
  for j = 1, #all, 2 do
    if all[j] ~= b.instance then
      local count, at = string.match(all[j + 1], '^(%-?%d+):(%d+)$')
      if count and b.now_ms - tonumber(at) <= b.fresh_ms then
        others = others + tonumber(count)
      else
        redis.call('HDEL', fl, all[j])
      end
    end
  end
  local u = redis.call('HMGET', use, 'q', 't')
  out[i] = {tonumber(u[1] or '0'), tonumber(u[2] or '0'), tonumber(redis.call('GET', fail) or '0'),
            redis.call('PTTL', cool), others}
end
return cjson.encode(out)
"""


class RoutingSync:
    """The task that shares the router's deployment loads; see the module's docstring."""

    def __init__(self, link: RedisLink, router: RouterActor, *, interval_s: float = SYNC_INTERVAL_S) -> None:
        self.link = link
        self.router = router
        self.interval_s = interval_s
        self.instance = uuid.uuid4().hex[:12]
        self.base = f"{link.prefix}{TAG}:"
        self.syncs = 0
        self._minute = -1
        # This instance's own part of the shared minute's counters: the others' = total - ours.
        self._own: dict[str, list[int]] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        ids = list(self.router.loads)
        nothing = {deployment_id: SharedLoad() for deployment_id in ids}
        shared = nothing
        while True:
            await trio.sleep(self.interval_s)
            local = await self.router.exchange(shared)
            if not self.link.up:
                shared = nothing
                continue
            try:
                shared = await self._sync(local)
                self.syncs += 1
            except Exception:  # noqa: BLE001 - Redis away, or an answer we cannot read
                shared = nothing  # counts made meanwhile are lost to the others: they are routing hints

    async def _sync(self, local: dict[str, LocalLoad]) -> dict[str, SharedLoad]:
        now = time.time()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._own = minute, {}
        keys: list[str] = []
        deps = []
        ids = list(local)
        for deployment_id in ids:
            mine = local[deployment_id]
            own = self._own.setdefault(deployment_id, [0, 0, 0])
            own[0] += mine.requests
            own[1] += mine.tokens
            own[2] += mine.failures
            keys.extend(self._keys(deployment_id, minute))
            deps.append(
                {
                    "q": mine.requests,
                    "t": mine.tokens,
                    "f": mine.failures,
                    "c": mine.cooled_for_s,
                    "fl": max(mine.inflight, 0),
                }
            )
        args = orjson.dumps({"instance": self.instance, "now_ms": int(now * 1000), "fresh_ms": FRESH_MS, "deps": deps})
        answers = orjson.loads(await self.link.script(ROUTING_SCRIPT, keys, [args.decode()]))
        shared = {}
        for deployment_id, (requests, tokens, failures, cool_ms, inflight) in zip(ids, answers):
            own = self._own[deployment_id]
            shared[deployment_id] = SharedLoad(
                inflight=int(inflight),
                requests=max(int(requests) - own[0], 0),
                tokens=max(int(tokens) - own[1], 0),
                failures=max(int(failures) - own[2], 0),
                cooled_for_s=max(cool_ms, 0) / 1000,
            )
        return shared

    def _keys(self, deployment_id: str, minute: int) -> Iterable[str]:
        base = self.base
        return (
            f"{base}use:{deployment_id}:{minute}",
            f"{base}fail:{deployment_id}:{minute}",
            f"{base}cool:{deployment_id}",
            f"{base}fl:{deployment_id}",
        )

"""The shared ledger (Lua on a real Redis) decides exactly as the local `Ledger` does, atomically
across instances, in one round trip per batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import trio
from redis_server import RedisServer, running_redis

from gateway_trio.config import RedisConfig
from gateway_trio.control.admission import Admitter, Asked
from gateway_trio.control.durations import add_months
from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.ledger import Claim, Ledger, Verdict
from gateway_trio.control.limits import LimitsActor, LimitsUnavailable
from gateway_trio.control.redis_client import RedisLink
from gateway_trio.errors import LimitRefused


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


T0 = datetime(2026, 1, 31, 10, 0, tzinfo=UTC).timestamp()


@asynccontextmanager
async def shared(server: RedisServer, *, on_failure: str = "local", prefix: str = "t:") -> AsyncIterator[LimitsActor]:
    link = RedisLink(RedisConfig(url=server.url, key_prefix=prefix, on_failure=on_failure, timeout_s=2))
    actor = LimitsActor(link, Ledger(lambda: T0), lease_s=600)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        await nursery.start(actor.run)
        yield actor
        nursery.cancel_scope.cancel()


def outcome(claims: tuple[Claim, ...], verdict: Verdict, worst: WorstCase, now: float) -> tuple:
    """What a client sees of a verdict: admitted with headers, or the refusal's class, text and wait."""
    try:
        admission = Admitter.conclude(Asked("g", claims, worst, now), verdict)
    except LimitRefused as refusal:
        return ("refused", type(refusal).__name__, refusal.message, refusal.retry_after, dict(refusal.limit_headers))
    return (
        "admitted",
        dict(admission.headers),
        [(r.level, r.budget_reset_at, r.previous_reset_at) for r in admission.resets],
    )


KEY = Claim(
    "key",
    "tok",
    "key sk-...abcd",
    spend=0.5,
    max_budget=1.0,
    budget_duration="1mo",
    rpm_limit=5,
    tpm_limit=400,
    max_parallel_requests=3,
)
TEAM = Claim("team", "research", "team 'research'", spend=0.0, max_budget=10.0, budget_duration="1d", tpm_limit=1000)
SMALL = WorstCase(prompt_tokens=20, tokens=100, cost=0.1)
# (seconds after T0, worst case, then: settle(cost, tokens) | release | keep it in flight |
# free: release the first held, settle the others)
SCRIPT = [
    (0.0, SMALL, ("settle", 0.05, 60)),
    (0.5, SMALL, ("keep",)),
    (1.2, SMALL, ("keep",)),
    (1.9, SMALL, ("keep",)),
    (1.95, SMALL, ("keep",)),  # parallel limit 3: refused
    (2.0, WorstCase(prompt_tokens=0, tokens=0, cost=0.0), ("free",)),  # parallel again; frees the others
    (2.5, WorstCase(prompt_tokens=500, tokens=600, cost=0.01), ("keep",)),  # tpm refusal
    (3.0, SMALL, ("settle", 0.1, 50)),  # the 5th request of the window
    (3.5, SMALL, ("settle", 0.1, 50)),  # rpm 5: refused
    (30.0, SMALL, ("release",)),  # still refused
    (62.5, SMALL, ("settle", 0.2, 40)),  # the first two seconds left the window
    (63.0, WorstCase(prompt_tokens=10, tokens=20, cost=0.5), ("settle", 0.5, 20)),  # budget refusal
    (63.5, WorstCase(prompt_tokens=10, tokens=20, cost=0.09), ("settle", 0.09, 20)),  # just fits
    (64.0, SMALL, ("release",)),  # spent: refused until the month's reset
    (29 * 86400.0, SMALL, ("settle", 0.1, 100)),  # Feb 28: the month's budget reset, the team's day too
]


async def test_shared_ledger_decides_as_the_local_one(redis_server):
    claims = (KEY, TEAM)
    local = Ledger(lambda: T0)
    seen: list[str] = []
    async with shared(redis_server) as actor:
        held: list[tuple] = []
        for offset, worst, then in SCRIPT:
            now = T0 + offset
            mine = local.admit(claims, worst, now)
            theirs = await actor.admit(claims, worst, now)
            told = outcome(claims, theirs, worst, now)
            assert told == outcome(claims, mine, worst, now), offset
            seen.append(told[1] if told[0] == "refused" else "admitted")
            if told[0] == "admitted":
                last_resets = told[2]
                if offset == 0.0:
                    first_resets = told[2]
            if then[0] == "free":
                for index, (a, b) in enumerate(held):
                    if index == 0:
                        a.release()
                        b.release()
                    else:
                        a.settle(0.02, 30)
                        b.settle(0.02, 30)
                held.clear()
            if mine.reservation is None:
                continue
            if then[0] == "settle":
                mine.reservation.settle(then[1], then[2])
                theirs.reservation.settle(then[1], then[2])
            elif then[0] in ("release", "free"):
                mine.reservation.release()
                theirs.reservation.release()
            else:
                held.append((mine.reservation, theirs.reservation))
            await actor_idle(actor)
        assert actor.shared_admissions == len(SCRIPT) and actor.local_admissions == 0
    assert seen == ["admitted"] * 4 + ["RateLimitExceeded"] * 3 + ["admitted"] + ["RateLimitExceeded"] * 2 + [
        "admitted",
        "BudgetExceeded",
        "admitted",
        "BudgetExceeded",
        "admitted",
    ]
    # The first call started both budget periods; the last one reset them on the calendar's grid:
    # Jan 31 + 1 month is Feb 28 (the script's own calendar arithmetic), then Mar 28.
    feb_28, mar_28 = add_months(T0, 1), add_months(add_months(T0, 1), 1)
    assert ("key", feb_28, None) in first_resets and ("team", T0 + 86400, None) in first_resets
    assert ("key", mar_28, feb_28) in last_resets and ("team", T0 + 29 * 86400 + 86400, T0 + 86400) in last_resets


async def actor_idle(actor: LimitsActor) -> None:
    with trio.fail_after(5):
        while actor._settles or actor._admits:
            await trio.sleep(0.005)
        await trio.sleep(0.01)


async def test_atomic_across_instances(redis_server):
    """Budget for 10 worst-case calls, 50 at once through two instances: at most 10 admitted."""
    claims = (Claim("key", "shared", "key sk-...0000", spend=0.0, max_budget=1.0),)
    worst = WorstCase(prompt_tokens=10, tokens=20, cost=0.1)
    admitted: list[object] = []
    async with shared(redis_server) as a, shared(redis_server) as b:

        async def one(actor: LimitsActor) -> None:
            verdict = await actor.admit(claims, worst, T0)
            if verdict.reservation is not None:
                admitted.append(verdict.reservation)

        async with trio.open_nursery() as nursery:
            for index in range(50):
                nursery.start_soon(one, a if index % 2 else b)
        assert len(admitted) == 10
        # One round trip per batch, not per call.
        assert a.batches + b.batches < 50
        assert a.shared_admissions + b.shared_admissions == 50


async def test_settlement_counts_once_and_frees_room(redis_server):
    claims = (Claim("key", "once", "key sk-...1111", max_parallel_requests=1, max_budget=1.0),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.4)
    async with shared(redis_server) as actor:
        first = await actor.admit(claims, worst, T0)
        assert first.reservation is not None
        assert (await actor.admit(claims, worst, T0)).refusal is not None  # parallel 1
        op = first.reservation._op(0.3, None)
        first.reservation.settle(0.3)
        actor.submit(op)  # the same settlement again (a batch retried after a lost answer)
        await actor_idle(actor)
        second = await actor.admit(claims, worst, T0 + 1)
        assert second.reservation is not None
        assert second.accounts[0].spend == pytest.approx(0.3)  # counted once, not 0.6


async def test_a_cancelled_admission_leaks_nothing(redis_server):
    claims = (Claim("key", "gone", "key sk-...2222", max_parallel_requests=1),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.0)
    async with shared(redis_server) as actor:
        for _ in range(20):
            with trio.move_on_after(0):  # the client leaves while its admission is out
                await actor.admit(claims, worst, T0)
        await actor_idle(actor)
        verdict = await actor.admit(claims, worst, T0)
        assert verdict.reservation is not None, verdict.refusal


async def test_redis_away_local_or_closed(redis_server):
    claims = (Claim("key", "away", "key sk-...3333", rpm_limit=100),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.0)
    async with shared(redis_server) as local, shared(redis_server, on_failure="closed") as closed:
        assert (await local.admit(claims, worst, T0)).reservation is not None
        redis_server.stop()
        verdict = await local.admit(claims, worst, T0)  # this batch fails: the local ledger decides
        assert verdict.reservation is not None and local.local_admissions == 1
        assert not local.link.up and local.link.errors >= 1
        with pytest.raises(LimitsUnavailable) as refused:
            await closed.admit(claims, worst, T0)
        assert refused.value.status == 503 and refused.value.retry_after
        redis_server.start()
        with trio.fail_after(5):
            while not (local.link.up and closed.link.up):
                await trio.sleep(0.05)
        before = local.shared_admissions
        assert (await local.admit(claims, worst, T0)).reservation is not None
        assert local.shared_admissions == before + 1
        assert local.link.outages == 1  # the connection from before the outage was not tried again
        assert (await closed.admit(claims, worst, T0)).reservation is not None


async def test_flush_sends_the_last_settlements(redis_server):
    claims = (Claim("key", "last", "key sk-...4444", max_parallel_requests=1),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.0)
    async with shared(redis_server) as actor:
        held = await actor.admit(claims, worst, T0)
        held.reservation.settle(0.0, 2)
        await actor.flush(2.0)  # sooner than the linger would send it
        assert not actor._settles
    async with shared(redis_server) as other:  # another instance: the slot is free
        assert (await other.admit(claims, worst, T0)).reservation is not None


async def test_a_refused_script_falls_back_without_marking_redis_down(redis_server):
    claims = (Claim("key", "wrongtype", "key sk-...5555", rpm_limit=10),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.0)
    async with shared(redis_server, prefix="wt:") as actor:
        # Someone else's value where the account's hash goes: Redis refuses the script (WRONGTYPE).
        await actor.link.command("set", "wt:{ledger}:key:wrongtype", "not a hash")
        verdict = await actor.admit(claims, worst, T0)
        assert verdict.reservation is not None and actor.local_admissions == 1  # served, per instance
        assert actor.link.up and actor.link.errors >= 1


async def test_an_answer_that_cannot_be_read_is_decided_locally_and_the_actor_goes_on(redis_server, monkeypatch):
    from gateway_trio.control import limits

    claims = (Claim("key", "odd", "key sk-...6666", rpm_limit=10),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.0)
    async with shared(redis_server) as actor:
        real = limits.verdict_of
        monkeypatch.setattr(limits, "verdict_of", lambda *args: (_ for _ in ()).throw(ValueError("odd answer")))
        assert (await actor.admit(claims, worst, T0)).reservation is not None
        assert actor.local_admissions == 1
        monkeypatch.setattr(limits, "verdict_of", real)
        assert (await actor.admit(claims, worst, T0)).reservation is not None
        assert actor.shared_admissions == 1


async def test_spend_settled_locally_during_an_outage_reaches_the_shared_budget(redis_server):
    claims = (Claim("key", "owed", "key sk-...7777", max_budget=1.0),)
    worst = WorstCase(prompt_tokens=1, tokens=2, cost=0.1)
    async with shared(redis_server) as actor:
        first = await actor.admit(claims, worst, T0)  # the account now lives in Redis
        first.reservation.settle(0.1)
        await actor_idle(actor)
        # Redis unreachable without losing its data: the link is told it is down.
        actor.link.failed(OSError("network partition"))
        during = await actor.admit(claims, worst, T0)
        assert actor.local_admissions == 1
        during.reservation.settle(0.25)
        with trio.fail_after(5):
            while not actor.link.up:  # the probe finds it answering
                await trio.sleep(0.02)
        await actor_idle(actor)
        after = await actor.admit(claims, worst, T0 + 1)
        assert after.accounts[0].spend == pytest.approx(0.35)  # 0.1 before, 0.25 owed from the outage

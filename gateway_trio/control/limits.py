"""The limits actor: admissions and settlements of every call, batched into one Redis round trip.

A call's admission waits here (a slot in a queue, and an event) while the actor sends what
waits, all of it, as one `LEDGER_SCRIPT` call: settlements first (what they free counts for
the admissions behind them), then admissions, each checked and reserved atomically by Redis.
One batch is in flight at a time, so the calls that arrive during a round trip form the next
batch: under load Redis costs one round trip (and coredis one command's CPU) per batch, not
per call.  Settlements never wait: `SharedReservation.settle` appends to a queue; they go out
with the next admissions, or after `SETTLE_LINGER_S` if none come, so that sequential calls
cost one round trip each (this call's admission carries the last one's settlement), not two.

Redis away (the link says so, or this batch failed): with `on_failure = "local"` admissions
are decided by the local `Ledger` (per-instance limits), with `"closed"` refused with 503;
settlements wait in a bounded queue and go out when Redis returns (the script counts each
once, see `control.ledger_script`).  Reservations made locally settle locally, and what they
cost is added to the shared accounts when Redis is back.

A caller cancelled while its admission is out (its client left) never leaks the reservation:
whichever of the caller and the actor comes second releases it.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio

from gateway_trio.control.estimate import WorstCase
from gateway_trio.control.ledger import Claim, Hold, Ledger, Verdict
from gateway_trio.control.ledger_script import LEDGER_SCRIPT
from gateway_trio.control.redis_client import RedisLink, RedisRefused, RedisUnavailable
from gateway_trio.control.shared_ledger import AccountView, BatchBuilder, EncodedClaims, Encoder, verdict_of
from gateway_trio.errors import GatewayError

log = logging.getLogger(__name__)

MAX_BATCH = 512  # ops per script call: bounds one script's run time on Redis (a few ms)
MAX_PENDING_SETTLES = 100_000  # while Redis is away; beyond it they are dropped and counted
SETTLE_LINGER_S = 0.02  # how long a settlement waits for an admission to travel with
ACCOUNT_TTL_MS = 24 * 3600 * 1000  # an idle account is forgotten, then seeded from its record


class LimitsUnavailable(GatewayError):
    """`on_failure = "closed"` and Redis away: a call that needs a limit is not served."""

    status = 503
    error_type = "service_unavailable_error"
    anthropic_type = "overloaded_error"


@dataclass(slots=True)
class _Pending:
    encoded: EncodedClaims
    worst: WorstCase
    now: float
    done: trio.Event = field(default_factory=trio.Event)
    verdict: Verdict | None = None
    error: GatewayError | None = None
    abandoned: bool = False


class LimitsActor:
    """Owns the queues of admissions and settlements; see the module's docstring."""

    def __init__(self, link: RedisLink, local: Ledger, *, lease_s: float) -> None:
        self.link = link
        self.local = local
        self.closed = link.config.on_failure == "closed"
        self.lease_ms = int(lease_s * 1000)
        self.encoder = Encoder(link.prefix)
        self.batches = 0  # script calls sent (tests and the bench read them)
        self.shared_admissions = 0
        self.local_admissions = 0
        self.settles_dropped = 0
        self._admits: deque[_Pending] = deque()
        self._settles: deque[dict[str, Any]] = deque()
        self._bell = trio.Event()
        self._sending = False  # a batch is out: what it holds is not sent until it answers
        # (level, entity) -> (unix seconds, the account as the script last left it): what
        # /metrics shows of a shared account (control/headroom.py), bounded like the ledger.
        self.seen: OrderedDict[tuple[str, str], tuple[float, AccountView]] = OrderedDict()
        self.max_seen = local.max_accounts

    # --- what callers use -------------------------------------------------------------------

    async def admit(self, claims: tuple[Claim, ...], worst: WorstCase, now: float) -> Verdict:
        """The verdict of Redis (or of the fallback when it is away) on one call's claims."""
        if not self.link.up:
            return self._fallback(claims, worst, now)
        pending = _Pending(self.encoder.encode(claims), worst, now)
        self._admits.append(pending)
        self._bell.set()
        taken = False
        try:
            await pending.done.wait()
            taken = True
        finally:
            if not taken:  # cancelled: the client left
                pending.abandoned = True
                if pending.verdict is not None and pending.verdict.reservation is not None:
                    pending.verdict.reservation.release()
        if pending.error is not None:
            raise pending.error
        assert pending.verdict is not None
        return pending.verdict

    def submit(self, op: dict[str, Any]) -> None:
        """A settlement or release (from `SharedReservation`): sent with the next batch."""
        if len(self._settles) >= MAX_PENDING_SETTLES:
            self.settles_dropped += 1
            return
        if not self._settles:
            self._bell.set()  # the actor lingers a moment for an admission to take it along
        self._settles.append(op)

    async def flush(self, timeout_s: float) -> None:
        """At shutdown: send the settlements still waiting, so this instance's last calls hold
        nothing in Redis (given up after `timeout_s`, or at once while Redis is away)."""
        with trio.move_on_after(timeout_s):
            while (self._settles or self._sending) and self.link.up:
                self._bell.set()
                await trio.sleep(0.005)

    def _ring(self) -> None:
        self._bell.set()  # the bell of now: each round of the actor's loop hangs a new one

    # --- the actor ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.link.on_reconnect(self._ring)  # settlements kept through an outage go out now
        task_status.started()
        while True:
            await self._bell.wait()
            self._bell = trio.Event()
            if not self._admits and self._settles and self.link.up:
                with trio.move_on_after(SETTLE_LINGER_S):
                    await self._bell.wait()  # an admission rings: both go in one round trip
                self._bell = trio.Event()
            while self._admits or (self._settles and self.link.up):
                await self._send_batch()

    async def _send_batch(self) -> None:
        admits, settles = self._admits, self._settles
        if not self.link.up:  # went down meanwhile: admissions take the fallback, settlements wait
            while admits:
                pending = admits.popleft()
                if not pending.abandoned:
                    self._decide_locally(pending)
            return
        batch = BatchBuilder()
        sent_settles: list[dict[str, Any]] = []
        while settles and len(batch) < MAX_BATCH:
            op = settles.popleft()
            sent_settles.append(op)
            batch.settle(op)
        sent: list[tuple[_Pending, str]] = []
        while admits and len(batch) < MAX_BATCH:
            pending = admits.popleft()
            if pending.abandoned:
                continue
            key = self.encoder.reservation_key()
            batch.admit(pending.encoded, pending.worst, key)
            sent.append((pending, key))
        if not len(batch):
            return
        now = max((p.now for p, _ in sent), default=self.local.clock())
        args = orjson.dumps({"now": now, "ttl": ACCOUNT_TTL_MS, "lease": self.lease_ms, "ops": batch.ops})
        self.batches += 1
        self._sending = True
        try:
            raw = await self.link.script(LEDGER_SCRIPT, batch.keys, [args.decode()])
            answers = orjson.loads(raw)
        except (RedisUnavailable, orjson.JSONDecodeError) as error:
            if not isinstance(error, RedisUnavailable):
                log.error("Redis answered the ledger script with something that is not JSON")
            if not isinstance(error, RedisUnavailable) or isinstance(error, RedisRefused):  # never retried
                self.settles_dropped += len(sent_settles)
            else:
                settles.extendleft(reversed(sent_settles))  # the script counts each settlement once
            for pending, _ in sent:
                if not pending.abandoned:
                    self._decide_locally(pending)
            return
        finally:
            self._sending = False
        offset = len(sent_settles)
        for position, (pending, key) in enumerate(sent):
            try:
                verdict = verdict_of(answers[offset + position], pending.encoded, pending.worst, now, key, self.submit)
            except Exception:  # an answer we cannot read must not stop the actor
                log.exception("could not read the ledger script's answer; deciding this call locally")
                if not pending.abandoned:
                    self._decide_locally(pending)
                continue
            self.shared_admissions += 1
            self._remember(pending.encoded.claims, verdict, now)
            self._fill(pending, verdict)

    def _remember(self, claims: tuple[Claim, ...], verdict: Verdict, now: float) -> None:
        seen = self.seen
        for claim, view in zip(claims, verdict.accounts):
            key = (claim.level, claim.entity)
            seen[key] = (now, view)  # type: ignore[assignment]
            seen.move_to_end(key)
        while len(seen) > self.max_seen:
            seen.popitem(last=False)

    def _decide_locally(self, pending: _Pending) -> None:
        try:
            verdict = self._fallback(pending.encoded.claims, pending.worst, pending.now)
        except LimitsUnavailable as error:
            pending.error = error
            pending.done.set()
            return
        self._fill(pending, verdict)

    def _fill(self, pending: _Pending, verdict: Verdict) -> None:
        if pending.abandoned:  # the caller is gone: nobody will settle it
            if verdict.reservation is not None:
                verdict.reservation.release()
            return
        pending.verdict = verdict
        pending.done.set()

    def _fallback(self, claims: tuple[Claim, ...], worst: WorstCase, now: float) -> Verdict:
        if self.closed:
            raise LimitsUnavailable(
                "the shared limits store (Redis) is unavailable; try again shortly",
                code="limits_unavailable",
                retry_after=1,
            )
        self.local_admissions += 1
        verdict = self.local.admit(claims, worst, now)
        if verdict.reservation is not None:
            verdict.reservation = _Owed(verdict.reservation, self, self.encoder.encode(claims).keys)
        return verdict

    def owe(self, account_keys: tuple[str, ...], cost: float) -> None:
        """Spend settled locally while Redis was away: added to its accounts once it is back."""
        self.submit({"o": "add", "a": account_keys, "real": cost})


class _Owed:
    """A local reservation made while Redis was away: settles locally, and what it cost is
    owed to the shared accounts (so Redis's budgets count the outage's spend too)."""

    __slots__ = ("_actor", "_keys", "_local")

    def __init__(self, local: Hold, actor: LimitsActor, keys: tuple[str, ...]) -> None:
        self._local, self._actor, self._keys = local, actor, keys

    def settle(self, cost: float | None, tokens: int | None = None) -> None:
        self._local.settle(cost, tokens)
        if cost is not None and math.isfinite(cost) and cost > 0:
            self._actor.owe(self._keys, cost)

    def release(self) -> None:
        self._local.release()

"""The control plane at run time: who a key is, whether its call may go, and what it cost.

`ControlPlane` joins the pieces: the store (the database), the key cache in front of it, the
ledger of budgets and limits, and the admitter that decides each call.  A call of a virtual key
costs, after the key's first call, two dictionary lookups and the ledger's arithmetic: no query.

Lookups that miss the cache go to the store once per key however many calls wait on it
(`_single_flight`): a thousand calls of a key arriving together after a restart, or a flood of
one bad key, make one query.  A flood of *different* bad keys would still make one query each,
so the plane also holds the set of every key's hash (`_known`, a few dozen bytes a key, read at
start and again every cache TTL): a hash outside it is refused without a query.  A key made a
moment ago by another worker is not in it yet; for those the store is asked at a bounded rate
(`UNKNOWN_READS_PER_S`), so a flood costs a handful of queries a second, never one each.  Budget resets found at admission are written back by the
plane's own task (`run`), off the request path, through a bounded queue; a reset is a
compare-and-set in the store, so two workers resetting at once reset once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import trio

from gateway_trio.auth import Authenticator, bearer_token, hash_key
from gateway_trio.config import GatewayConfig
from gateway_trio.control.admission import Admission, Admitter
from gateway_trio.control.estimate import PriceBook
from gateway_trio.control.invalidations import Invalidations
from gateway_trio.control.keycache import KeyCache
from gateway_trio.control.ledger import BudgetReset, Ledger
from gateway_trio.control.limits import LimitsActor
from gateway_trio.control.reconcile import reconcile
from gateway_trio.control.records import EndUserRecord, KeyRecord, Tenant
from gateway_trio.control.store import ControlStore, DatabaseUnavailable, Store
from gateway_trio.control.tenants import TenantAuths
from gateway_trio.errors import AuthError, Forbidden
from gateway_trio.hooks import UserAPIKeyAuth
from gateway_trio.runtime import turns

log = logging.getLogger(__name__)

V = TypeVar("V")

UNKNOWN_READS_PER_S = 10.0  # store reads for hashes outside the known set (see the docstring)
UNKNOWN_READS_BURST = 20.0
RESET_QUEUE = 1024  # budget resets waiting to be written; beyond it they are dropped and counted
# Admission level -> the store's table and how the ledger names the entity.
_RESET_TABLES = {"key": "keys", "team": "teams", "user": "users", "end_user": "end_users", "key_model": "key_model_spend"}


class ControlPlane:
    """Keys, their tenants and admission, for one gateway process."""

    def __init__(
        self,
        authenticator: Authenticator,
        prices: PriceBook,
        *,
        resolve: Callable[[str], str | None] | None = None,
        cache_ttl_s: float = 30.0,
    ) -> None:
        self.authenticator = authenticator
        self._store: Store | None = None
        self.keys: KeyCache[Tenant] = KeyCache(ttl_s=cache_ttl_s)
        self.end_users: KeyCache[EndUserRecord] = KeyCache(ttl_s=cache_ttl_s)
        self.ledger = Ledger()
        self.admitter = Admitter(self.ledger, prices, resolve)
        # With [redis] (set by the gateway): the shared ledger's actor, and the pub/sub of changes.
        self.limits: LimitsActor | None = None
        self.invalidations: Invalidations | None = None
        self.auths = TenantAuths()
        self.store_reads = 0  # lookups that went to the store: a test and /metrics read it
        self.cache_ttl_s = cache_ttl_s
        self._known: set[str] = set()
        self._unknown_reads = UNKNOWN_READS_BURST
        self._unknown_reads_at = 0.0
        self.resets_dropped = 0
        self._in_flight: dict[tuple[str, str], trio.Event] = {}
        self._resets_in, self._resets = trio.open_memory_channel[BudgetReset](RESET_QUEUE)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the control plane has no store yet (ControlPlane.run)")
        return self._store

    async def run(
        self, store: Store, config: GatewayConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Take `store`, reconcile the config's keys and teams into it, then write budget
        resets back to it, one at a time, until cancelled."""
        self._store = store
        if config.keys or config.teams or await store.run(_has_config_owned):
            done = await store.run(lambda blocking: reconcile(blocking, config))
            log.info("config keys and teams reconciled: %s", done)
        self._known = _prefixes(await store.run(ControlStore.tokens))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write_resets)
            nursery.start_soon(self._refresh_known)
            task_status.started()

    async def _write_resets(self) -> None:
        async for reset in self._resets:
            try:
                await self._persist(reset)
            except Exception:  # the store is away: the ledger already reset; the next admission retries
                log.exception("could not write a budget reset of %s", reset.level)

    async def _refresh_known(self) -> None:
        """Re-read the set of keys now and then: keys made or deleted by other workers."""
        while True:
            await trio.sleep(self.cache_ttl_s)
            try:
                self._known = _prefixes(await self.store.run(ControlStore.tokens))
            except Exception:
                log.exception("could not re-read the set of keys; keeping the last one")

    def learn_key(self, token: str) -> None:
        """A key was made (or regenerated) here: it exists from this moment."""
        self._known.add(token[:PREFIX])
        self.keys.invalidate(token)

    # --- who is calling -----------------------------------------------------------------

    async def caller(self, headers: Mapping[str, str], *, allow_x_api_key: bool = False) -> tuple[UserAPIKeyAuth, Tenant | None]:
        """The caller of an LLM route: the master key's `UserAPIKeyAuth` and no tenant, or the
        virtual key's tenant (its `UserAPIKeyAuth` is made at admission).  401 otherwise.

        Without a master key every caller is admitted, as before; a caller that still sends a
        virtual key is that key (its limits and spend apply).
        """
        authenticator = self.authenticator
        token = bearer_token(headers, allow_x_api_key=allow_x_api_key)
        if authenticator.master_key is None:
            tenant = await self.tenant(hash_key(token)) if token is not None else None
            return authenticator.master, tenant
        if token is None:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
        if authenticator.is_master(token):
            return authenticator.master, None
        tenant = await self.tenant(hash_key(token))
        if tenant is None:
            raise AuthError("invalid API key", code="invalid_api_key")
        return authenticator.master, tenant

    async def require_master(self, headers: Mapping[str, str], action: str) -> None:
        """For the routes only the master key may use: 403 for a virtual key (known, just not
        allowed to `action`), 401 for no key or one that is no key of ours."""
        _, tenant = await self.caller(headers)
        if tenant is not None:
            raise Forbidden(f"only the master key may {action}")

    # --- lookups ------------------------------------------------------------------------

    async def tenant(self, token: str) -> Tenant | None:
        """The key of hash `token` with its team and user, or None if there is no such key."""
        known, tenant = self.keys.lookup(token)
        if known:
            return tenant
        if token[:PREFIX] not in self._known and not self._may_read_unknown():
            return None
        return await self._single_flight(("key", token), lambda: self._load_tenant(token), self.keys, token)

    def _may_read_unknown(self) -> bool:
        """A token bucket: may a hash outside the known set be looked up in the store now?"""
        now = trio.current_time()
        self._unknown_reads = min(
            UNKNOWN_READS_BURST, self._unknown_reads + (now - self._unknown_reads_at) * UNKNOWN_READS_PER_S
        )
        self._unknown_reads_at = now
        if self._unknown_reads < 1:
            return False
        self._unknown_reads -= 1
        return True

    async def end_user(self, user_id: str) -> EndUserRecord | None:
        known, record = self.end_users.lookup(user_id)
        if known:
            return record
        return await self._single_flight(
            ("end_user", user_id), lambda: self.store.get_end_user(user_id), self.end_users, user_id
        )

    async def _load_tenant(self, token: str) -> Tenant | None:
        key = await self.store.get_key(token)
        if key is None:
            return None
        self._known.add(token[:PREFIX])
        team = await self.store.get_team(key.team_id) if key.team_id else None
        user = await self.store.get_user(key.user_id) if key.user_id else None
        return Tenant(key, team, user)

    async def _single_flight(
        self, slot: tuple[str, str], load: Callable[[], Awaitable[V | None]], cache: KeyCache[V], name: str
    ) -> V | None:
        """One load per name at a time; the calls that arrive meanwhile wait for its result.

        They wait off their CPU turns (runtime/turns): the load comes back from the database
        needing a turn, and callers holding every turn while they wait for it would hold it
        off until the turnstile's lease takes one back (a second, for every caller).
        """
        while (running := self._in_flight.get(slot)) is not None:
            async with turns.off_turn():
                await running.wait()
            known, value = cache.lookup(name)
            if known:
                return value
        done = self._in_flight[slot] = trio.Event()
        try:
            self.store_reads += 1
            try:
                value = await load()
            except DatabaseUnavailable:
                known, stale = cache.stale(name)
                if not known:
                    raise  # never seen: 503, not a guess
                return stale  # the database is away: its last answer (an outage keeps known keys working)
            cache.put(name, value)
            return value
        finally:
            del self._in_flight[slot]
            done.set()

    # --- admission ----------------------------------------------------------------------

    def auth(self, tenant: Tenant, end_user_id: str | None, end_user: EndUserRecord | None) -> UserAPIKeyAuth:
        """The call's own `UserAPIKeyAuth` of `tenant` (what its hooks and spend record see)."""
        return self.auths.for_call(tenant, end_user_id, end_user)

    async def admit(
        self, tenant: Tenant, auth: UserAPIKeyAuth, *, route: str, model: str, body: Any, end_user: EndUserRecord | None
    ) -> Admission:
        """Admit a call (or raise its 401/403/429, or 503 when shared limits are closed);
        `auth` then shows the live spend.  With `[redis]`, the limits actor decides the calls
        that have limits (one round trip per batch); the rest never leave this process."""
        limits = self.limits
        if limits is None:
            admission = self.admitter.admit(tenant, route=route, model=model, body=body, end_user=end_user)
            self._spend_of(tenant, auth, self.ledger.get("key", tenant.key.token),
                           self.ledger.get("team", tenant.key.team_id) if tenant.key.team_id else None)
        else:
            asked = self.admitter.prepare(tenant, route=route, model=model, body=body, end_user=end_user)
            if asked.claims:
                verdict = await limits.admit(asked.claims, asked.worst, asked.now)
            else:
                verdict = self.ledger.admit(asked.claims, asked.worst, asked.now)
            admission = self.admitter.conclude(asked, verdict)
            accounts = dict(zip((claim.level for claim in asked.claims), verdict.accounts))
            self._spend_of(tenant, auth, accounts.get("key"), accounts.get("team"))
        for reset in admission.resets:
            try:
                self._resets_in.send_nowait(reset)
            except trio.WouldBlock:
                self.resets_dropped += 1
        return admission

    @staticmethod
    def _spend_of(tenant: Tenant, auth: UserAPIKeyAuth, key: Any, team: Any) -> None:
        if key is not None:
            auth.spend = key.spend
        if team is not None and tenant.key.team_id:
            auth.team_spend = team.spend

    def live(self, key: KeyRecord) -> KeyRecord:
        """`key` with the spend this instance knows now (the store's total lags by a flush)."""
        account = self.ledger.get("key", key.token)
        if account is None or account.spend == key.spend:
            return key
        return replace(key, spend=account.spend)

    async def _persist(self, reset: BudgetReset) -> None:
        table = _RESET_TABLES[reset.level]
        entity: str | tuple[str, str] = reset.entity
        if reset.level == "key_model":
            token, _, group = reset.entity.partition("\x00")
            entity = (token, group)
        if reset.previous_reset_at is None:  # the budget's first period began with this call
            await self.store.start_budget_period(table, entity, reset.budget_reset_at)  # type: ignore[arg-type]
        else:
            await self.store.reset_budget(table, entity, reset.previous_reset_at, reset.budget_reset_at)  # type: ignore[arg-type]

    # --- changes made through the admin routes -----------------------------------------

    def changed(self, kind: str, ids: Iterable[str]) -> None:
        """What the admin operations report (`control.admin.Admin`): applies on this instance at
        once, and on every other instance through Redis (within a second) when there is one."""
        ids = list(ids)
        self.apply_change(kind, ids)
        if self.invalidations is not None:
            self.invalidations.publish(kind, ids)

    def apply_change(self, kind: str, ids: Iterable[str]) -> None:
        """Forget what a change made stale (here, or on another instance: `kind` "all" after an outage)."""
        if kind == "key":
            for token in ids:
                self.learn_key(token)  # made, changed, regenerated or deleted: read it again
                self.auths.forget(token)
        elif kind in ("team", "user", "all"):
            self.forget_all_keys()  # every key of theirs carries the old record
            if kind == "all":
                self.end_users.clear()
        elif kind == "end_user":
            for user_id in ids:
                self.forget_end_user(user_id)

    def forget_all_keys(self) -> None:
        """A team or user changed: every key of theirs may read differently now."""
        self.keys.clear()

    def forget_end_user(self, user_id: str) -> None:
        self.end_users.invalidate(user_id)
        self.ledger.forget("end_user", user_id)


def _has_config_owned(store: ControlStore) -> bool:
    """Whether the store holds rows an earlier config declared (they go when the config drops them)."""
    return bool(store.config_owned_ids("keys") or store.config_owned_ids("teams"))


PREFIX = 16  # hex characters of a key's hash kept in the known set: 64 bits, collisions negligible


def _prefixes(tokens: list[str]) -> set[str]:
    return {token[:PREFIX] for token in tokens}

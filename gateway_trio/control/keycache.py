"""The key cache: a key's tenant is read from the database once, then served from memory.

Every LLM call authenticates, so a database round trip per call would cost more than the rest
of the gateway's own work.  Entries live `ttl_s` (a change made on another instance is seen
within it; the admin routes of this instance invalidate at once) and at most `max_entries`
are kept, least recently used first out.  An expired entry stays (within the bound) until
replaced: while the database is away the last answer it gave is served (`stale`), so the
keys in use keep working through an outage (SPEC §10).

Unknown keys are cached too (`MISSING`), in a smaller bounded space of their own: a flood of
random bad keys then costs a dictionary lookup each, not a query each, and cannot push the
known keys out of the cache.  Lookups of one unknown key that arrive together share one query
(`single_flight` in `control.plane`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Generic, TypeVar

import trio

V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()  # cached answer "no such key"

DEFAULT_TTL_S = 30.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_MISSING = 10_000


class _Lru(Generic[V]):
    """An LRU map with an expiry per entry (trio's clock, so tests can jump it)."""

    __slots__ = ("_entries", "_max", "_ttl_s")

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max = max_entries
        self._ttl_s = ttl_s

    def get(self, key: str, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if now >= expires:
            return None  # kept (within the bound) as the answer while the database is away: `stale`
        self._entries.move_to_end(key)
        return value

    def stale(self, key: str) -> V | None:
        """The entry for `key` even if expired (None if never cached or pushed out)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: str, value: V, now: float) -> None:
        self._entries[key] = (now + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def values(self) -> list[V]:
        """Every entry's value, expired ones too (they are still the last word on their key)."""
        return [value for _, value in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)


class KeyCache(Generic[V]):
    """Tenants by key hash, and the hashes known not to be keys."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_missing: int = DEFAULT_MAX_MISSING,
    ) -> None:
        self._known: _Lru[V] = _Lru(max_entries, ttl_s)
        self._missing: _Lru[bool] = _Lru(max_missing, ttl_s)

    def get(self, token: str) -> V | _Missing | None:
        """The cached tenant, `MISSING` if the key is known not to exist, None if not cached."""
        now = trio.current_time()
        value = self._known.get(token, now)
        if value is not None:
            return value
        return MISSING if self._missing.get(token, now) else None

    def lookup(self, token: str) -> tuple[bool, V | None]:
        """(True, the tenant or None for "no such key") when cached; (False, None) when not."""
        value = self.get(token)
        if value is None:
            return False, None
        return True, None if value is MISSING else value  # type: ignore[return-value]

    def stale(self, token: str) -> tuple[bool, V | None]:
        """Like `lookup`, expired entries included: what the database said last, for when it is away."""
        value = self._known.stale(token)
        if value is not None:
            return True, value
        return (True, None) if self._missing.stale(token) else (False, None)

    def put(self, token: str, value: V | None) -> None:
        now = trio.current_time()
        if value is None:
            self._known.pop(token)
            self._missing.put(token, True, now)
        else:
            self._missing.pop(token)
            self._known.put(token, value, now)

    def invalidate(self, token: str) -> None:
        """Forget a key (changed, blocked, deleted, regenerated): the next call reads the store."""
        self._known.pop(token)
        self._missing.pop(token)

    def clear(self) -> None:
        """Forget everything: a team or user changed, and every key of theirs with it."""
        self._known.clear()
        self._missing.clear()

    def cached(self) -> list[V]:
        """The tenants held now (for `/metrics`: the keys this instance serves)."""
        return self._known.values()

    @property
    def sizes(self) -> tuple[int, int]:
        """(known, missing) entries, for `/metrics`."""
        return len(self._known), len(self._missing)

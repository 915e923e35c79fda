"""The key cache: known and unknown keys expire after the TTL, and each space is bounded."""

import trio

from gateway_trio.control.keycache import MISSING, KeyCache


async def test_known_and_missing_keys_are_served_until_their_ttl(autojump_clock):
    cache: KeyCache[str] = KeyCache(ttl_s=30)
    cache.put("a", "tenant-a")
    cache.put("b", None)
    assert cache.lookup("a") == (True, "tenant-a") and cache.lookup("b") == (True, None)
    assert cache.get("b") is MISSING and cache.lookup("c") == (False, None)
    await trio.sleep(29)
    assert cache.lookup("a") == (True, "tenant-a")
    await trio.sleep(1)
    assert cache.lookup("a") == (False, None) and cache.lookup("b") == (False, None)


async def test_a_flood_of_unknown_keys_cannot_push_known_ones_out():
    cache: KeyCache[str] = KeyCache(max_entries=2, max_missing=3)
    cache.put("a", "tenant-a")
    cache.put("b", "tenant-b")
    for i in range(100):
        cache.put(f"bad-{i}", None)
    assert cache.sizes == (2, 3)
    assert cache.lookup("a") == (True, "tenant-a") and cache.lookup("bad-99") == (True, None)
    cache.put("c", "tenant-c")  # the least recently used known key goes: "b"
    assert cache.lookup("b") == (False, None) and cache.lookup("a") == (True, "tenant-a")


async def test_invalidate_forgets_a_key_either_way():
    cache: KeyCache[str] = KeyCache()
    cache.put("a", None)
    cache.invalidate("a")
    assert cache.lookup("a") == (False, None)
    cache.put("a", "tenant-a")
    assert cache.lookup("a") == (True, "tenant-a")


async def test_an_expired_entry_is_the_answer_while_the_database_is_away(autojump_clock):
    cache: KeyCache[str] = KeyCache(ttl_s=10, max_entries=2)
    cache.put("known", "tenant")
    cache.put("gone", None)
    await trio.sleep(11)
    assert cache.lookup("known") == (False, None)  # expired: the next call reads the store
    assert cache.stale("known") == (True, "tenant")  # unless the store is away
    assert cache.stale("gone") == (True, None)
    assert cache.stale("never") == (False, None)
    cache.invalidate("known")  # a change made here is never served stale
    assert cache.stale("known") == (False, None)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")  # the bound holds for expired entries too
    assert len(cache._known) == 2

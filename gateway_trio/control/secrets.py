"""Virtual key secrets: made here, shown once, then known only by their hash.

A secret is `sk-` and 43 url-safe characters (32 random bytes), as LiteLLM's keys look, so
tools that check the prefix accept it.  The store keeps `token` (the sha256 hex, by the one
hash function of `auth`) and `key_name` (`sk-...abcd`), which is safe to show.
"""

from __future__ import annotations

import secrets

from gateway_trio.auth import hash_key

KEY_PREFIX = "sk-"
RANDOM_BYTES = 32  # 43 url-safe characters


def new_key() -> str:
    """A fresh secret for `/key/generate`, `/key/regenerate` and `/user/new`."""
    return KEY_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def key_name(secret: str) -> str:
    """The form of `secret` that may be shown again (`/key/info`, `/key/list`): `sk-...` + its last 4."""
    return f"sk-...{secret[-4:]}"


__all__ = ["KEY_PREFIX", "hash_key", "key_name", "new_key"]

"""Virtual key secrets: their form, their shown name, their hash."""

from __future__ import annotations

import hashlib
import re

from gateway_trio.control.secrets import hash_key, key_name, new_key


def test_a_new_key_is_sk_and_43_url_safe_random_characters() -> None:
    keys = {new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"sk-[A-Za-z0-9_-]{43}", key) for key in keys)


def test_the_name_shows_only_the_last_four() -> None:
    assert key_name("sk-abcdefghijklmnopWXYZ") == "sk-...WXYZ"


def test_keys_are_known_by_their_sha256_hex() -> None:
    key = new_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()

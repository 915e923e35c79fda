"""Who is calling: the master key (virtual keys are the control plane's, `control/plane.py`).

Callers are known to the rest of the gateway by the sha256 of their key, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from gateway_trio.hooks import UserAPIKeyAuth


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_token(headers: Mapping[str, str], *, allow_x_api_key: bool = False) -> str | None:
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    if allow_x_api_key:
        return headers.get("x-api-key") or None
    return None


class Authenticator:
    """The master key and the caller it stands for; virtual keys are checked by the control
    plane (`ControlPlane.caller`), the one place that decides who a request's key is."""

    def __init__(self, master_key: str | None) -> None:
        """`None` (and only None) means no auth: an empty key must never turn auth off."""
        if master_key is not None and not master_key.strip():
            raise ValueError("an empty master key is not 'no auth': pass None for that")
        self.master_key = master_key
        self.master = UserAPIKeyAuth(
            api_key=hash_key(master_key) if master_key is not None else None, user_id="default_user_id"
        )

    def is_master(self, token: str) -> bool:
        return self.master_key is not None and hmac.compare_digest(token.encode(), self.master_key.encode())

"""Who is calling: the master key (virtual keys are the control plane's, `control/plane.py`).

Callers are known to the rest of the gateway by the sha256 of their key, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Mapping

from gateway_trio.errors import AuthError, Forbidden
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
    def __init__(self, master_key: str | None) -> None:
        """`None` (and only None) means no auth: an empty key must never turn auth off."""
        if master_key is not None and not master_key.strip():
            raise ValueError("an empty master key is not 'no auth': pass None for that")
        self.master_key = master_key
        self.master = UserAPIKeyAuth(
            api_key=hash_key(master_key) if master_key is not None else None, user_id="default_user_id"
        )

    def __call__(self, headers: Mapping[str, str], *, allow_x_api_key: bool = False) -> UserAPIKeyAuth:
        """Check the caller's key; without a configured master key everybody is master."""
        if self.master_key is None:
            return self.master
        token = bearer_token(headers, allow_x_api_key=allow_x_api_key)
        if token is None:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
        if self.is_master(token):
            return self.master
        raise AuthError("invalid API key", code="invalid_api_key")

    def is_master(self, token: str) -> bool:
        return self.master_key is not None and hmac.compare_digest(token.encode(), self.master_key.encode())

    def require_master(self, headers: Mapping[str, str], action: str) -> None:
        """For admin routes: only the master key may `action`."""
        if self(headers) is not self.master:
            raise Forbidden(f"only the master key may {action}")

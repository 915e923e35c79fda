"""Who is calling: the master key for now (virtual keys build on this)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Mapping

from gateway_trio.errors import AuthError


@dataclass(frozen=True, slots=True)
class Caller:
    is_master: bool


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


def authenticate(headers: Mapping[str, str], master_key: str | None, *, allow_x_api_key: bool = False) -> Caller:
    """Check the caller's key; without a configured master key everybody is master."""
    if master_key is None:
        return Caller(is_master=True)
    token = bearer_token(headers, allow_x_api_key=allow_x_api_key)
    if token is None:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
    if hmac.compare_digest(token.encode(), master_key.encode()):
        return Caller(is_master=True)
    raise AuthError("invalid API key", code="invalid_api_key")

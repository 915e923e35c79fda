"""Keeping configured secrets out of what upstreams say back.

Upstream error texts like to quote the key they were sent.  The adapters remove what looks
like a key (`adapters.openai.client_safe`), but a key of no known shape (a vLLM token, a
tenant header) only shows itself by its value.  So every error leaving a deployment actor goes
through a `Redactor` that knows every secret of the config by value: that one place covers
the client's answer, the spend record, the hooks and the logs, which all carry that error.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from gateway_trio.errors import GatewayError

REDACTED = "<redacted>"
# Shorter values would blot ordinary words out of messages, and guard next to nothing.
MIN_SECRET_CHARS = 6
# Where a secret was cut off at the end of a (length-limited) message, its first characters
# are what is left; at least this many of them are removed too.
MIN_FRAGMENT_CHARS = 4
# Names of config entries (header names, guardrail params) whose values are credentials.
CREDENTIAL_NAME = re.compile(r"key|token|secret|passw|auth|credential|cookie|signature", re.IGNORECASE)


def configured_secrets(config: BaseModel) -> set[str]:
    """Every secret in a config: `SecretStr` values, credential-named entries of its tables
    (headers, guardrail params) and passwords inside URLs."""
    found: set[str] = set()
    _collect(config, "", found)
    return found


def credential_values(entries: Mapping[str, Any]) -> set[str]:
    """The secrets among `entries` (for example a deployment's headers)."""
    found: set[str] = set()
    _collect(entries, "", found)
    return found


def _collect(value: Any, name: str, found: set[str]) -> None:
    if isinstance(value, SecretStr):
        _add(value.get_secret_value(), found)
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _collect(getattr(value, field), field, found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, str(key), found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, name, found)
    elif isinstance(value, str):
        if CREDENTIAL_NAME.search(name):
            _add(value, found)
        elif "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                _add(password, found)


def _add(secret: str, found: set[str]) -> None:
    found.add(secret)
    _, _, credential = secret.partition(" ")  # "Bearer <token>": the token is echoed alone too
    if credential:
        found.add(credential.strip())


class Redactor:
    """Replaces known secret values in texts; built once, used on the error path only."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is removed whole.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True))
        # Secrets by their first characters, so a cut-off one is found without trying each.
        self._by_start: dict[str, list[str]] = {}
        for secret in self.secrets:
            self._by_start.setdefault(secret[:MIN_FRAGMENT_CHARS], []).append(secret)
        self._longest = len(self.secrets[0]) if self.secrets else 0

    def text(self, text: str) -> str:
        # A substring test per secret: far cheaper than one big alternation on configs with
        # hundreds of keys, which an error storm would pay on every failed call.
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return self._cut_tail(text) if self.secrets else text

    def error(self, error: GatewayError) -> GatewayError:
        """`error` itself, its message redacted: its type, status and retry advice stay."""
        clean = self.text(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
        return error

    def _cut_tail(self, text: str) -> str:
        """`text` without the start of a secret it ends with (longest first), as a message cut
        to length leaves it."""
        end = len(text)
        for start in range(max(0, end - self._longest + 1), end - MIN_FRAGMENT_CHARS + 1):
            for secret in self._by_start.get(text[start:start + MIN_FRAGMENT_CHARS], ()):
                if secret.startswith(text[start:]):
                    return text[:start] + REDACTED
        return text

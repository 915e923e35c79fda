"""The remote guardrails' shared base: a guardrail that asks a service over HTTP.

`RemoteGuardrail` is the base of `http` and `openai_moderation`: one long-lived client per
guardrail, created on first use so that building the guardrail at config load needs no
running event loop, and one `post_json` that bounds what the service may answer.

Failures here raise `GuardrailServiceError`, a plain exception: the guardrail stage turns it
into a fail-closed block (or lets the call through when the config says `fail_open`).  Its
message names the guardrail and what went wrong, never the URL, headers or keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import orjson

from gateway_trio.errors import UpstreamError
from gateway_trio.guardrails.params import BuiltinGuardrail, Params
from gateway_trio.upstream.body import read_reply

DEFAULT_TIMEOUT_S = 10.0
# A verdict is a few fields; a service answering more than this is refused, unread.
MAX_VERDICT_BYTES = 1 << 20
# A guardrail call is one short POST per request; a modest pool keeps sockets bounded.
MAX_CONNECTIONS = 64


class GuardrailServiceError(RuntimeError):
    """A guardrail service failed or answered something we cannot act on."""


class RemoteGuardrail(BuiltinGuardrail):
    """Base for guardrails that POST JSON to a service; owns one lazily created client."""

    PARAMS: ClassVar[Mapping[str, Any]] = {"timeout_s": DEFAULT_TIMEOUT_S}

    def configure(self, params: Params) -> None:
        self.timeout_s = params.positive_number("timeout_s")
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # No await between the check and the assignment, so concurrent first calls share one.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
                # The service URL is configured explicitly; environment proxies would only surprise.
                trust_env=False,
            )
        return self._client

    async def post_json(self, url: str, payload: Any, headers: dict[str, str], what: str) -> Any:
        """POST `payload` and return the decoded JSON answer, or raise GuardrailServiceError.

        `what` names the service in messages ("moderation endpoint", "guardrail service").
        """
        name = self.guardrail_name
        # Like every upstream: no compressed answer asked for or accepted, and a bounded one
        # (a service, or whatever answers at its URL, must not inflate a bomb in the gateway).
        headers = {**headers, "accept-encoding": "identity"}
        try:
            async with self._http().stream("POST", url, content=orjson.dumps(payload), headers=headers) as response:
                if response.status_code != 200:
                    raise GuardrailServiceError(f"guardrail {name!r}: {what} answered HTTP {response.status_code}")
                content = await read_reply(response, MAX_VERDICT_BYTES)
        except httpx.TimeoutException:
            raise GuardrailServiceError(f"guardrail {name!r}: {what} timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            # The exception's text can carry the URL; its type is enough to diagnose.
            raise GuardrailServiceError(f"guardrail {name!r}: {what} unreachable ({type(exc).__name__})") from None
        except UpstreamError:  # compressed, or over MAX_VERDICT_BYTES
            raise GuardrailServiceError(f"guardrail {name!r}: {what} answered a compressed or oversized reply") from None
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            raise GuardrailServiceError(f"guardrail {name!r}: {what} answered invalid JSON") from None

    async def aclose(self) -> None:
        """Close the client; a later call would open a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


__all__ = ["GuardrailServiceError", "RemoteGuardrail"]

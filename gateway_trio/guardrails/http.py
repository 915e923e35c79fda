"""The generic `http` guardrail: POST the texts to a service and act on its verdict.

What the service may answer is in `HTTPGuardrail`'s docstring; the client, the bounds on the
answer and the failures (`GuardrailServiceError`) are the remote guardrails' (`remote`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway_trio.guardrails.base import InputType, blocked
from gateway_trio.guardrails.params import Params
from gateway_trio.guardrails.remote import GuardrailServiceError, RemoteGuardrail


class HTTPGuardrail(RemoteGuardrail):
    """POSTs `{"texts", "input_type", "guardrail"}` to `url`; the answer decides.

    Verdicts: `{"action": "block", "reason": ...}`, `{"action": "mask", "texts": [...]}` (same
    number of texts), `{"action": "pass"}` or `"allow"`.  Anything else fails closed.
    """

    PARAMS: ClassVar[Mapping[str, Any]] = {"url": None, "headers": None, **RemoteGuardrail.PARAMS}

    def configure(self, params: Params) -> None:
        super().configure(params)
        self.url = params.http_url("url")
        self.headers = {"content-type": "application/json", **params.string_table("headers")}

    async def apply_guardrail(
        self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: InputType
    ) -> dict[str, Any]:
        texts = list(inputs.get("texts") or [])
        payload = {"texts": texts, "input_type": input_type, "guardrail": self.guardrail_name}
        verdict = await self.post_json(self.url, payload, self.headers, "guardrail service")
        return self._act_on(verdict, inputs, len(texts))

    def _act_on(self, verdict: Any, inputs: dict[str, Any], count: int) -> dict[str, Any]:
        name = self.guardrail_name
        action = verdict.get("action") if isinstance(verdict, dict) else None
        if action in ("pass", "allow"):
            return inputs
        if action == "block":
            reason = verdict.get("reason")
            raise blocked(name, reason if isinstance(reason, str) and reason else "rejected by the guardrail service")
        if action == "mask":
            texts = verdict.get("texts")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise GuardrailServiceError(f"guardrail {name!r}: mask verdict without a list of texts")
            if len(texts) != count:
                raise GuardrailServiceError(
                    f"guardrail {name!r}: mask verdict has {len(texts)} texts, expected {count}"
                )
            return {**inputs, "texts": texts}
        raise GuardrailServiceError(f"guardrail {name!r}: unrecognised verdict from the guardrail service")


__all__ = ["GuardrailServiceError", "HTTPGuardrail"]

"""The `openai_moderation` guardrail: ask an OpenAI-compatible `/moderations` endpoint.

Blocks when the endpoint flags any text — or, with `categories`, only when one of those
categories is flagged, so an operator can block on e.g. violence while allowing the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway_trio.guardrails.base import InputType, blocked
from gateway_trio.guardrails.params import Params
from gateway_trio.guardrails.remote import GuardrailServiceError, RemoteGuardrail

DEFAULT_MODEL = "omni-moderation-latest"
WHAT = "moderation endpoint"


class OpenAIModerationGuardrail(RemoteGuardrail):
    """POSTs `{"model", "input": texts}` to `{api_base}/moderations` and blocks if flagged."""

    PARAMS: ClassVar[Mapping[str, Any]] = {
        "api_base": None, "api_key": None, "model": DEFAULT_MODEL, "categories": None, **RemoteGuardrail.PARAMS,
    }

    def configure(self, params: Params) -> None:
        super().configure(params)
        self.url = params.http_url("api_base").rstrip("/") + "/moderations"
        api_key = params.optional_text("api_key")
        self.model = params.text("model")
        categories = params["categories"]
        if categories is not None and (
            not isinstance(categories, list) or not categories or not all(isinstance(c, str) and c for c in categories)
        ):
            raise params.invalid("categories", "must be a non-empty list of category names")
        self.categories: tuple[str, ...] | None = tuple(categories) if categories is not None else None
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"

    async def apply_guardrail(
        self, inputs: dict[str, Any], request_data: dict[str, Any], input_type: InputType
    ) -> dict[str, Any]:
        texts = [t for t in inputs.get("texts") or [] if isinstance(t, str) and t]
        if not texts:
            return inputs  # nothing to moderate; skip the round trip
        answer = await self.post_json(self.url, {"model": self.model, "input": texts}, self.headers, WHAT)
        flagged = self._flagged_categories(answer)
        if flagged is not None:
            raise blocked(self.guardrail_name, "flagged by moderation" + (f": {', '.join(flagged)}" if flagged else ""))
        return inputs

    def _flagged_categories(self, answer: Any) -> list[str] | None:
        """The flagged category names that block, [] for "flagged, categories unknown", or None."""
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
            raise GuardrailServiceError(f"guardrail {self.guardrail_name!r}: {WHAT} answered without results")
        names: list[str] = []
        any_flagged = False
        for result in results:
            categories = result.get("categories")
            if not isinstance(categories, dict) or not isinstance(result.get("flagged"), bool):
                raise GuardrailServiceError(f"guardrail {self.guardrail_name!r}: {WHAT} answered a malformed result")
            any_flagged |= result["flagged"]
            for category, hit in categories.items():
                if hit is True and category not in names and (self.categories is None or category in self.categories):
                    names.append(category)
        if self.categories is not None:
            return names or None
        return names if any_flagged else None


__all__ = ["OpenAIModerationGuardrail"]

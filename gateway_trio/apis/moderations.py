"""The Moderations API (`/v1/moderations`): texts in, flags out; never streamed.

Unlike every other API its `model` may be left out: the gateway then sends the call to its
first deployment of mode `moderation` (found once, when a gateway configures the API).
"""

from __future__ import annotations

from typing import Any

from gateway_trio.apis.base import Api
from gateway_trio.apis.checks import check_model, require_field
from gateway_trio.calls import Call
from gateway_trio.config import GatewayConfig
from gateway_trio.errors import BadRequest


class ModerationsApi(Api):
    default_model: str | None = None

    def configured(self, config: GatewayConfig) -> Api:
        default = next((m.name for m in config.models if m.info.mode == "moderation"), None)
        return self.with_changes(default_model=default)

    def parse(self, content: Any) -> Call:
        require_field(content, "input", (str, list), "a string or an array")
        model = content.get("model") or self.default_model
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required: no moderation model is configured as the default", param="model")
        return self.new_call(content, model=check_model(model))


MODERATIONS = ModerationsApi(
    "moderations", "moderation", ("/v1/moderations", "/moderations"), adapter_method="moderation",
    streams=False, text_fields=("input",), probe=("moderation", {"input": "ping"}),
)

"""OpenAI's Responses API (`/v1/responses`): typed events, and response ids that name their
deployment, signed by the gateway, so a follow-up (`previous_response_id`) finds its way back.
For deployments served through chat (they keep no state), the gateway keeps the conversation
(`control.conversations`); this API says which calls continue one and what each answer adds.

Its stream is assembled into the final `response` object (what `response.completed` carries)
for logging hooks; its closing events repeat the whole text, so a post-call guardrail at the
end of a stream holds them back, and masks them too.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_trio.adapters import adapter_for
from gateway_trio.adapters.responses_stream import ResponsesThroughChat
from gateway_trio.apis.base import Api
from gateway_trio.apis.checks import require_field, require_model
from gateway_trio.apis.slots import Slot, string_slots
from gateway_trio.apis.wires import (
    RESPONSE_EVENTS,
    TYPE_PREFIX,
    ResponseIds,
    ResponsesWire,
    event_type,
    response_id_key,
)
from gateway_trio.calls import Call
from gateway_trio.config import GatewayConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest

CLOSING_EVENTS = frozenset({
    "response.output_text.done", "response.content_part.done", "response.output_item.done",
    "response.completed", "response.incomplete", "response.failed",
})
# What the assembler reads; the many delta events it need not parse.
ASSEMBLED_EVENTS = frozenset({*RESPONSE_EVENTS, b"response.output_item.done"})


class ResponsesApi(Api):
    wire: ResponsesWire
    # Deployments served through chat, whose conversations the gateway keeps; and whether it does.
    kept_by_gateway: frozenset[str] = frozenset()
    stores: bool = False

    def configured(self, config: GatewayConfig) -> Api:
        return self.with_changes(
            wire=ResponsesWire(response_ids(config)),
            kept_by_gateway=kept_by_gateway(config),
            stores=config.responses.store,
        )

    def parse(self, content: Any) -> Call:
        require_model(content)
        require_field(content, "input", (str, list), "a string or an array")
        call = self.new_call(content)
        previous = content.get("previous_response_id")
        if previous is not None:
            if not isinstance(previous, str):
                raise BadRequest("'previous_response_id' must be a string", param="previous_response_id")
            decoded = self.wire.ids.decode(previous)
            if decoded is not None:
                # A follow-up goes back to the deployment that holds the conversation (if it is one
                # of the group called: the router sees to that), with the upstream's own id restored;
                # one the gateway keeps stays as the client sent it, its stored key (`resume`).
                call.pinned_deployment, upstream_id = decoded
                if call.pinned_deployment not in self.kept_by_gateway:
                    call.body = {**call.body, "previous_response_id": upstream_id}
        return call

    # --- the conversations the gateway keeps for deployments served through chat ----------

    def stored_response_id(self, call: Call) -> str | None:
        previous = call.body.get("previous_response_id")
        if call.pinned_deployment in self.kept_by_gateway and isinstance(previous, str):
            return previous
        return None

    def resume(self, call: Call, items: list[Any]) -> None:
        body = {key: value for key, value in call.body.items() if key != "previous_response_id"}
        body["input"] = [*items, *input_items(call.body.get("input"))]
        call.body = body

    def keeps(self, call: Call) -> bool:
        deployment = call.deployment
        return (
            self.stores
            and deployment is not None
            and deployment.id in self.kept_by_gateway
            and call.body.get("store") is not False
        )

    def kept_items(self, call: Call, response: dict[str, Any]) -> tuple[str, list[Any]] | None:
        response_id, output = response.get("id"), response.get("output")
        if not self.keeps(call) or not isinstance(response_id, str) or not isinstance(output, list):
            return None
        # Instructions are not part of it: OpenAI does not carry them over to a follow-up either.
        return response_id, [*input_items(call.body.get("input")), *output]

    def request_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        slots: list[Slot] = []
        if isinstance(body.get("instructions"), str):
            slots.append((body, "instructions"))
        if "input" in body:
            if isinstance(body["input"], str):
                slots.append((body, "input"))
            else:
                for item in body["input"] or ():
                    if isinstance(item, dict) and "content" in item:
                        slots.extend(string_slots(item, "content"))
        return slots

    def response_slots(self, body: Any) -> list[Slot]:
        if not isinstance(body, dict):
            return []
        slots: list[Slot] = []
        for item in body.get("output") or ():
            for part in item.get("content") or () if isinstance(item, dict) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    slots.append((part, "text"))
        return slots

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        if not isinstance(chunk, dict) or chunk.get("type") != "response.output_text.delta":
            return []
        return [(chunk, "delta")] if isinstance(chunk.get("delta"), str) else []

    def is_closing_event(self, chunk: Any) -> bool:
        return isinstance(chunk, dict) and chunk.get("type") in CLOSING_EVENTS

    def closing_slots(self, event: Any) -> list[Slot]:
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "response.output_text.done":
            return [(event, "text")] if isinstance(event.get("text"), str) else []
        if kind == "response.content_part.done":
            part = event.get("part")
            return [(part, "text")] if isinstance(part, dict) and isinstance(part.get("text"), str) else []
        if kind == "response.output_item.done":
            return self.response_slots({"output": [event.get("item")]})
        return self.response_slots(event.get("response"))

    def assembler(self) -> ResponseAssembler:
        return ResponseAssembler()


class ResponseAssembler:
    """The final `response` object: the one the last lifecycle event carries (`completed`,
    `incomplete`, `failed`; or, for a stream cut short, the last seen), with the output items
    finished so far if that one has none yet."""

    def __init__(self) -> None:
        self.response: dict[str, Any] | None = None
        self.items: list[Any] = []

    def add(self, payload: bytes) -> None:
        if not payload.startswith(TYPE_PREFIX) or event_type(payload) not in ASSEMBLED_EVENTS:
            return
        event = orjson.loads(payload)
        if event.get("type") == "response.output_item.done":
            self.items.append(event.get("item"))
        elif isinstance(event.get("response"), dict):
            self.response = event["response"]

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.response is None:
            return None
        if self.items and not self.response.get("output"):
            return {**self.response, "output": self.items}
        return self.response


def input_items(raw: Any) -> list[Any]:
    """A body's `input` as a list of items (a string is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return list(raw) if isinstance(raw, list) else []


def kept_by_gateway(config: GatewayConfig) -> frozenset[str]:
    """The ids of the deployments that serve Responses through chat: they keep no state, the gateway does."""
    deployments = [Deployment.from_config(model) for model in config.models]
    return frozenset(d.id for d in deployments if isinstance(adapter_for(d.provider, responses_api=d.info.responses_api), ResponsesThroughChat))


def response_ids(config: GatewayConfig) -> ResponseIds:
    """The signer of this gateway's response ids, keyed as `response_id_key` explains."""
    secret, master_key = config.server.response_id_secret, config.server.master_key
    return ResponseIds(response_id_key(
        secret.get_secret_value() if secret else None, master_key.get_secret_value() if master_key else None
    ))


# Configured per gateway: until then its wire signs with a key of its own, used by no one.
RESPONSES = ResponsesApi("responses", "responses", ("/v1/responses", "/responses"), adapter_method="responses",
                         wire=ResponsesWire(ResponseIds(response_id_key(None, None))),
                         probe=("responses", {"input": "ping", "max_output_tokens": 16}))

"""The conversation stage: a follow-up gets its stored conversation back before anything else
sees the call, and an answer the gateway keeps is stored once the call has succeeded.

Which calls continue or are kept, and how, is the call's API's to say (`Api.stored_response_id`,
`resume`, `keeps`, `kept_items`: today the Responses API on deployments served through chat);
the rows are `control.conversations`'.  It runs before admission, so the reservation, the
context-window checks and every hook and guardrail see the whole conversation the upstream
will be sent; a follow-up it cannot resume is refused just after admission.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway_trio.adapters.responses_chat import previous_response_not_found
from gateway_trio.calls import Call
from gateway_trio.control.conversations import ConversationStore, Owner
from gateway_trio.errors import GatewayError

log = logging.getLogger(__name__)


class ConversationStage:
    def __init__(self, store: ConversationStore | None) -> None:
        self.store = store

    async def resume(self, call: Call) -> GatewayError | None:
        """Put the stored conversation `call` continues before its input; or the 400 (OpenAI's
        "not found") to refuse it with when there is none this caller may continue: never
        stored (`store: false`), expired, pruned, or another key's.  Returned, not raised: the
        pipeline raises it after admission, so a key's 401/403/429 comes first and the refused
        call's record names the key."""
        response_id = call.api.stored_response_id(call)
        if response_id is None:
            return None
        state = await self.store.recall(response_id, Owner.of(call.tenant)) if self.store is not None else None
        if state is None:
            return previous_response_not_found(response_id)
        call.api.resume(call, orjson.loads(state.items))
        return None

    def wants_answer(self, call: Call) -> bool:
        """Whether the call's answer is to be kept (a stream then assembles it)."""
        return self.store is not None and call.api.keeps(call)

    def keep(self, call: Call, response: dict[str, Any]) -> None:
        """Store a succeeded call's conversation, if its API keeps it.  Synchronous (the call's end)."""
        if self.store is None:
            return
        kept = call.api.kept_items(call, response)
        if kept is None:
            return
        response_id, items = kept
        deployment = call.deployment
        try:
            encoded, answer = orjson.dumps(items), orjson.dumps(response)
        except TypeError as error:  # something a hook put in that is not JSON: not stored
            log.warning("response %s not stored: %s", response_id, error)
            return
        owner = Owner.of(call.tenant)
        state = self.store.stored(
            response_id, call.model_group, deployment.id if deployment else None, owner, encoded, answer
        )
        self.store.keep(state)

"""Admission, the pipeline's first stage: may this call of a virtual key go, and what it holds.

It runs once per call, before the pre-call hooks, on every route, streaming or not (SPEC §9's
checks in `control.admission`).  What passes leaves on the `Call`: the model group after the
key's aliases, the `UserAPIKeyAuth` hooks see, the key's guardrails and tags, and the
reservation that `settle` turns into the call's real cost exactly once, when the pipeline
finishes the call (success, failure or a client gone).  The master key's calls pass untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_trio.calls import Call

if TYPE_CHECKING:
    from gateway_trio.control.plane import ControlPlane
    from gateway_trio.control.records import KeyRecord
    from gateway_trio.spend.records import SpendRecord

END_USER_HEADER = "x-gateway-end-user-id"


def end_user_of(call: Call) -> str | None:
    """The end-user a call is made for: the header, else the body's `user` (LiteLLM's field)."""
    named = call.request_headers.get(END_USER_HEADER)
    if named:
        return named
    user = call.body.get("user") if isinstance(call.body, dict) else None
    return user if isinstance(user, str) and user else None


class AdmissionStage:
    def __init__(self, plane: ControlPlane | None) -> None:
        self.plane = plane

    async def admit(self, call: Call) -> None:
        """Admit `call` or raise the 401/403/429 that refuses it."""
        call.end_user = end_user_of(call)
        tenant = call.tenant
        if tenant is None or self.plane is None:
            return
        plane = self.plane
        end_user = await plane.end_user(call.end_user) if call.end_user is not None else None
        # The key's auth first: a refused call's record and hooks name the key that made it.
        call.user = auth = plane.auth(tenant, call.end_user, end_user)
        admission = await plane.admit(tenant, auth, route=call.route, model=call.model, body=call.body, end_user=end_user)
        call.admission = admission
        call.model = admission.model_group
        _take_key_settings(call, tenant.key)

    async def readmit(self, call: Call, model: str) -> None:
        """A pre-call hook sent the call to `model`: admit it there instead (the model checks,
        budgets and limits of that group, per-model ones included), or raise what refuses it.
        What the first admission held is given back first, whatever the answer."""
        tenant = call.tenant
        if tenant is None or self.plane is None:
            call.model = model
            return
        if call.admission is not None:
            admission, call.admission = call.admission, None
            admission.release()
        end_user = await self.plane.end_user(call.end_user) if call.end_user is not None else None
        admission = await self.plane.admit(tenant, call.user, route=call.route, model=model, body=call.body,
                                     end_user=end_user)
        call.admission = admission
        call.model = admission.model_group


    @staticmethod
    def settle(call: Call, record: SpendRecord) -> None:
        """The call is over: its reservation becomes what its spend record says it cost."""
        admission = call.admission
        if admission is None:
            return
        prompt, completion = record.prompt_tokens, record.completion_tokens
        tokens = prompt + completion if prompt is not None and completion is not None else None
        admission.settle(record.cost, tokens)


def _take_key_settings(call: Call, key: KeyRecord) -> None:
    """The key's own guardrails and tags join the call's."""
    if key.guardrails:
        call.requested_guardrails.extend(name for name in key.guardrails if name not in call.requested_guardrails)
    if key.tags:
        call.tags.extend(tag for tag in key.tags if tag not in call.tags)

"""What one attempt sends its provider: the parameters it can honour, the headers it reads.

A parameter the chosen deployment's provider cannot honour (`seed` to Anthropic, `top_k` to
OpenAI) is never lost on the way without a word: the call is refused with a 400 naming it and
the provider, before anything is sent (the caller's error, so no deployment is blamed), or,
with `drop_params` (the body's, else `[router] drop_params`), dropped and named in the spend
record's metadata under `dropped_params`.  Decided per attempt, since each deployment of a
group, or of a fallback, may be another provider.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.adapters import adapter_for
from gateway_trio.calls import Call
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest

DROPPED_PARAMS = "dropped_params"  # the spend record's metadata key


def fit_to_provider(call: Call, deployment: Deployment, drop_by_default: bool) -> tuple[Any, dict[str, str]]:
    """(the body to send, the client headers to add) for `call` on `deployment`."""
    adapter = adapter_for(deployment.provider, responses_api=deployment.info.responses_api)
    body = call.api.upstream_body(call)
    if isinstance(body, dict):
        unusable = adapter.unsupported_params(call.api.adapter_method, body)
        if unusable:
            drop = call.drop_params if call.drop_params is not None else drop_by_default
            if not drop:
                raise _refusal(unusable, deployment)
            call.metadata[DROPPED_PARAMS] = unusable
            body = {name: value for name, value in body.items() if name not in unusable}
    wanted = adapter.client_headers
    if not wanted:
        return body, {}
    sent = call.request_headers
    return body, {name: sent[name] for name in wanted if name in sent}


def _refusal(names: list[str], deployment: Deployment) -> BadRequest:
    listed = ", ".join(f"'{name}'" for name in names)
    what = "is" if len(names) == 1 else "are"
    return BadRequest(
        f"{listed} {what} not supported by {deployment.provider} (model group {deployment.group!r}); "
        'leave it out, or send "drop_params": true (or set [router] drop_params = true) to have it dropped',
        param=names[0],
        code="unsupported_parameter",
    )

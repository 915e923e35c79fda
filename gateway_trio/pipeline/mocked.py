"""`mock_response`: a call the gateway answers itself, without calling the upstream (LiteLLM's
request parameter for testing clients, budgets and spend tracking).

The call is routed as any other (its group must exist and a deployment is chosen, so headers
and records name it); only the attempt differs: instead of the deployment's actor, the built-in
`mock` provider's in-process upstream answers, with the request's text, through the same
adapter translation a mock deployment uses.  So every route gets an answer in its own wire
format, streaming and not, and everything after the first event (guardrails, hooks, usage,
cost, the spend record) runs as for a real answer.
"""

from __future__ import annotations

import httpx

from gateway_trio.actors.deployment import unsendable
from gateway_trio.adapters.mock import MOCK_API_BASE, MockAdapter, MockUpstream
from gateway_trio.adapters.usage import chat_usage
from gateway_trio.channels.messages import Chunks, DeploymentEvent, Dispatch, Failure, Reply, StreamEnd
from gateway_trio.config import ModelInfo
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, GatewayError, UpstreamError

ADAPTER = MockAdapter()
# What the mock adapter builds its requests for: no key, no headers of a real deployment.
MOCK_DEPLOYMENT = Deployment(
    id="mock-response",
    group="mock-response",
    provider="mock",
    model="mock",
    api_base=MOCK_API_BASE,
    api_key=None,
    api_version=None,
    headers={},
    mock_response=None,
    weight=1,
    rpm=None,
    tpm=None,
    timeout_s=None,
    stream_timeout_s=None,
    num_retries=0,
    max_parallel_requests=1,
    guardrails=(),
    info=ModelInfo(),
)


def failure(kind: str, group: str) -> UpstreamError:
    """The failure a `mock_testing_*` request asks of its group, in place of calling it: a
    server error, or a context-window refusal, which the group's fallbacks then answer."""
    if kind == "context_window":
        return UpstreamError(
            f"mock_testing_context_fallbacks: {group!r} answered as if the prompt exceeded its maximum context length",
            upstream_status=400,
        )
    return UpstreamError(f"mock_testing_fallbacks: {group!r} answered as if it had failed", upstream_status=500)


async def answer(dispatch: Dispatch, text: str) -> None:
    """Answer `dispatch` on its reply channel with `text`, as the mock provider would.

    The whole answer is at most two events (a stream's chunks in one batch, then its end), which
    the reply channel holds, so nothing here waits on the caller.
    """
    dispatch.sent.set()
    for event in await _events(dispatch, text):
        dispatch.reply.send_nowait(event)
    dispatch.reply.close()


async def _events(dispatch: Dispatch, text: str) -> list[DeploymentEvent]:
    method, model = dispatch.adapter_method, dispatch.model
    try:
        spec = ADAPTER.request(method, MOCK_DEPLOYMENT, dispatch.body, model, dispatch.stream)
        request = httpx.Request(spec.method, spec.url, headers=spec.headers, content=spec.content)
        response = await MockUpstream(text).handle_async_request(request)
        payload = await response.aread()
        if response.status_code >= 400:
            # The mock refuses only a request no upstream would take: the caller's error, never
            # retried or held against the chosen deployment.
            return [Failure(BadRequest(ADAPTER.error_message(response.status_code, payload)))]
        if not dispatch.stream:
            body = ADAPTER.response(method, payload, model, response.headers.get("content-type", "application/json"))
            return [Reply(body, chat_usage(body.get("usage")) if isinstance(body, dict) else None)]
        decoder = ADAPTER.stream(method, model)
        payloads: list[bytes] = []
        decoder.feed_into(payload, payloads)
        return [Chunks(payloads), StreamEnd(decoder.usage, getattr(decoder, "usage_chunk", None))]
    except GatewayError as error:
        return [Failure(error)]
    except Exception as error:  # noqa: BLE001 - a fault of ours, told as one: never the deployment's
        return [Failure(unsendable(error, MOCK_DEPLOYMENT))]

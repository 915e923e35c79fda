"""How the admin routes answer a refusal: a `GatewayError` raised in a handler, in one place.

The admin, spend and guardrail routes speak OpenAI's error shape whatever went wrong (no
master key, a bad query parameter, an unknown guardrail).  Their handlers just raise; the
decorator here turns the error into its status, its headers (`retry-after` when it has one)
and its JSON body.  The LLM routes answer in their own API's error shape (see `apis/`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec

from quart import Response

from gateway_trio.errors import GatewayError

JSON = "application/json"

P = ParamSpec("P")


def error_response(error: GatewayError) -> Response:
    return Response(error.openai_json(), error.status, error.headers(), content_type=JSON)


def errors_as_responses(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """The handler, with a `GatewayError` it raises answered as that error's response."""

    @functools.wraps(handler)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except GatewayError as error:
            return error_response(error)

    return answer


__all__ = ["JSON", "error_response", "errors_as_responses"]

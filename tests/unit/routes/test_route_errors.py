"""The admin routes' refusals, answered in one place: a GatewayError raised in a handler
becomes its status, its headers and OpenAI's error body; anything else is not ours to hide."""

from __future__ import annotations

import orjson
import pytest
from quart import Response

from gateway_trio.errors import BadRequest, RateLimited
from gateway_trio.routes.errors import errors_as_responses


async def test_a_gateway_error_raised_in_a_handler_is_its_error_response():
    @errors_as_responses
    async def handler() -> Response:
        raise RateLimited("slow down", retry_after=3)

    response = await handler()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.content_type == "application/json"
    error = orjson.loads(await response.get_data())["error"]
    assert error == {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "429"}


async def test_a_handler_that_answers_is_passed_through_under_its_own_name():
    ok = Response(b"{}", 200)

    @errors_as_responses
    async def list_things(limit: int) -> Response:
        if limit < 1:
            raise BadRequest("'limit' must be at least 1", param="limit")
        return ok

    assert list_things.__name__ == "list_things"  # Quart names the endpoint after it
    assert await list_things(5) is ok
    refused = await list_things(0)
    assert refused.status_code == 400 and "retry-after" not in refused.headers


async def test_an_error_that_is_not_a_gateway_error_is_not_swallowed():
    @errors_as_responses
    async def broken() -> Response:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await broken()

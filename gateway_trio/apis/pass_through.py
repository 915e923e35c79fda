"""Pass-through routes (`pass_through` in the config): any method, any body, relayed as it came.

Their paths come from the config, not from this module; the route's path is the call's model
(and its deployment's group).  The bytes go upstream untouched and come back untouched: no
framing, no texts for guardrails, no error events inside a relayed stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway_trio.adapters.pass_through import PassThroughRequest
from gateway_trio.apis.base import Api
from gateway_trio.apis.wires import RAW
from gateway_trio.calls import Call


@dataclass(slots=True)
class Relayed:
    """A request to a pass-through route: the route's path and what to relay."""

    path: str
    request: PassThroughRequest


class PassThroughApi(Api):
    def parse(self, content: Relayed) -> Call:
        return Call(self, content.path, {"request": content.request}, stream=wants_stream(content.request.content))

    def upstream_body(self, call: Call) -> Any:
        return call.body["request"]

def wants_stream(content: bytes) -> bool:
    """A JSON body asking for `"stream": true` gets its answer relayed as it arrives."""
    if b'"stream"' not in content:
        return False
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("stream") is True


PASS_THROUGH = PassThroughApi("pass_through", "pass_through_endpoint", (), adapter_method="pass_through", body="raw",
                              wire=RAW)

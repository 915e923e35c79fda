"""Pass-through routes: the client's request relayed to a configured target, bytes as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway_trio.adapters.base import AdapterBase, Decoder, RawBody, UpstreamRequest
from gateway_trio.adapters.replies import upstream_error_message
from gateway_trio.deployment import Deployment

# Hop-by-hop and framing headers belong to one connection, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "host", "content-length", "accept-encoding",
})


@dataclass(slots=True)
class PassThroughRequest:
    method: str
    query: str
    headers: dict[str, str]
    content: bytes = field(repr=False)


class RawDecoder(Decoder):
    """Hands on the bytes as read; the upstream's end of body is the end of the stream."""

    ends_at_eof = True

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.done = False
        self.usage_chunk: bytes | None = None

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        if data:
            out.append(data)


class PassThroughAdapter(AdapterBase):
    name = "pass_through"

    def pass_through_request(self, deployment: Deployment, body: PassThroughRequest, model: str, stream: bool) -> UpstreamRequest:
        url = deployment.api_base or ""
        if body.query:
            url = f"{url}{'&' if '?' in url else '?'}{body.query}"
        headers = {k: v for k, v in body.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.update(deployment.headers)
        return UpstreamRequest(body.method, url, headers, body.content)

    def pass_through_response(self, payload: bytes, model: str, content_type: str) -> RawBody:
        return RawBody(payload, content_type)

    def pass_through_stream(self, model: str) -> RawDecoder:
        return RawDecoder()

    def error_message(self, status: int, payload: bytes) -> str:
        return upstream_error_message(status, payload)

    def local_transport(self, deployment: Deployment) -> None:
        return None

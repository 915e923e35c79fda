"""The HTTP transport each provider actor's client uses."""

from __future__ import annotations

import httpx


def make_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncHTTPTransport(limits=limits, retries=0)

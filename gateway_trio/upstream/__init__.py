"""The HTTP client side: how the gateway talks to the upstreams it calls.

`http1` is the HTTP/1.1 codec and `http1_transport` the lean transport for plain-http
upstreams; `transport` shards httpx pools for the rest; `body` reads reply bodies (never
compressed, never over the cap); `redaction` keeps configured secrets out of what upstreams
say back.  Only bytes and sockets here, no wire formats (those are `adapters/`), so it sits
low in the house, under the deployment actors that own one client each.
"""

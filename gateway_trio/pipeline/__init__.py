"""The pipeline: the stages every `Call` passes, whatever route it came from.

`serve` runs a call to its answer (hooks, guardrails, the logging event and spend record);
`dispatch` gets the answer from a deployment actor, with routing, retries, fallbacks and
deadlines (and `mocked` answers a request's `mock_response` in place of the upstream);
`stream` carries a streamed answer after its first chunk; `headers` builds the
`x-gateway-*` headers; `shutdown` lets streams end themselves on a graceful stop; `tracing`
says what a call's OpenTelemetry spans carry.  One
pipeline for all routes is why retries, headers and cancellation behave the same everywhere;
it sits above the actors it talks to and below the routes that call it.
"""

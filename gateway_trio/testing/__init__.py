"""The outside world, for tests and benchmarks: a mock LLM upstream speaking OpenAI's and
Anthropic's real wire formats on real sockets.

It stands where a provider stands, so it imports nothing of the gateway: a test that passes
against it passes because the gateway spoke the wire correctly, not because both sides share
code.  `from gateway_trio.testing import MockUpstream, Behavior` in-process (tests), or
`python -m gateway_trio.testing --help` as its own process (the benchmark).
"""

from gateway_trio.testing.mock_upstream import FLAG_WORD, Behavior, MockUpstream, Received

__all__ = ["FLAG_WORD", "Behavior", "MockUpstream", "Received"]

"""Provider adapters by the prefix used in a deployment's `model` (`openai/gpt-4o`, ...).

An adapter is pure wire-format translation between the gateway's internal format (OpenAI's)
and one provider's: request bodies and URLs out, replies, stream events and errors back.  No
I/O happens here (the deployment actor sends what an adapter builds), so every translation is
tested without a socket, and the wing sits below the actors that use it.
"""

from __future__ import annotations

from gateway_trio.adapters.anthropic import AnthropicAdapter
from gateway_trio.adapters.azure import AzureAdapter
from gateway_trio.adapters.base import Adapter, StreamDecoder, UpstreamRequest
from gateway_trio.adapters.mock import MockAdapter
from gateway_trio.adapters.openai import OpenAIAdapter
from gateway_trio.adapters.pass_through import PassThroughAdapter

_openai = OpenAIAdapter()

PROVIDERS: dict[str, Adapter] = {
    "openai": _openai,
    "azure": AzureAdapter(),
    "anthropic": AnthropicAdapter(),
    "mock": MockAdapter(),
    "pass_through": PassThroughAdapter(),
    # Servers that speak OpenAI's API under LiteLLM's provider names, so configs port as-is.
    "hosted_vllm": _openai,
    "lm_studio": _openai,
    "ollama_chat": _openai,
}


def adapter_for(provider: str) -> Adapter:
    """The adapter for `provider`; config validation has already refused unknown names."""
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise KeyError(f"unknown provider {provider!r} (known: {', '.join(sorted(PROVIDERS))})") from None


__all__ = ["PROVIDERS", "Adapter", "StreamDecoder", "UpstreamRequest", "adapter_for"]

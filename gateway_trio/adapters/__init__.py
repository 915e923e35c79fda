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
from gateway_trio.adapters.responses_stream import ResponsesThroughChat

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


class OpenAIThroughChat(ResponsesThroughChat, OpenAIAdapter):
    """An OpenAI-compatible server without the Responses API (`[models.info] responses_api = false`)."""


class AzureThroughChat(ResponsesThroughChat, AzureAdapter):
    """An Azure deployment without the Responses API (`[models.info] responses_api = false`)."""


# Adapters with a Responses API of their own, in the form that serves it through chat instead.
THROUGH_CHAT: dict[str, Adapter] = {"openai": OpenAIThroughChat(), "azure": AzureThroughChat()}
THROUGH_CHAT |= {name: THROUGH_CHAT["openai"] for name in ("hosted_vllm", "lm_studio", "ollama_chat")}


def adapter_for(provider: str, *, responses_api: bool | None = None) -> Adapter:
    """The adapter for `provider`; config validation has already refused unknown names.

    `responses_api = False` (a deployment's `[models.info]`) serves `/v1/responses` through the
    provider's chat API, the conversation state kept by the gateway; None is the provider's way.
    """
    if responses_api is False and provider in THROUGH_CHAT:
        return THROUGH_CHAT[provider]
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise KeyError(f"unknown provider {provider!r} (known: {', '.join(sorted(PROVIDERS))})") from None


def speaks_responses(provider: str) -> bool:
    """Whether `provider`'s own API has `/v1/responses` (else the gateway translates through chat)."""
    return not isinstance(PROVIDERS[provider], ResponsesThroughChat)


__all__ = ["PROVIDERS", "Adapter", "StreamDecoder", "UpstreamRequest", "adapter_for"]

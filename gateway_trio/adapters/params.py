"""Request parameters a provider cannot honour, and how to tell that a body uses one.

A translating adapter carries over the fields its provider has a counterpart for; the rest
would vanish on the way.  Each adapter names, per call type, the fields it cannot honour, and
the pipeline refuses a call that uses one (a 400 naming it and the provider) or, with
`drop_params`, drops them and says so in the spend record.  A field counts as used unless it
is absent, null, or holds a value that asks for nothing (OpenAI's default: client libraries
send `n: 1` or `presence_penalty: 0` without thinking).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# field -> the values that ask for nothing (null always does)
Unhonoured = Mapping[str, tuple[Any, ...]]

# OpenAI chat fields the Anthropic Messages API has no counterpart for.
ANTHROPIC_CHAT: Unhonoured = {
    "seed": (),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "n": (1,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logit_bias": ({},),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "web_search_options": (),
    "functions": ([],),
    "function_call": ("none",),
    "store": (False,),
    "service_tier": ("auto",),
    "verbosity": (),
    "prompt_cache_key": (),
    "safety_identifier": (),
}

# OpenAI legacy-completions fields the same translation cannot carry.
ANTHROPIC_TEXT_COMPLETION: Unhonoured = {
    "suffix": ("",),
    "echo": (False,),
    "logprobs": (),
    "best_of": (1,),
    "seed": (),
    "n": (1,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logit_bias": ({},),
}

# Anthropic Messages fields a chat-completions upstream (OpenAI, Azure, mock) has none of.
CHAT_FROM_MESSAGES: Unhonoured = {
    "top_k": (),
    "container": (),
    "mcp_servers": ([],),
    "context_management": (),
    "service_tier": ("auto",),
}


def used_params(body: Mapping[str, Any], unhonoured: Unhonoured) -> list[str]:
    """The fields of `body` (in its order) that ask for something `unhonoured` names."""
    found: list[str] = []
    for name, value in body.items():
        idle = unhonoured.get(name)
        if idle is None or value is None:
            continue
        if not any(_same(value, default) for default in idle):
            found.append(name)
    return found


def _same(value: Any, default: Any) -> bool:
    # 0.0 is 0, but True is not 1: a boolean matches only a boolean.
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return bool(value == default)

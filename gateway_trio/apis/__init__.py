"""The client APIs the gateway speaks, one module and one `Api` object each.

`APIS` is the list the routes are registered from; pass-through routes (paths from the
config) are `PASS_THROUGH`'s.  Everything that differs between APIs is an attribute or
method of its object, so nothing outside this package asks which API a call came from.
"""

from gateway_trio.apis.base import Api
from gateway_trio.apis.chat import CHAT
from gateway_trio.apis.completions import COMPLETIONS
from gateway_trio.apis.count_tokens import COUNT_TOKENS
from gateway_trio.apis.embeddings import EMBEDDINGS
from gateway_trio.apis.images import IMAGES
from gateway_trio.apis.messages import MESSAGES
from gateway_trio.apis.moderations import MODERATIONS
from gateway_trio.apis.pass_through import PASS_THROUGH
from gateway_trio.apis.responses import RESPONSES
from gateway_trio.apis.transcriptions import TRANSCRIPTIONS

APIS: list[Api] = [CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES, MESSAGES, COUNT_TOKENS, TRANSCRIPTIONS,
                   IMAGES]

__all__ = ["APIS", "CHAT", "COMPLETIONS", "COUNT_TOKENS", "EMBEDDINGS", "IMAGES", "MESSAGES", "MODERATIONS",
           "PASS_THROUGH", "RESPONSES", "TRANSCRIPTIONS", "Api"]

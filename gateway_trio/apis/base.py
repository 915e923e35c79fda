"""What the gateway must know about a client API, in one object: `Api`.

Each module of `apis/` defines one (chat, completions, embeddings, ...), and `apis/__init__`
lists them.  The rest of the gateway never asks which API a call came from; it asks the call's
`api`: the routes it answers on, how its body is read and checked into a `Call`, how answers
are framed, which adapter method serves it, where guardrails find its texts, how its stream
is assembled into the one object logging hooks see, how a hook's refusal looks, and how a
deployment serving it is probed.  Adding an API is adding an object, in one file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gateway_trio.adapters.base import Upload
from gateway_trio.apis import checks, options
from gateway_trio.apis.slots import Slot, field_slots
from gateway_trio.apis.wires import OPENAI, Wire
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest

if TYPE_CHECKING:
    from gateway_trio.config import GatewayConfig

BodyKind = Literal["json", "multipart", "raw"]


@dataclass(slots=True)
class Form:
    """A multipart body: its plain fields and its one file, if any."""

    fields: dict[str, str]
    upload: Upload | None


class Assembler(Protocol):
    """Rebuilds a stream's whole answer, chunk by chunk, for logging hooks."""

    def add(self, payload: bytes) -> None: ...

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any] | None: ...


class Api:
    """One client API.  The defaults are OpenAI's: JSON in, `data:` frames out, `{"error"}`
    bodies.  A subclass says what differs; a plain instance serves APIs with no texts to check
    in their answers and no stream."""

    def __init__(
        self, name: str, call_type: str, paths: tuple[str, ...], *, adapter_method: str, body: BodyKind = "json",
        wire: Wire = OPENAI, streams: bool = True, x_api_key: bool = False, text_fields: tuple[str, ...] = (),
        probe: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.call_type = call_type  # LiteLLM's name, what hooks and spend records see
        self.paths = paths
        self.adapter_method = adapter_method  # adapters serve it by `<method>_request` and kin
        self.body = body
        self.wire = wire
        self.streams = streams
        self.x_api_key = x_api_key  # Anthropic's clients send the key as `x-api-key`
        self.text_fields = text_fields  # top-level fields holding the request's texts
        # (deployment mode, body without `model`) of a /health probe of deployments of that mode
        self.probe = probe

    def __repr__(self) -> str:
        return f"<Api {self.name}>"

    def configured(self, config: GatewayConfig) -> Api:
        """This API as one gateway serves it (an API whose behaviour depends on config copies
        itself with it); done once per gateway, not per call."""
        return self

    def with_changes(self, **changes: Any) -> Api:
        """A copy with some attributes changed (what `configured` returns)."""
        clone = copy.copy(self)
        clone.__dict__.update(changes)
        return clone

    # --- parsing ------------------------------------------------------------------------

    def parse(self, content: Any) -> Call:
        """A checked Call from the request's body (a dict, a `Form` or the raw request)."""
        checks.require_model(content)
        for name in self.text_fields:
            checks.require_field(content, name, (str, list), "a string or an array")
        return self.new_call(content)

    def new_call(self, body: dict[str, Any], model: str | None = None) -> Call:
        """The Call of a checked JSON body: its stream flags read, the gateway's own fields taken out."""
        if self.streams:
            stream, include_usage = checks.stream_flags(body)
        else:
            if body.get("stream"):
                raise BadRequest(f"'stream' is not supported on {self.call_type} requests", param="stream")
            stream = include_usage = False
        call = Call(self, model if model is not None else checks.require_model(body), body, stream, include_usage)
        options.take_options(call)
        return call

    def upstream_body(self, call: Call) -> Any:
        """What the adapter translates: the body itself, for most APIs."""
        return call.body

    def reply_usage(self, call: Call, body: Any, usage: dict[str, Any] | None) -> dict[str, Any] | None:
        """The usage a whole answer is accounted by: the tokens the upstream reported, for
        most APIs; one priced by something else (images) counts that too."""
        return usage

    # --- texts for guardrails -------------------------------------------------------------

    def request_slots(self, body: Any) -> list[Slot]:
        slots: list[Slot] = []
        for name in self.text_fields:
            slots.extend(field_slots(body, name))
        return slots

    def response_slots(self, body: Any) -> list[Slot]:
        return []

    def chunk_slots(self, chunk: Any) -> list[Slot]:
        """The text a stream chunk adds."""
        return []

    def is_closing_event(self, chunk: Any) -> bool:
        """Typed-event formats close with events that repeat the whole text or mark success;
        a post-call check at the end of the stream must be able to withhold them."""
        return False

    def closing_slots(self, event: Any) -> list[Slot]:
        """The whole text a closing event repeats."""
        return []

    # --- answers ----------------------------------------------------------------------------

    def assembler(self) -> Assembler | None:
        """A fresh assembler of this API's stream, or None for an API that does not stream."""
        return None

    def refusal_body(self, call: Call, text: str) -> dict[str, Any] | None:
        """The answer a pre-call hook's refusal `text` becomes, or None: refused with a 400."""
        return None

    def refusal_chunks(self, call: Call, text: str) -> list[bytes] | None:
        """The same refusal as a stream's chunk payloads, or None: refused with a 400."""
        return None

    # --- conversation state the gateway keeps (the Responses API's, for chat-only deployments) ---

    def stored_response_id(self, call: Call) -> str | None:
        """The id of the stored conversation this call continues, or None."""
        return None

    def resume(self, call: Call, items: list[Any]) -> None:
        """Put the stored conversation's `items` before the call's own input."""

    def keeps(self, call: Call) -> bool:
        """Whether the gateway stores this call's answer (to be continued later)."""
        return False

    def kept_items(self, call: Call, response: dict[str, Any]) -> tuple[str, list[Any]] | None:
        """(the response id, the conversation's items) to store after a success, or None."""
        return None

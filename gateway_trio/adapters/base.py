"""What every provider adapter offers: pure translation between our wire format and its own.

The gateway speaks OpenAI's chat-completions format internally.  An adapter turns a request
body into the `UpstreamRequest` its provider expects, and turns the provider's answer back:
a JSON body into a `chat.completion` dict, and raw stream bytes into `chat.completion.chunk`
payloads through a stateful `StreamDecoder`.  Adapters do no I/O, so they are unit-tested
with `httpx.MockTransport` and the real wire formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

from gateway_trio.adapters.params import Unhonoured, used_params
from gateway_trio.adapters.sse import SSEParser
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest

# The adapter methods whose answers may not be JSON: their `_response` methods get the content type.
RAW_CAPABLE = frozenset({"transcription", "pass_through"})
# The adapter methods whose answers are no generation (a token count): they use no tokens.
UNCOUNTED = frozenset({"count_tokens"})
NO_TOKENS = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
# Characters that end, escape or climb out of a URL path segment, wherever a server decodes them.
_NOT_IN_SEGMENT = frozenset("/\\?#%")


def path_segment(name: str, param: str = "model") -> str:
    """`name` quoted as one URL path segment, refused if it could name any other path.

    A model name reaches a URL path (Azure's `/deployments/{name}/`) from a client through
    wildcards; quoting alone leaves `..` and `.`, which URL normalisation resolves upward.
    """
    if name in ("", ".", "..") or not name.isprintable() or not _NOT_IN_SEGMENT.isdisjoint(name):
        raise BadRequest(
            f"'{param}' cannot name a deployment: {name!r} is empty, '.' or '..', or holds one of / \\ ? # %"
            " or a control character", param=param,
        )
    return quote(name, safe="")


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    content: bytes = b""
    # Transport-level extras (timeouts etc.) stay out: the deployment actor owns those.
    extensions: dict[str, Any] = field(default_factory=dict)
    # The answer itself, when the adapter can give it without the network (a token-count
    # estimate for a provider that has no counting endpoint): nothing is sent.
    local_answer: bytes | None = None


def with_client_headers(headers: dict[str, str], client: Mapping[str, str]) -> dict[str, str]:
    """`headers` plus the client's; a name both set carries both values, comma-joined (a
    deployment's own `anthropic-beta` features and the client's alike)."""
    merged = dict(headers)
    lowered = {name.lower(): name for name in merged}
    for name, value in client.items():
        present = lowered.get(name)
        if present is None:
            merged[name] = value
        elif value not in merged[present].split(","):
            merged[present] = f"{merged[present]},{value}"
    return merged


@dataclass(slots=True)
class RawBody:
    """An upstream answer passed on as it came (e.g. a transcription asked for as text)."""

    content: bytes
    content_type: str


@dataclass(slots=True)
class Upload:
    """A multipart file upload (audio transcription) as the route read it."""

    fields: dict[str, str]
    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


class StreamDecoder(Protocol):
    """Turns the upstream's raw stream bytes into the payloads the client gets.

    `feed_into` takes bytes exactly as read from the socket (events may be split anywhere) and
    appends the complete payloads (JSON bytes, no `data: ` framing) to `out`.  It raises
    `UpstreamError` on an error event or a chunk it cannot parse; what it appended before that
    stays in `out`, so the events ahead of a fault in the same read still reach the client.
    `usage` holds the latest usage seen (OpenAI shape: prompt_tokens, completion_tokens,
    total_tokens); `done` turns true once the upstream marked the end of its stream.
    """

    usage: dict[str, Any] | None
    done: bool

    def feed_into(self, data: bytes, out: list[bytes]) -> None: ...

    def limit_event_size(self, max_bytes: int) -> None: ...


class Decoder:
    """What every stream decoder shares: `feed`, the list-returning form of `feed_into`."""

    __slots__ = ()  # subclasses that declare slots keep them
    _parser: SSEParser | None = None  # the framing of a decoder that reads SSE

    def feed_into(self, data: bytes, out: list[bytes]) -> None:
        raise NotImplementedError

    def limit_event_size(self, max_bytes: int) -> None:
        """Cap the one incomplete event the decoder may hold back (a decoder without SSE
        framing holds none)."""
        if self._parser is not None:
            self._parser.max_event_bytes = max_bytes

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.feed_into(data, out)
        return out


class SSEDecoder(Decoder):
    """A decoder reading an upstream's server-sent events, with the state every one reports:
    the usage once known, a held-back usage-only chunk (only OpenAI chat streams have one),
    and whether the stream has ended."""

    __slots__ = ("usage", "usage_chunk", "done", "_parser")

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.usage_chunk: bytes | None = None
        self.done = False
        self._parser = SSEParser()


class Adapter(Protocol):
    name: str

    def chat_request(
        self, deployment: Deployment, body: dict[str, Any], model: str, stream: bool
    ) -> UpstreamRequest:
        """Build the upstream request for an OpenAI chat body sent to `model`.

        When `stream` is true the adapter asks the upstream for usage in the stream.
        """

    def chat_response(self, payload: bytes, model: str) -> dict[str, Any]:
        """Parse a successful non-streaming answer into an OpenAI `chat.completion` dict."""

    def chat_stream(self, model: str) -> StreamDecoder:
        """A fresh decoder for one streaming answer."""

    def error_message(self, status: int, payload: bytes) -> str:
        """A short client-safe description of an upstream error answer."""

    # Client request headers (lower-case) the provider's API reads, passed on as sent.
    client_headers: frozenset[str]

    def unsupported_params(self, method: str, body: Mapping[str, Any]) -> list[str]:
        """The fields of `body` this provider cannot honour for call type `method`."""


class AdapterBase:
    """Dispatch by call type to the `<prefix>_request/_response/_stream` methods an adapter has.

    A provider without a method for a call type refuses it with a clear 400, for example
    embeddings on an Anthropic deployment.
    """

    name: str = "base"
    client_headers: frozenset[str] = frozenset()
    # adapter method -> the request fields the provider cannot honour (see adapters/params.py)
    unhonoured: ClassVar[Mapping[str, Unhonoured]] = {}

    def unsupported_params(self, method: str, body: Mapping[str, Any]) -> list[str]:
        table = self.unhonoured.get(method)
        return used_params(body, table) if table else []

    def _method(self, method: str, suffix: str) -> Any:
        """`<method>_<suffix>`: an API names the adapter methods that serve it (`chat_request`)."""
        found = getattr(self, f"{method}_{suffix}", None)
        if found is None:
            raise BadRequest(f"{self.name} deployments do not serve {method.replace('_', ' ')} requests", param="model")
        return found

    def request(self, method: str, deployment: Deployment, body: Any, model: str, stream: bool) -> UpstreamRequest:
        return self._method(method, "request")(deployment, body, model, stream)

    def response(self, method: str, payload: bytes, model: str, content_type: str = "application/json") -> Any:
        """A dict in the route's wire format, or a `RawBody`."""
        found = self._method(method, "response")
        if method in RAW_CAPABLE:
            return found(payload, model, content_type)
        return found(payload, model)

    def stream(self, method: str, model: str, *, max_event_bytes: int | None = None) -> StreamDecoder:
        decoder = self._method(method, "stream")(model)
        if max_event_bytes is not None:
            decoder.limit_event_size(max_event_bytes)
        return decoder

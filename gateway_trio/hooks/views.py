"""The response objects hooks receive: LiteLLM's classes, by name and by behaviour.

Hooks written for LiteLLM read `response.choices[0].message.content`, `response["usage"]`,
`dict(response)`, set `response._hidden_params["additional_headers"]`, test
`isinstance(response, ModelResponse)` and hand the object to `litellm.completion_cost`, which
reads it as a dict.  So every object here *is* a dict (a subclass) holding the answer in the
route's own wire shape, with attribute access on top; `orjson` and `json` encode it as it is.

Built only when a hook is there to look, and lazily: a nested dict or list becomes an object of
its LiteLLM class (`Choices`, `Message`, `Usage`, ...) the first time it is read, and is stored
back in its place, so an edit through any object lands in the answer the gateway sends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import orjson


class LiteLLMObject(dict):  # type: ignore[type-arg]
    """A dict read like LiteLLM's pydantic objects: `obj.key` and `obj["key"]` alike.

    `_fields` are the names LiteLLM's class declares: absent, they read as None (as an unset
    pydantic field does); any other absent name is an AttributeError.  `_children` name the
    class of a nested dict (or of the items of a nested list) by its key.
    """

    __slots__ = ()
    _fields: ClassVar[frozenset[str]] = frozenset()
    _children: ClassVar[Mapping[str, type[LiteLLMObject]]] = MappingProxyType({})

    # --- attribute access over the items --------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # copy, pickle and friends probe dunders: never items
        if dict.__contains__(self, name):
            return self[name]
        if name in self._fields:
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SLOTTED:
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    # --- item access, adopting nested plain values on first read ---------------------------

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        kind = type(value)
        if kind is dict or kind is list:
            value = self._adopt(key, value)
        return value

    def _adopt(self, key: str, value: dict[str, Any] | list[Any]) -> Any:
        cls = self._children.get(key, LiteLLMObject)
        adopted: Any = cls(value) if type(value) is dict else LiteLLMList(value, cls)
        dict.__setitem__(self, key, adopted)
        return adopted

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if dict.__contains__(self, key) else default

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[key] for key in self]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(key, self[key]) for key in self]

    # --- pydantic's and openai's names for "the plain data" ---------------------------------

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """A plain, deep copy: safe to keep or change without touching the answer."""
        return plain(self)

    def dict(self, **_: Any) -> dict[str, Any]:  # pydantic v1's name (LiteLLM still calls it)
        return plain(self)

    def to_dict(self, **_: Any) -> dict[str, Any]:
        return plain(self)

    def json(self, **_: Any) -> dict[str, Any]:  # LiteLLM's objects answer a dict here, not a str
        return plain(self)

    def model_dump_json(self, **_: Any) -> str:
        return orjson.dumps(self, default=str).decode()

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in dict.items(self))
        return f"{type(self).__name__}({fields})"


class LiteLLMList(list):  # type: ignore[type-arg]
    """A list whose dict items are read as `item_class` objects, adopted on first read."""

    __slots__ = ("_item_class",)

    def __init__(self, items: list[Any], item_class: type[LiteLLMObject] = LiteLLMObject) -> None:
        super().__init__(items)
        self._item_class = item_class

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = list.__getitem__(self, index)
        kind = type(value)
        if kind is dict:
            value = self._item_class(value)
            list.__setitem__(self, index, value)
        elif kind is list:
            value = LiteLLMList(value, self._item_class)
            list.__setitem__(self, index, value)
        return value

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (LiteLLMList, (list(list.__iter__(self)), self._item_class))


class LiteLLMResponse(LiteLLMObject):
    """A whole answer (or one stream chunk): the body plus `_hidden_params`.

    `_hidden_params` carries what is not part of the body, as LiteLLM's does: the provider
    (`custom_llm_provider`, what `litellm.completion_cost` prices by), the deployment, the
    cost, and `additional_headers` a hook wants on the HTTP response.
    """

    __slots__ = ("_hidden_params",)

    def __init__(
        self, data: Mapping[str, Any] | None = None, hidden_params: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(data or {}, **fields)
        object.__setattr__(self, "_hidden_params", hidden_params if hidden_params is not None else {})

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (type(self), (dict(dict.items(self)), self._hidden_params))


_SLOTTED = frozenset({"_hidden_params"})


def _fields(*names: str) -> frozenset[str]:
    return frozenset(names)


def _named(**classes: type[LiteLLMObject]) -> Mapping[str, type[LiteLLMObject]]:
    return MappingProxyType(classes)


# --- the nested classes, LiteLLM's names ------------------------------------------------------


class Function(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("name", "arguments")


class ChatCompletionMessageToolCall(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("id", "type", "function")
    _children = _named(function=Function)


class Message(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("content", "role", "tool_calls", "function_call", "refusal", "audio", "reasoning_content")
    _children = _named(tool_calls=ChatCompletionMessageToolCall, function_call=Function)


class Delta(Message):
    __slots__ = ()


class Choices(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("finish_reason", "index", "message", "logprobs")
    _children = _named(message=Message)


class StreamingChoices(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("finish_reason", "index", "delta", "logprobs")
    _children = _named(delta=Delta)


class TextChoices(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("finish_reason", "index", "text", "logprobs")


class Usage(LiteLLMObject):
    __slots__ = ()
    _fields = _fields(
        "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"
    )


class ResponseAPIUsage(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("input_tokens", "output_tokens", "total_tokens", "input_tokens_details", "output_tokens_details")


class AnthropicUsage(LiteLLMObject):
    __slots__ = ()
    _fields = _fields("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


# --- the answers, one class per route's native shape -------------------------------------------


class ModelResponse(LiteLLMResponse):
    """A chat completion (`chat.completion`)."""

    __slots__ = ()
    _fields = _fields("id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier")
    _children = _named(choices=Choices, usage=Usage)


class ModelResponseStream(LiteLLMResponse):
    """One stream chunk: a `chat.completion.chunk`, or another route's stream event as it came."""

    __slots__ = ()
    _fields = _fields("id", "object", "created", "model", "choices", "usage", "system_fingerprint")
    _children = _named(choices=StreamingChoices, usage=Usage)


class TextCompletionResponse(LiteLLMResponse):
    """A text completion (`text_completion`)."""

    __slots__ = ()
    _fields = _fields("id", "object", "created", "model", "choices", "usage", "system_fingerprint")
    _children = _named(choices=TextChoices, usage=Usage)


class EmbeddingResponse(LiteLLMResponse):
    """An embeddings answer (`list` of `embedding`)."""

    __slots__ = ()
    _fields = _fields("object", "data", "model", "usage")
    _children = _named(usage=Usage)


class ResponsesAPIResponse(LiteLLMResponse):
    """A Responses API answer (`response`)."""

    __slots__ = ()
    _fields = _fields(
        "id",
        "object",
        "created_at",
        "status",
        "model",
        "output",
        "usage",
        "error",
        "incomplete_details",
        "instructions",
        "metadata",
        "previous_response_id",
    )
    _children = _named(usage=ResponseAPIUsage)


class AnthropicMessagesResponse(LiteLLMResponse):
    """An Anthropic `message` (/v1/messages)."""

    __slots__ = ()
    _fields = _fields("id", "type", "role", "content", "model", "stop_reason", "stop_sequence", "usage")
    _children = _named(usage=AnthropicUsage)


class OpenAIModerationResponse(LiteLLMResponse):
    """A moderation answer (`results`)."""

    __slots__ = ()
    _fields = _fields("id", "model", "results")


class TranscriptionResponse(LiteLLMResponse):
    """A JSON audio transcription (`text`)."""

    __slots__ = ()
    _fields = _fields("text", "language", "duration", "words", "segments", "usage")
    _children = _named(usage=Usage)


_BY_OBJECT: dict[str, type[LiteLLMResponse]] = {
    "chat.completion": ModelResponse,
    "chat.completion.chunk": ModelResponseStream,
    "text_completion": TextCompletionResponse,
    "list": EmbeddingResponse,
    "response": ResponsesAPIResponse,
}


def response_class(body: Mapping[str, Any]) -> type[LiteLLMResponse]:
    """The LiteLLM class of an answer, told by its own shape (so every route gets its own)."""
    kind = _BY_OBJECT.get(body.get("object"))  # type: ignore[arg-type]
    if kind is not None:
        return kind
    if body.get("type") == "message":
        return AnthropicMessagesResponse
    if "results" in body:
        return OpenAIModerationResponse
    if "text" in body:
        return TranscriptionResponse
    return ModelResponse


def response_object(body: Mapping[str, Any], hidden_params: dict[str, Any] | None = None) -> LiteLLMResponse:
    """The object hooks are handed for `body`: a shallow copy of its top level, of its class."""
    return response_class(body)(body, hidden_params)


def plain(value: Any) -> Any:
    """Plain dicts and lists all the way down (what `model_dump` answers)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in dict.items(value)}
    if isinstance(value, list):
        return [plain(item) for item in list.__iter__(value)]
    return value


def unwrap(value: Any) -> Any:
    """What a hook handed back, as data the gateway can encode: our objects are dicts already
    (sent as they are, edits included); another library's pydantic model is dumped."""
    if isinstance(value, (dict, list)):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    return value


__all__ = [
    "AnthropicMessagesResponse",
    "AnthropicUsage",
    "ChatCompletionMessageToolCall",
    "Choices",
    "Delta",
    "EmbeddingResponse",
    "Function",
    "LiteLLMObject",
    "Message",
    "ModelResponse",
    "ModelResponseStream",
    "OpenAIModerationResponse",
    "ResponseAPIUsage",
    "ResponsesAPIResponse",
    "StreamingChoices",
    "TextChoices",
    "TextCompletionResponse",
    "TranscriptionResponse",
    "Usage",
    "response_object",
    "unwrap",
]

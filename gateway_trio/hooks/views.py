"""Views for hooks: response objects over plain dicts, read like LiteLLM's objects.

Hooks written for LiteLLM read `response.choices[0].message.content` and set
`response._hidden_params["additional_headers"]`.  These views give that over the gateway's
plain dicts without copying them: an edit through a view edits the dict the gateway sends.
They are built only when a hook is there to look.
"""

from __future__ import annotations

from typing import Any, Iterator


def wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return AttrDict(value)
    if isinstance(value, list):
        return AttrList(value)
    return value


def unwrap(value: Any) -> Any:
    """The plain data behind a view, a pydantic model or a plain value."""
    if isinstance(value, (AttrDict, AttrList)):
        return value._data
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    return value


class AttrDict:
    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        try:
            return wrap(self._data[name])
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = unwrap(value)

    def __getitem__(self, key: str) -> Any:
        return wrap(self._data[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = unwrap(value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return self._data == unwrap(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def get(self, key: str, default: Any = None) -> Any:
        return wrap(self._data.get(key, default))

    def keys(self) -> Any:
        return self._data.keys()

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, wrap(v)) for k, v in self._data.items())

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return self._data

    def dict(self) -> dict[str, Any]:
        return self._data

    def json(self, **_: Any) -> dict[str, Any]:
        return self._data


class AttrList:
    __slots__ = ("_data",)

    def __init__(self, data: list[Any]) -> None:
        self._data = data

    def __getitem__(self, index: int) -> Any:
        return wrap(self._data[index])

    def __setitem__(self, index: int, value: Any) -> None:
        self._data[index] = unwrap(value)

    def __iter__(self) -> Iterator[Any]:
        return (wrap(v) for v in self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return self._data == unwrap(other)

    def __repr__(self) -> str:
        return f"AttrList({self._data!r})"

    def append(self, value: Any) -> None:
        self._data.append(unwrap(value))


class ModelResponse(AttrDict):
    """A whole answer (or one stream chunk) as hooks see it.

    `_hidden_params` carries what is not part of the body: the provider, the deployment, and
    `additional_headers` a hook wants on the HTTP response.
    """

    __slots__ = ("_hidden_params",)

    def __init__(self, data: dict[str, Any], hidden_params: dict[str, Any] | None = None) -> None:
        super().__init__(data)
        object.__setattr__(self, "_hidden_params", hidden_params if hidden_params is not None else {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_hidden_params":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


class ModelResponseStream(ModelResponse):
    """One `chat.completion.chunk` as hooks see it."""

    __slots__ = ()

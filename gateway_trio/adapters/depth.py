"""How deep JSON may nest: what the gateway accepts, from clients and upstreams, is what it can send on.

orjson reads JSON nested 1,024 levels deep but writes only about 254: a body in between would
be accepted, then fail to encode for the upstream (or for the client).  Request bodies and
upstream replies are both held to `MAX_JSON_DEPTH`, with room to spare for the levels the
adapters' translations add.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_JSON_DEPTH = 128
ORJSON_READ_DEPTH = 1024


def _writable_depth() -> int:
    """How many levels of nesting orjson writes (254 in orjson 3)."""
    depth, value = 1, []
    while depth < ORJSON_READ_DEPTH:
        try:
            orjson.dumps([value])
        except orjson.JSONEncodeError:
            break
        depth, value = depth + 1, [value]
    return depth


class DepthCheck:
    """Whether a parsed body nests deeper than `limit` levels, found at orjson's speed.

    orjson refuses to write more than a fixed number of levels, and everything `orjson.loads`
    returns it can write but for depth: encoding the body at the bottom of a ready-made stack
    of lists fails exactly when the body needs more levels than the stack leaves.  That costs
    about a fifth of the parse; walking the body in Python would cost more than the parse.
    The stack is shared: safe because `orjson.dumps` never lets another task or thread run.
    """

    def __init__(self, limit: int) -> None:
        spare = _writable_depth() - limit
        if spare < 1:
            raise RuntimeError(f"orjson cannot write JSON nested {limit} levels deep")
        self._bottom: list[Any] = []
        top = self._bottom
        for _ in range(spare - 1):
            top = [top]
        self._top = top

    def too_deep(self, value: Any) -> bool:
        self._bottom.append(value)
        try:
            orjson.dumps(self._top)
        except orjson.JSONEncodeError:
            return True
        finally:
            self._bottom.clear()
        return False


_check = DepthCheck(MAX_JSON_DEPTH)


def too_deep(value: Any) -> bool:
    """Whether `value` (anything `orjson.loads` returned) nests deeper than `MAX_JSON_DEPTH`."""
    return _check.too_deep(value)

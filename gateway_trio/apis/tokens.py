"""A cheap guess at a request's prompt tokens, for the checks made before any upstream answers.

The context-window check of dispatch, the tpm counting of deployments and admission's
worst-case reservation all need a number before the upstream reports usage; they share this
one so that a limit and a budget agree on what a request weighs.  Four characters a token
over the JSON of the prompt overestimates English text a little, which is the safe side for
every one of them.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """A cheap upper-bound guess (4 characters a token) at the prompt of `body`."""
    text = body.get("messages") or body.get("input") or body.get("prompt") or ""
    return len(orjson.dumps(text)) // 4

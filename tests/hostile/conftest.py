"""Fixtures of the hostile suite: a `hostile` factory starting a scripted upstream."""

from __future__ import annotations

from typing import Callable

import pytest

from hostile.hostile_upstream import HostileUpstream, Script


@pytest.fixture
def hostile(nursery) -> Callable[[Script], "HostileUpstream"]:
    """`await hostile(script)` starts a HostileUpstream on 127.0.0.1 for the test's lifetime."""

    async def start(script: Script) -> HostileUpstream:
        upstream = HostileUpstream(script)
        await nursery.start(upstream.serve)
        return upstream

    return start

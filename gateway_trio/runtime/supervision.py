"""Supervision: restart a crashing actor with backoff; stop and report one that keeps crashing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import trio

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SupervisedState:
    name: str
    crashes: int = 0
    restarts: int = 0
    stopped: bool = False  # gave up after too many crashes
    finished: bool = False  # returned on its own


async def supervise(
    name: str,
    run: Callable[[], Awaitable[Any]],
    state: SupervisedState,
    *,
    max_crashes: int = 5,
    window_s: float = 60.0,
    backoff_s: float = 0.1,
    max_backoff_s: float = 10.0,
) -> None:
    """Run `run()` until it returns; on a crash, log, count, wait and start it again.

    More than `max_crashes` crashes within `window_s` stops it for good (reported in the log
    and in `state`); the gateway itself carries on.
    """
    recent: list[float] = []
    delay = backoff_s
    while True:
        try:
            await run()
        except Exception:
            state.crashes += 1
            now = trio.current_time()
            recent = [t for t in recent if now - t < window_s] + [now]
            if len(recent) > max_crashes:
                state.stopped = True
                log.error("actor %s crashed %d times in %.0f s: stopped", name, len(recent), window_s, exc_info=True)
                return
            log.warning("actor %s crashed; restarting in %.2f s", name, delay, exc_info=True)
            await trio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
            state.restarts += 1
            continue
        state.finished = True
        return

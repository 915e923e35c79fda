"""Event-loop stalls: who held the loop, found at no cost per task step.

A task that holds the event loop (a `time.sleep` in an async hook, a CPU-bound loop) delays
every call in the process, and `/health` with them, without a trace.  The watchdog makes it
visible: counted in `/metrics` (`gateway_event_loop_stalls`, the longest stall) and logged
with the task, the hook or other user code, and the line that held the loop.

Two halves.  On the loop, a trio instrument hears only `after_io_wait` and `before_io_wait`:
trio calls them once per pass of its scheduler, around its look at I/O, and between them it
runs one batch of task steps.  A batch that takes `threshold_s` or more is a stall (nearly
always one task holding the loop; under extreme load, many).  Off the loop, a watchdog thread
looks every half threshold; when a batch has been running half the threshold, the loop is
held right now, and the thread takes a snapshot of the loop thread's stack
(`sys._current_frames`): the task's root coroutine, the innermost user code it runs (hook
methods, callback functions, actors, guardrails: their code objects are known at start-up)
and the innermost line.  The instrument logs the stall with that snapshot when it ends.

Why not `before_task_step`/`after_task_step`: those run on every task step.  Measured on
100,000 task steps (trio 0.35, this machine): a no-op step instrument adds 0.7-0.9 µs a step
(+29-36 %), one that times each step 1.0-1.7 µs (+45-65 %).  The I/O-wait hooks run once per
batch (a batch holds every task ready at the time) and an idle loop adds no wake-up at all; a
heartbeat task instead would wake the loop 20 times a second (about 1 % of a core here).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any, Iterable

import trio

log = logging.getLogger(__name__)

TRIO_RUN = ("unrolled_run", "_core/_run.py")  # trio's scheduler: the frame that steps each task


@dataclass(frozen=True, slots=True)
class Holder:
    """What held the loop, from one snapshot of its thread's stack."""

    task: str  # the task's root coroutine and its file, or "no task" (the scheduler, a GC pause)
    code: str | None  # the innermost known user code on the stack (a hook method, ...)
    where: str  # the innermost line

    def describe(self) -> str:
        code = f", in {self.code}" if self.code else ""
        return f"task {self.task}{code}, at {self.where}"


class StallWatch(trio.abc.Instrument):
    def __init__(self, threshold_s: float, *, user_code: dict[CodeType, str] | None = None) -> None:
        self.threshold_s = threshold_s
        self.user_code = user_code or {}
        self.stalls = 0
        self.longest_s = 0.0
        self.last: Holder | None = None  # what held the loop in the latest stall
        # Written by the loop, read by the watchdog thread (plain attributes: the GIL suffices).
        self._batch_began = time.monotonic()
        self._in_batch = False
        self._snapshot: tuple[float, Holder] | None = None  # (the batch it belongs to, holder)
        self._stop = threading.Event()
        self._loop_thread = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the loop this task runs on, until cancelled."""
        self._loop_thread = threading.get_ident()
        trio.lowlevel.add_instrument(self)
        threading.Thread(target=self._watch, name="gateway-stall-watchdog", daemon=True).start()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            trio.lowlevel.remove_instrument(self)
            self._stop.set()

    # --- the loop's side: once per scheduler pass -------------------------------------------

    def after_io_wait(self, timeout: float) -> None:
        self._batch_began = time.monotonic()
        self._in_batch = True

    def before_io_wait(self, timeout: float) -> None:
        self._in_batch = False
        took = time.monotonic() - self._batch_began
        if took >= self.threshold_s:
            self._count(took)

    def _count(self, took: float) -> None:
        snapshot = self._snapshot
        holder = snapshot[1] if snapshot is not None and snapshot[0] == self._batch_began else None
        self.stalls += 1
        self.longest_s = max(self.longest_s, took)
        self.last = holder
        log.warning(
            "event loop stalled for %.0f ms (%d stalls so far): %s", took * 1000, self.stalls,
            holder.describe() if holder else "no snapshot of who held it",
        )

    # --- the watchdog thread --------------------------------------------------------------

    def _watch(self) -> None:
        half = self.threshold_s / 2
        while not self._stop.wait(half):
            began = self._batch_began
            if not self._in_batch or time.monotonic() - began < half:
                continue
            if self._snapshot is None or self._snapshot[0] != began:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._snapshot = (began, self.holder(frame))

    def holder(self, frame: FrameType) -> Holder:
        """Name the task, the user code and the line at the top of a stack."""
        where = f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
        code: str | None = None
        task = "no task"
        current: FrameType | None = frame
        while current is not None:
            if code is None:
                code = self.user_code.get(current.f_code)
            outer = current.f_back
            if outer is not None and _is_trio_run(outer.f_code):
                task = f"{current.f_code.co_qualname} ({_short(current.f_code.co_filename)})"
                break
            current = outer
        return Holder(task, code, where)


def user_code_of(objects: Iterable[tuple[str, Any]], *, skip: tuple[type, ...] = ()) -> dict[CodeType, str]:
    """The code of operator-named objects, named as logs name them: functions (callbacks,
    actors) by their name, instances (hooks, guardrails) by the methods of their classes
    (`name.method`), leaving out the classes in `skip` (the no-op bases)."""
    named: dict[CodeType, str] = {}
    for name, obj in objects:
        code = _code(obj)
        if code is not None:
            named[code] = name
            continue
        for cls in type(obj).__mro__:
            if cls is object or cls in skip:
                continue
            for attribute, member in vars(cls).items():
                member_code = _code(member)
                if member_code is not None:
                    named.setdefault(member_code, f"{name}.{attribute}")
    return named


def _code(obj: Any) -> CodeType | None:
    function = getattr(obj, "__func__", obj)  # staticmethod, classmethod, bound method
    code = getattr(function, "__code__", None)
    return code if isinstance(code, CodeType) else None


def _is_trio_run(code: CodeType) -> bool:
    return code.co_name == TRIO_RUN[0] and code.co_filename.endswith(TRIO_RUN[1])


def _short(path: str) -> str:
    return "/".join(path.rsplit("/", 2)[-2:])

"""The spend writer actor: batches spend records into the store, off the request path.

`submit` is called once per request, so it is one `send_nowait` and a counter: a full inbox
drops the record and counts it rather than slowing a request.  The actor owns the store and a
`CapacityLimiter(1)`; every store call runs in a worker thread under that limiter, so sqlite is
touched by one thread at a time and the event loop never waits on a disk.

Records are numbered in the order they are accepted (the inbox is FIFO).  `_resolved` is a
watermark: every record numbered at or below it has been written or counted as dropped.
`flush()` waits for the watermark to pass the number it saw when called.

A record the store refuses for what it holds (the store tells those from its own failures)
is counted as unwritable and logged with its call id; only the store's failures are retried.

While the store fails (the database is away), records wait in `_pending` up to its bound;
with a `spool` (spend/spool.py) what exceeds it, and what is left at shutdown, is appended to
a local file instead of dropped, and replayed once a write succeeds again (and at start, for
files a stopped process left).  A spooled record counts as resolved for `flush()`: it is safe
on disk.  The store keeps one row per call id, so a replay after a lost commit never doubles.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import trio

from gateway_trio.runtime import turns
from gateway_trio.spend.records import SpendRecord
from gateway_trio.spend.spool import Spool
from gateway_trio.spend.store import GroupBy, SpendStore

log = logging.getLogger(__name__)

T = TypeVar("T")

SHUTDOWN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
# Between write attempts during shutdown, when there is no flush interval left to wait out.
SHUTDOWN_RETRY_PAUSE_S = 0.2
SPILL_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class SpendCounters:
    """What the spend writer has counted, at one moment (for `/metrics`)."""

    written: int
    dropped: int
    failed_writes: int
    unwritable: int
    spooled: int = 0
    replayed: int = 0


class SpendWriter:
    def __init__(
        self,
        store: Callable[[], SpendStore],
        flush_interval_s: float,
        *,
        batch_size: int = 256,
        inbox_size: int = 10_000,
        shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
        limiter: trio.CapacityLimiter | None = None,
        spool: Spool | None = None,
    ) -> None:
        """`limiter`: the one of every other user of the store's connection (one thread at a time on it).
        `spool`: where records go while the store fails and `_pending` is full (else the oldest are dropped)."""
        if flush_interval_s <= 0 or batch_size < 1 or inbox_size < 1:
            raise ValueError("flush_interval_s must be > 0, batch_size and inbox_size >= 1")
        # An opener, not a url: opening migrates the database, which is the control plane's
        # (`control.database.spend_store_opener` checks a url at once, so a bad one fails at start-up).
        self._open_store = store
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        # Records held while the store fails; never less than a batch, or a healthy writer
        # with a small inbox would drop while filling one.
        self.max_pending = max(inbox_size, batch_size)
        self.shutdown_timeout_s = shutdown_timeout_s
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0
        self.unwritable = 0  # records the store refused for what they hold: logged, never retried
        self._send, self._inbox = trio.open_memory_channel[SpendRecord](inbox_size)
        self._limiter = limiter if limiter is not None else trio.CapacityLimiter(1)
        self._store: SpendStore | None = None
        self._pending: deque[SpendRecord] = deque()
        self._accepted = 0  # records that got into the inbox
        self._received = 0  # records taken out of it
        self._resolved = 0  # watermark: written or dropped
        self._flush_target = 0
        self._progress = trio.Event()
        self._collecting: trio.CancelScope | None = None
        self._spool = spool
        # Claimed spool files still to replay, with how far each is done (bytes).
        self._replays: deque[tuple[str, int]] = deque()
        self._spool_dirty = False  # spilled since the last replay
        self._overflow: list[SpendRecord] = []  # taken from the inbox while a write was waiting

    # --- the caller's side ---------------------------------------------------------------

    def counters(self) -> SpendCounters:
        """A frozen copy of the counters, read in one synchronous step (requests count drops in
        `submit` too, so the writer's inbox is not their only way in)."""
        spool = self._spool
        return SpendCounters(
            self.written, self.dropped, self.failed_writes, self.unwritable,
            spool.spooled if spool else 0, spool.replayed if spool else 0,
        )

    def submit(self, record: SpendRecord) -> bool:
        """Hand a record over without blocking; False (and counted) if it had to be dropped."""
        try:
            self._send.send_nowait(record)
        except trio.WouldBlock:
            self._count_drop("inbox full")
            return False
        except trio.BrokenResourceError:
            self._count_drop("writer stopped")
            return False
        self._accepted += 1
        return True

    async def flush(self) -> None:
        """Return once every record accepted before this call is written or counted as dropped.

        Needs the actor running; while the store is failing it waits for the retry to succeed,
        so bound it with a timeout if that matters.
        """
        target = self._accepted
        if self._resolved >= target:
            await trio.lowlevel.checkpoint()
            return
        self._flush_target = max(self._flush_target, target)
        if self._collecting is not None and self._received >= target:
            self._collecting.cancel()  # it is waiting for more records: write what it has now
        while self._resolved < target:
            await self._progress.wait()

    async def query(self, **filters: Any) -> list[dict[str, Any]]:
        """`SpendStore.query` in the store's thread.  Sees what is written, not what is pending."""
        store = self._store
        if store is None:
            raise RuntimeError("the spend writer is not running")
        return await self._in_thread(lambda: store.query(**filters))

    async def report(self, group_by: GroupBy, *, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """`SpendStore.report` in the store's thread (`/spend/report`).  Sees what is written."""
        store = self._store
        if store is None:
            raise RuntimeError("the spend writer is not running")
        return await self._in_thread(lambda: store.report(group_by, start=start, end=end))

    # --- the actor -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store, then write batches until cancelled; on cancellation write everything."""
        self._store = await self._in_thread(self._open_store)
        if self._spool is not None:
            spool = self._spool
            # Files a stopped process left (or this one, before a restart): replayed first.
            claimed = await trio.to_thread.run_sync(lambda: spool.claim(stale_claims=True))
            self._replays.extend((path, 0) for path in claimed)
        task_status.started()
        shutting_down = False
        try:
            await self._write_forever()
        except BaseException:
            # Cancelled, bare or inside a group (a write's nursery): cancellation is shutdown.
            shutting_down = trio.current_effective_deadline() == float("-inf")
            raise
        finally:
            # A crash keeps `_pending` for a supervisor's restart; a cancellation is shutdown.
            with trio.CancelScope(shield=True):
                self._take_overflow()  # what a cancelled write's wait took from the inbox
                if shutting_down:
                    with trio.move_on_after(self.shutdown_timeout_s):
                        await self._final_flush()
                    self._drain_inbox()
                    self._inbox.close()  # a late submit is counted as dropped from here on
                    if self._pending and self._spool is not None:
                        with trio.move_on_after(SPILL_TIMEOUT_S):
                            await self._spill()  # written at the next start
                    self._stop_accepting()
                await self._close_store()

    async def _write_forever(self) -> None:
        retrying = False
        while True:
            if not retrying and (self._replays or self._spool_dirty):
                retrying = not await self._replay()
            await self._collect(retrying=retrying)
            if retrying and self._must_spill():
                await self._spill()
            if self._pending:
                retrying = not await self._write_pending()
            elif retrying:  # all spooled, nothing new: the spool's replay is the retry
                retrying = not await self._replay()

    def _must_spill(self) -> bool:
        return self._spool is not None and len(self._pending) >= self.max_pending

    async def _spill(self) -> None:
        """Move `_pending` to the spool file; on a disk failure keep them (and stop spooling)."""
        spool = self._spool
        assert spool is not None
        records = list(self._pending)
        try:
            await self._receiving_meanwhile(
                lambda: trio.to_thread.run_sync(lambda: spool.append(records), abandon_on_cancel=True)
            )
        except Exception:
            log.exception("spend spool %s cannot be written; spooling stops, records past the bound "
                          "are dropped (and counted)", spool.folder)
            self._spool = None
            self._take_overflow()
            return
        self._pending.clear()
        self._take_overflow()
        self._spool_dirty = True
        self._advance(len(records))
        log.warning("database away: %d spend records spooled to %s (%d in all)", len(records), spool.own_file,
                    spool.spooled)

    async def _replay(self) -> bool:
        """Write every spool file's records; False if the store failed (the rest is replayed later).

        What arrives meanwhile is written between the spool's batches, so the live spend log
        does not wait for a long replay.
        """
        spool = self._spool
        store = self._store
        if spool is None or store is None:
            self._replays.clear()
            return True
        if self._spool_dirty:
            self._spool_dirty = False
            claimed = await trio.to_thread.run_sync(lambda: spool.claim(stale_claims=False))
            self._replays.extend((path, 0) for path in claimed)
        while self._replays:
            path, offset = self._replays[0]
            try:
                batch, next_offset = await trio.to_thread.run_sync(spool.read, path, offset, self.batch_size)
            except OSError:
                log.exception("spend spool file %s cannot be read; left in place", path)
                self._replays.popleft()
                continue
            if not batch:
                await trio.to_thread.run_sync(spool.done, path)
                self._replays.popleft()
                log.info("spend spool file replayed: %s", path)
                continue
            try:
                refused = await self._write_batch(store, batch)
            except Exception:
                self.failed_writes += 1
                log.warning("spend spool replay of %d records failed (will retry)", len(batch), exc_info=True)
                self._take_overflow()
                return False
            self._take_overflow()
            for record, error in refused:
                self._count_unwritable(record, error)
            self.written += len(batch) - len(refused)
            spool.replayed += len(batch)
            self._replays[0] = (path, next_offset)
            self._drain_inbox()
            if len(self._pending) >= self.batch_size and not await self._write_pending():
                return False
        return True

    async def _collect(self, *, retrying: bool) -> None:
        """Fill `_pending` until a batch is full, the interval is over, or `flush()` asks.

        After a failed write it waits the whole interval (still taking records, within the
        pending bound) so a broken disk is retried once per interval, not in a tight loop.
        """
        with trio.CancelScope() as scope:
            if not retrying:
                self._collecting = scope
                if not self._pending:
                    # Idle: the interval starts with the first record, not on a timer.
                    self._take(await self._inbox.receive())
            scope.deadline = trio.current_time() + self.flush_interval_s
            while retrying or (len(self._pending) < self.batch_size and not self._flush_wanted()):
                if retrying and self._must_spill():
                    break  # full while the store fails: to the spool, not dropped
                self._take(await self._inbox.receive())
        self._collecting = None

    def _flush_wanted(self) -> bool:
        return self._resolved < self._flush_target <= self._received

    def _take(self, record: SpendRecord) -> None:
        self._received += 1
        if len(self._pending) >= self.max_pending and self._spool is None:
            # The store has been failing for a while: keep the newest.  Dropping the oldest
            # keeps the watermark contiguous.
            self._pending.popleft()
            self._count_drop("store failing, pending full")
            self._advance(1)
        self._pending.append(record)

    async def _write_pending(self, *, abandon_on_cancel: bool = False) -> bool:
        """Write `_pending` in batches, oldest first; False if the store failed (records kept).

        A record the store refuses is counted and logged, and the rest of its batch written:
        one bad record never holds back those queued behind it.
        """
        store = self._store
        assert store is not None
        while self._pending:
            batch = list(islice(self._pending, self.batch_size))
            try:
                refused = await self._write_batch(store, batch, abandon_on_cancel=abandon_on_cancel)
            except Exception:
                self.failed_writes += 1
                log.warning(
                    "spend log write of %d records failed (%d pending, will retry)",
                    len(batch),
                    len(self._pending),
                    exc_info=True,
                )
                self._take_overflow()
                return False
            for _ in batch:
                self._pending.popleft()
            for record, error in refused:
                self._count_unwritable(record, error)
            self.written += len(batch) - len(refused)
            self._advance(len(batch))
            self._take_overflow()
        return True

    async def _write_batch(self, store: SpendStore, batch: list[SpendRecord], *, abandon_on_cancel: bool = False) -> list[Any]:
        """`store.write_batch(batch)` in the store's thread, taking records meanwhile.

        A write may wait as long as the pool's timeout for a database that is away; the inbox
        keeps being emptied into `_overflow` (up to the pending bound) so calls arriving
        meanwhile are kept, not dropped.  The caller moves them to `_pending` (`_take_overflow`)
        once its bookkeeping of `batch` is done.
        """
        return await self._receiving_meanwhile(
            lambda: self._in_thread(lambda: store.write_batch(batch), abandon_on_cancel=abandon_on_cancel)
        )

    async def _receiving_meanwhile(self, wait: Callable[[], Awaitable[T]]) -> T:
        """`await wait()`, emptying the inbox into `_overflow` meanwhile (see `_write_batch`)."""
        outcome: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                try:
                    outcome["value"] = await wait()
                except Exception as error:  # noqa: BLE001 - re-raised below, outside the nursery
                    outcome["error"] = error
                finally:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            await self._receive_while_writing()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    async def _receive_while_writing(self) -> None:
        """Empty the inbox into `_overflow` until cancelled; a full overflow goes to the spool."""
        while True:
            if len(self._overflow) >= self.max_pending and (self._spool is None or not await self._spill_overflow()):
                break  # no spool: the inbox fills, and then drops (counted)
            try:
                record = await self._inbox.receive()
            except (trio.ClosedResourceError, trio.EndOfChannel):
                break
            self._received += 1
            self._overflow.append(record)
        await trio.sleep_forever()

    async def _spill_overflow(self) -> bool:
        spool = self._spool
        assert spool is not None
        records, self._overflow = self._overflow, []
        try:
            # Shielded: the write this waits beside may end meanwhile, and an append cut off
            # half-way would leave records neither in memory nor known to be on disk.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(spool.append, records)
        except Exception:
            log.exception("spend spool %s cannot be written; spooling stops", spool.folder)
            self._spool = None
            self._overflow = records + self._overflow
            return False
        self._spool_dirty = True
        self._advance(len(records))
        return True

    def _take_overflow(self) -> None:
        overflow, self._overflow = self._overflow, []
        for record in overflow:
            self._received -= 1  # counted once, by `_take`
            self._take(record)

    async def _final_flush(self) -> None:
        """Write what is pending and what is still in the inbox, until both are empty."""
        while True:
            self._drain_inbox()
            if not self._pending:
                return
            if not await self._write_pending(abandon_on_cancel=True):
                await trio.sleep(SHUTDOWN_RETRY_PAUSE_S)

    def _drain_inbox(self) -> None:
        while True:
            try:
                record = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError):
                return
            self._take(record)

    def _stop_accepting(self) -> None:
        """Close the inbox, so a late submit is counted as dropped instead of lost unseen.

        What a timed-out shutdown could not write is counted as dropped too.  There is no
        checkpoint between the final drain and the close, so no record slips in between.
        """
        self._drain_inbox()
        self._inbox.close()
        lost = len(self._pending)
        if lost:
            self._pending.clear()
            self.dropped += lost
            self._advance(lost)
            log.error(
                "spend writer shut down before %d records were written; counted as dropped (%d in all)",
                lost,
                self.dropped,
            )

    async def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        # An abandoned final write may still hold the limiter: do not wait for it forever.
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            await self._in_thread(store.close, abandon_on_cancel=True)

    # --- helpers -------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[[], T], *, abandon_on_cancel: bool = False) -> T:
        async with turns.off_turn():  # a thread's wait is not the loop's CPU
            return await trio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel)

    def _advance(self, count: int) -> None:
        self._resolved += count
        self._progress.set()
        self._progress = trio.Event()

    def _count_unwritable(self, record: SpendRecord, error: Exception) -> None:
        self.unwritable += 1
        log.error(
            "spend record of call %s cannot be stored (%s: %s); counted as unwritable (%d so far), not retried",
            record.call_id, type(error).__name__, error, self.unwritable,
        )

    def _count_drop(self, reason: str) -> None:
        self.dropped += 1
        # Powers of two: the first drop is always logged and a flood cannot flood the log.
        if self.dropped & (self.dropped - 1) == 0:
            log.warning("spend writer dropped a record (%s); %d dropped so far", reason, self.dropped)

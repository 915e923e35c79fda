"""The spend spool: records the database could not take yet, on local disk (SPEC §10).

While the database is away the spend writer keeps records in memory up to its bound; beyond
it, and at shutdown, it appends them here, one JSON object per line, to a file of its own
process (`spend-<pid>.jsonl` in `[database] spool_dir`).  When the database answers again it
replays every spool file of the folder (its own, and those a stopped process left): a file is
first claimed by renaming it (so of two processes one replays it), read a batch at a time,
and deleted once all of it is written.  Replaying twice is harmless: the store keeps one row
per call id and counts its cost once.

Blocking: the writer calls it from a worker thread.  Nothing here is evaluated: a line is
JSON, turned back into a `SpendRecord` field by field; a line that does not parse is logged
and skipped.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import fields
from typing import Any

import orjson

from gateway_trio.spend.records import GuardrailRun, SpendRecord

log = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
CLAIMED_SUFFIX = ".replaying"
_FIELDS = frozenset(f.name for f in fields(SpendRecord))


def encode(record: SpendRecord) -> bytes:
    return orjson.dumps(record.as_dict(), default=str, option=orjson.OPT_NON_STR_KEYS)


def decode(line: bytes) -> SpendRecord:
    data: dict[str, Any] = orjson.loads(line)
    values = {name: value for name, value in data.items() if name in _FIELDS}
    values["guardrail_information"] = [GuardrailRun(**run) for run in values.get("guardrail_information") or []]
    return SpendRecord(**values)


class Spool:
    """The spool folder of one process."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.own_file = os.path.join(folder, f"spend-{os.getpid()}{SPOOL_SUFFIX}")
        self.spooled = 0  # records appended, for /metrics
        self.replayed = 0

    def append(self, records: list[SpendRecord]) -> None:
        """Append `records` to this process's file (made with its folder when first needed), synced."""
        if not records:
            return
        os.makedirs(self.folder, exist_ok=True)
        with open(self.own_file, "ab") as file:
            file.write(b"".join(encode(record) + b"\n" for record in records))
            file.flush()
            os.fsync(file.fileno())
        self.spooled += len(records)

    def has_files(self) -> bool:
        try:
            return any(name.endswith((SPOOL_SUFFIX, CLAIMED_SUFFIX)) for name in os.listdir(self.folder))
        except FileNotFoundError:
            return False

    def claim(self, *, stale_claims: bool) -> list[str]:
        """Rename every spool file to one of ours being replayed; the names we got.

        `stale_claims`: also take files another process was replaying when it stopped (at
        start-up: a live process replaying one too only writes rows that are kept once).
        """
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return []
        claimed = []
        for name in names:
            if not (name.endswith(SPOOL_SUFFIX) or (stale_claims and name.endswith(CLAIMED_SUFFIX))):
                continue
            target = os.path.join(self.folder, f"claim-{os.getpid()}-{uuid.uuid4().hex}{CLAIMED_SUFFIX}")
            try:
                os.rename(os.path.join(self.folder, name), target)
            except FileNotFoundError:
                continue  # another process claimed it first
            claimed.append(target)
        return claimed

    def read(self, path: str, offset: int, count: int) -> tuple[list[SpendRecord], int]:
        """Up to `count` records of the claimed file `path` from byte `offset`; the next offset."""
        records: list[SpendRecord] = []
        with open(path, "rb") as file:
            file.seek(offset)
            while len(records) < count:
                line = file.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    break  # a line cut short by a crash mid-append: nothing after it was synced
                offset = file.tell()
                try:
                    records.append(decode(line))
                except (ValueError, TypeError) as error:
                    log.error("spend spool %s: skipping a line that is not a spend record (%s)", path, error)
        return records, offset

    def done(self, path: str) -> None:
        os.unlink(path)

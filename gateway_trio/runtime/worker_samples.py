"""One Prometheus view across worker processes: each worker keeps its samples in a file of a
directory the parent made, and a scrape on any worker adds up every worker's file.

Why files and not prometheus-client's multiprocess mode: the gateway's families are built at
scrape time from its actors' snapshots (`routes.metrics`), not kept in prometheus-client's
metric objects, which that mode needs.  The cost is one small file write per worker per second
and a read of every file per scrape; no request pays anything.

Consistency: the scraped worker rewrites its own file, under the same lock as its periodic
writes, before reading the others.  So every value any scrape has shown is in that worker's file
by the time the scrape answers, and a counter never goes backwards between two scrapes that
two different workers served.  The other workers' figures are at most `interval_s` old.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import orjson
import trio
from prometheus_client.core import Metric

log = logging.getLogger(__name__)

GaugeMode = Literal["sum", "max", "min"]
# A sample's identity across workers: its name and its labels in a fixed order.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]

DIRECTORY_ENV = "GATEWAY_METRICS_DIR"  # set by the multi-worker runner for its workers
WORKERS_ENV = "GATEWAY_WORKERS"  # and how many they are: each gateway says whether limits are shared
INTERVAL_S = 1.0
# Reading or writing a few kB of JSON: one thread at a time is plenty.
FILE_LIMITER = trio.CapacityLimiter(1)


class WorkerSamples:
    """This worker's file in the shared directory, and the sum of everyone's."""

    def __init__(self, directory: str | os.PathLike[str], *, gauge_modes: Mapping[str, GaugeMode] | None = None,
                 worker: str | None = None) -> None:
        self.directory = Path(directory)
        self.own = self.directory / f"worker-{worker or os.getpid()}.json"
        self.gauge_modes = dict(gauge_modes or {})
        self._writing = trio.Lock()

    async def run(self, families: Callable[[], Awaitable[list[Metric]]], *, interval_s: float = INTERVAL_S,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write this worker's families every `interval_s` until cancelled, so a scrape served
        by another worker sees them; a failed write is logged and tried again next time."""
        await self.publish(await families())
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            try:
                await self.publish(await families())
            except OSError as error:
                log.warning("could not write this worker's metrics to %s: %s", self.own, error)

    async def publish(self, families: list[Metric]) -> None:
        """Replace this worker's file with `families`, atomically (a reader sees old or new)."""
        data = orjson.dumps([_encoded(family) for family in families])
        async with self._writing:
            await trio.to_thread.run_sync(_replace, self.own, data, limiter=FILE_LIMITER)

    async def combined(self, families: list[Metric]) -> list[Metric]:
        """`families` (this worker's, just taken) added to every other worker's last file."""
        await self.publish(families)
        others = await trio.to_thread.run_sync(self._read_others, limiter=FILE_LIMITER)
        return combine([[_encoded(family) for family in families], *others], self.gauge_modes)

    def _read_others(self) -> list[list[dict]]:
        found = []
        for path in sorted(self.directory.glob("worker-*.json")):
            if path == self.own:
                continue
            try:
                found.append(orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError) as error:  # a worker gone with its file half-cleaned
                log.warning("skipping the metrics file %s: %s", path, error)
        return found


def combine(workers: Iterable[list[dict]], gauge_modes: Mapping[str, GaugeMode]) -> list[Metric]:
    """The families of all `workers` as one: counters, histograms and summaries summed; gauges
    summed, or the largest (smallest) taken where `gauge_modes` says `max` (`min`): a longest
    stall, a deployment cooling down in any worker; a database up in every worker."""
    merged: dict[str, tuple[str, str, dict[SampleKey, float]]] = {}
    for families in workers:
        for family in families:
            name, kind = family["name"], family["type"]
            _, _, samples = merged.setdefault(name, (kind, family["help"], {}))
            mode = gauge_modes.get(name, "sum") if kind == "gauge" else "sum"
            for sample_name, labels, value in family["samples"]:
                key = (sample_name, tuple(sorted(labels.items())))
                if key not in samples:
                    samples[key] = value
                elif mode == "max":
                    samples[key] = max(samples[key], value)
                elif mode == "min":
                    samples[key] = min(samples[key], value)
                else:
                    samples[key] += value
    result = []
    for name, (kind, text, samples) in merged.items():
        metric = Metric(name, text, kind)
        for (sample_name, labels), value in samples.items():
            metric.add_sample(sample_name, dict(labels), value)
        result.append(metric)
    return result


def _encoded(family: Metric) -> dict:
    return {"name": family.name, "type": family.type, "help": family.documentation,
            "samples": [(sample.name, sample.labels, sample.value) for sample in family.samples]}


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


__all__ = ["DIRECTORY_ENV", "WORKERS_ENV", "GaugeMode", "WorkerSamples", "combine"]

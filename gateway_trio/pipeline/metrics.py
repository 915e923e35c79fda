"""What `/metrics` counts of each call, recorded once when the call finishes.

`Pipeline.finish` hands every call here with its one spend record; this folds it into
counters and fixed-bucket histograms keyed by bounded label tuples: the model group and the
deployment (both from the config), the route template (an unknown path is "other"), the status,
and the error's class (the gateway's own exception type, so a hook's exception class cannot add
series).  End-user ids only with `[metrics] end_user_labels = true`; keys never.  A scrape takes
a frozen `snapshot`; the text is built from it in `routes.metrics`.

Cost per call: a label tuple, two dictionary lookups and up to four histogram observations
(a few microseconds, see tests/unit/pipeline/test_call_metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import trio

from gateway_trio.apis import APIS
from gateway_trio.calls import Call
from gateway_trio.errors import GatewayError
from gateway_trio.runtime.histogram import Histogram, HistogramSnapshot
from gateway_trio.spend.records import SpendRecord

OTHER_ROUTE = "other"  # a path no route template names (a route added later): one series for all
NO_ERROR = "none"
INTERNAL = "InternalError"  # an exception of no gateway class: a fault of ours, whatever its type
REQUEST_LABELS = ("model_group", "model_id", "route", "status", "error_class")


class DeploymentFigures:
    """What the calls of one (model group, deployment) added up to."""

    __slots__ = (
        "fallbacks",
        "input_tokens",
        "output_tokens",
        "overhead",
        "retries",
        "spend",
        "total",
        "ttft",
        "upstream",
    )

    def __init__(self) -> None:
        self.total = Histogram()
        self.upstream = Histogram()
        self.overhead = Histogram()
        self.ttft = Histogram()
        self.input_tokens = 0
        self.output_tokens = 0
        self.spend = 0.0
        self.retries = 0
        self.fallbacks = 0


@dataclass(frozen=True, slots=True)
class DeploymentSnapshot:
    model_group: str
    model_id: str
    total: HistogramSnapshot
    upstream: HistogramSnapshot
    overhead: HistogramSnapshot
    ttft: HistogramSnapshot
    input_tokens: int
    output_tokens: int
    spend: float
    retries: int
    fallbacks: int


@dataclass(frozen=True, slots=True)
class CallMetricsSnapshot:
    """The call figures at one scrape: frozen copies, never the live counters."""

    request_labels: tuple[str, ...]
    requests: tuple[tuple[tuple[str, ...], int], ...]
    deployments: tuple[DeploymentSnapshot, ...]
    guardrail_runs: tuple[tuple[tuple[str, str, str], int], ...]  # (guardrail, mode, status)
    guardrail_durations: tuple[tuple[tuple[str, str], HistogramSnapshot], ...]  # (guardrail, mode)
    in_flight: int = 0
    started: int = 0


@dataclass(slots=True)
class CallMetrics:
    """The per-call counters and histograms of one process (see the module's docstring)."""

    routes: frozenset[str] = field(default_factory=lambda: frozenset(p for api in APIS for p in api.paths))
    end_user_labels: bool = False
    requests: dict[tuple[str, ...], int] = field(default_factory=dict)
    deployments: dict[tuple[str, str], DeploymentFigures] = field(default_factory=dict)
    guardrail_runs: dict[tuple[str, str, str], int] = field(default_factory=dict)
    guardrail_durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    started: int = 0
    finished: int = 0

    @classmethod
    def configured(cls, pass_through_paths: Iterable[str], *, end_user_labels: bool) -> CallMetrics:
        """The metrics of a gateway serving the API routes and `pass_through_paths`."""
        routes = frozenset(p for api in APIS for p in api.paths) | frozenset(pass_through_paths)
        return cls(routes=routes, end_user_labels=end_user_labels)

    @property
    def request_labels(self) -> tuple[str, ...]:
        return (*REQUEST_LABELS, "end_user") if self.end_user_labels else REQUEST_LABELS

    def record(self, call: Call, record: SpendRecord, error: BaseException | None) -> None:
        """Fold one finished call in.  Synchronous and allocation-light: it runs in `finish`."""
        self.finished += 1
        now = trio.current_time()
        group = record.model_group or ""
        model_id = record.model_id or ""
        route = call.route if call.route in self.routes else OTHER_ROUTE
        labels: tuple[str, ...] = (group, model_id, route, record.status, error_class(error))
        if self.end_user_labels:
            labels = (*labels, record.end_user or "")
        requests = self.requests
        requests[labels] = requests.get(labels, 0) + 1

        figures = self.deployments.get((group, model_id))
        if figures is None:
            figures = self.deployments[group, model_id] = DeploymentFigures()
        total = max(0.0, now - call.started_at)
        figures.total.observe(total)
        if call.deployment is not None:  # an upstream was tried: its time, and the gateway's own
            upstream = call.upstream_wait_s
            if call.stream and call.first_chunk_at is not None:
                # After the first chunk a stream is paced by the upstream (and the client's reading):
                # its time counts as upstream, as the `x-gateway-overhead-ms` header counts only
                # what the gateway spent before it.
                upstream += max(0.0, now - call.first_chunk_at)
            upstream = min(upstream, total)
            figures.upstream.observe(upstream)
            figures.overhead.observe(total - upstream)
            if call.stream and record.status == "success" and record.ttft_ms is not None:
                figures.ttft.observe(record.ttft_ms / 1000)
        figures.input_tokens += record.prompt_tokens or 0
        figures.output_tokens += record.completion_tokens or 0
        if record.cost:
            figures.spend += record.cost
        figures.retries += record.attempted_retries
        figures.fallbacks += record.attempted_fallbacks

        for run in record.guardrail_information:
            key = (run.name, run.mode, run.status)
            self.guardrail_runs[key] = self.guardrail_runs.get(key, 0) + 1
            if run.status != "not_run":
                timing = self.guardrail_durations.get((run.name, run.mode))
                if timing is None:
                    timing = self.guardrail_durations[run.name, run.mode] = Histogram()
                timing.observe(run.duration_ms / 1000)

    def refused(self, path: str, error: GatewayError) -> None:
        """Count a request its route refused before it became a call (no key, a body that is not
        JSON): no model group or deployment yet, so only the request counter has it."""
        labels: tuple[str, ...] = ("", "", path if path in self.routes else OTHER_ROUTE, "failure", error_class(error))
        if self.end_user_labels:
            labels = (*labels, "")
        self.requests[labels] = self.requests.get(labels, 0) + 1

    def snapshot(self) -> CallMetricsSnapshot:
        return CallMetricsSnapshot(
            request_labels=self.request_labels,
            requests=tuple(sorted(self.requests.items())),
            deployments=tuple(
                DeploymentSnapshot(
                    group,
                    model_id,
                    f.total.snapshot(),
                    f.upstream.snapshot(),
                    f.overhead.snapshot(),
                    f.ttft.snapshot(),
                    f.input_tokens,
                    f.output_tokens,
                    f.spend,
                    f.retries,
                    f.fallbacks,
                )
                for (group, model_id), f in sorted(self.deployments.items())
            ),
            guardrail_runs=tuple(sorted(self.guardrail_runs.items())),
            guardrail_durations=tuple((key, h.snapshot()) for key, h in sorted(self.guardrail_durations.items())),
            in_flight=max(0, self.started - self.finished),
            started=self.started,
        )


_CLASSES: dict[type, str] = {}


def error_class(error: BaseException | None) -> str:
    """A bounded name for how a call failed: the nearest gateway exception class of `error`
    ("UpstreamTimeout", "BudgetExceeded", ...), "InternalError" for any other exception."""
    if error is None:
        return NO_ERROR
    kind = type(error)
    name = _CLASSES.get(kind)
    if name is None:
        name = INTERNAL
        if isinstance(error, GatewayError):
            for cls in kind.__mro__:  # a hook's own subclass counts as the gateway class it extends
                if cls.__module__.startswith("gateway_trio."):
                    name = cls.__name__
                    break
        if len(_CLASSES) < 1000:
            _CLASSES[kind] = name
    return name


__all__ = ["CallMetrics", "CallMetricsSnapshot", "DeploymentSnapshot", "error_class"]

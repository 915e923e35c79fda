"""Benchmark the gateway against the bare relay floor and the mock upstream itself.

Two parts, both against the mock upstream (`gateway_trio.testing.mock_upstream`) on 127.0.0.1:

- matrix: direct / floor relay / gateway × JSON / 20-chunk stream × 1 / 32 connections, with
  an upstream that answers at once: throughput, latency added over direct, and the server
  process's CPU per request (what the gateway's own work costs beyond the floor). The gateway
  is measured twice per cell, in alternate runs on the same process: called with the master
  key, and with a virtual key of its config that has a budget and rpm/tpm limits, in a team
  with its own (what the control plane's admission costs a call, as key ÷ master); and, when
  redis-server is installed, the same key on a second gateway with `[redis]` (its limits and
  budgets in a throw-away Redis), alternated with those runs (Redis on ÷ off, `gw-key-redis`);
- concurrency: 1,000 connections against an upstream that answers after 2 s, JSON and
  streams: does the gateway keep 1,000 calls in flight (requests/s vs 500/s ideal), does it
  fail any, and how much memory does it hold (peak RSS)?

Every process runs on port 0 and is killed when the bench ends, however it ends.
Run `scripts/bench --help` for the options.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin when run through scripts/bench
CONTENT = " ".join(
    ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
)
MATRIX_CHUNKS = 20
WAIT_DELAY_S = 2.0  # upstream think time in the concurrency scenario
WAIT_CHUNKS = 5
WAIT_CHUNK_DELAY_S = 0.01  # so each chunk is its own write, not one coalesced burst
WAIT_CONNECTIONS = 1000
# Whole upstream cycles plus a second: a window of 10 s at 2 s per call would cap even the
# direct mock at 80 % of the ideal rate, since the 5th round lands just after it closes.
# Twenty cycles: the rate asked for is the sustained one, and the first cycle (a thousand
# connections opened and sent at the same instant) is a start-up transient that a 10-cycle
# window weighs twice as much.
WAIT_CYCLES = 20
TARGETS = ("direct", "floor", "gateway")
# The matrix's second gateway row: the same gateway called with a virtual key instead of the
# master key (the "gateway" rows). Not a target of its own: the concurrency part has none.
KEY_TARGET = "gw-key"
KEY_CPU_RATIO_GOAL = 1.15  # issue 12: a key's CPU per call at most this times the master key's
# The same key on a second gateway whose limits live in Redis ([redis]), alternated with the
# gw-key rows in the same run: issue 14 wants its CPU per call within this of Redis off.
REDIS_KEY_TARGET = "gw-key-redis"
REDIS_CPU_RATIO_GOAL = 1.25
INSTANCE_CONNECTIONS = 32  # spread over the instances of `--instances`
# Master/key pairs per gateway cell.  One pair's ratio swings by +-20 % on a 2-core machine
# (the same build measured 0.91-1.38 in single pairs); the pooled figure of three alternated
# pairs is what the goal is checked on.
KEY_ROUNDS = 3
# Limits far above anything a bench run can reach (each call reserves about 4,100 tokens and
# $0.0025 at the prices below), so that every check runs and none refuses.
KEY_LIMITS = {"max_budget": 1e9, "rpm_limit": 1_000_000_000, "tpm_limit": 1_000_000_000_000}
TEAM_LIMITS = {"max_budget": 1e9, "rpm_limit": 1_000_000_000, "tpm_limit": 1_000_000_000_000}
# gpt-4o-mini's prices: a priced model, so that the budgets reserve and settle real amounts.
PRICES = {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}
SPEND_FLUSH_S = 1.0  # the gateway's [database] flush_interval_s in the bench
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: preexec_fn must not import


# -- processes ------------------------------------------------------------------------------


def raise_open_file_limit() -> None:
    """1,000 client plus 1,000 upstream sockets do not fit in the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _child_setup() -> None:
    """In each child: the same descriptor limit, and die with the bench even if it is SIGKILLed."""
    raise_open_file_limit()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


class Fleet:
    """Every process the bench starts, so that all of them end with it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def popen(self, argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`env`: variables added to the checkout's environment (secrets travel this way, never in argv)."""
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                env={**checkout_env(), **(env or {})}, preexec_fn=_child_setup,
                start_new_session=True,  # Ctrl-C reaches only us
            )
        self.procs.append(proc)
        return proc

    def start(
        self, name: str, argv: list[str], *, port_file: Path | None = None, env: Mapping[str, str] | None = None
    ) -> Server:
        """Start a server and wait until it listens: its port comes from a port file or its log."""
        log = self.workdir / f"{name}.log"
        if port_file is not None:
            port_file.unlink(missing_ok=True)  # a previous run's file would name a dead port
        proc = self.popen(argv, log, env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            port = _read_port(port_file, log)
            if port:
                return Server(name, proc, port, log)
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start listening within 30 s:\n{_tail(log)}")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        self.stop_all([proc])

    def stop_all(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        chosen = list(self.procs if procs is None else procs)
        for proc in chosen:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 8  # the gateway gets graceful_timeout_s = 5
        for proc in chosen:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc in self.procs:
                self.procs.remove(proc)


def checkout_env() -> dict[str, str]:
    """The children import `gateway_trio` from this checkout, not from wherever the venv was
    installed from: a bench run in a second worktree measures (and mocks with) its own code."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _read_port(port_file: Path | None, log: Path) -> int | None:
    if port_file is not None:
        try:
            text = port_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text else None
    match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return int(match.group(1)) if match else None


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def start_mock(fleet: Fleet, name: str, extra: list[str]) -> Server:
    port_file = fleet.workdir / f"{name}.port"
    argv = [sys.executable, "-m", "gateway_trio.testing", "--host", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--content", CONTENT, *extra]
    return fleet.start(name, argv, port_file=port_file)


def start_floor(fleet: Fleet, upstream: Server) -> Server:
    port_file = fleet.workdir / "floor.port"
    argv = [sys.executable, str(ROOT / "scripts/floor_relay.py"), "--upstream", f"http://127.0.0.1:{upstream.port}",
            "--port", "0", "--port-file", str(port_file)]
    return fleet.start("floor", argv, port_file=port_file)


@dataclass(frozen=True, slots=True, repr=False)
class Tenancy:
    """The master key and one virtual key of the matrix's gateway, fresh for every bench run.

    The gateway reads both from its environment (`os.environ/...` in its config), so neither
    is ever written to a file or shown in a process list.
    """

    master_key: str
    virtual_key: str

    MASTER_ENV = "GATEWAY_BENCH_MASTER_KEY"
    KEY_ENV = "GATEWAY_BENCH_VIRTUAL_KEY"

    @classmethod
    def generate(cls) -> Tenancy:
        return cls(master_key="sk-bench-master-" + secrets.token_urlsafe(24), virtual_key="sk-" + secrets.token_urlsafe(32))

    def __repr__(self) -> str:
        return "Tenancy(<master key>, <virtual key>)"

    @property
    def env(self) -> dict[str, str]:
        return {self.MASTER_ENV: self.master_key, self.KEY_ENV: self.virtual_key}

    def master_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.master_key}"}

    def key_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.virtual_key}"}


def _toml_table(values: Mapping[str, object]) -> str:
    return "".join(f"{name} = {json.dumps(value)}\n" for name, value in values.items())


def gateway_config(workdir: Path, upstream_port: int, tenancy: Tenancy | None, *, redis_url: str | None = None,
                   name: str = "gateway") -> str:
    """The gateway's TOML; with `tenancy`, a master key and one limited key in a limited team;
    with `redis_url`, their limits and budgets in that Redis."""
    text = (
        "[server]\ngraceful_timeout_s = 5\n"
        + (f'master_key = "os.environ/{Tenancy.MASTER_ENV}"\n' if tenancy else "")
        + f'[database]\nurl = "sqlite:///{workdir}/{name}.db"\n'
        + (f"flush_interval_s = {SPEND_FLUSH_S}\n" if tenancy else "")
        + (f'[redis]\nurl = "{redis_url}"\n' if redis_url else "")
        + "[router]\nnum_retries = 0\n"
        '[[models]]\nname = "bench"\nmodel = "openai/bench-model"\n'
        f'api_base = "http://127.0.0.1:{upstream_port}/v1"\nmax_parallel_requests = 2000\n'
    )
    if tenancy is None:
        return text
    return (
        text
        + "[models.info]\n" + _toml_table(PRICES)
        + '[[teams]]\nteam_id = "bench-team"\nteam_alias = "bench"\n' + _toml_table(TEAM_LIMITS)
        + f'[[keys]]\nkey = "os.environ/{Tenancy.KEY_ENV}"\nkey_alias = "bench-key"\nteam_id = "bench-team"\n'
        + _toml_table(KEY_LIMITS)
    )


def start_gateway(fleet: Fleet, upstream: Server, tenancy: Tenancy | None = None, *, redis_url: str | None = None,
                  name: str = "gateway") -> Server:
    config = fleet.workdir / f"{name}.toml"
    config.write_text(gateway_config(fleet.workdir, upstream.port, tenancy, redis_url=redis_url, name=name))
    argv = [str(BIN / "gateway-trio"), "serve", "--config", str(config), "--port", "0"]
    return fleet.start(name, argv, env=tenancy.env if tenancy else None)


def start_redis(fleet: Fleet) -> str | None:
    """A throw-away redis-server (no persistence) for the Redis-on rows; None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("  note: redis-server is not installed: no gw-key-redis rows")
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fleet.popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(fleet.workdir)], fleet.workdir / "redis.log")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start:\n{_tail(fleet.workdir / 'redis.log')}")


# -- /proc ----------------------------------------------------------------------------------


def cpu_ms(pid: int) -> float:
    """utime + stime of one process, in milliseconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- load -----------------------------------------------------------------------------------


def request_body(stream: bool) -> bytes:
    body = {"model": "bench", "messages": [{"role": "user", "content": "Count to twenty."}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class LoadResult:
    requests: int  # completed responses, whatever their status
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0  # connect/read/write failures
    timeouts: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts


Tick = Callable[[float], None]  # called about every 100 ms with the seconds since the load began
NO_HEADERS: Mapping[str, str] = {}


def wrk_script(body: bytes, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """wrk's Lua script and the environment it reads: header values (keys) stay out of the file."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]", 'wrk.headers["Content-Type"] = "application/json"']
    env = {}
    for index, (name, value) in enumerate(headers.items()):
        variable = f"GATEWAY_BENCH_HEADER_{index}"
        lines.append(f'wrk.headers["{name}"] = os.getenv("{variable}")')
        env[variable] = value
    return "\n".join(lines) + "\n", env


class Wrk:
    """wrk as the load generator: a C client, so the bench measures the server, not itself."""

    name = "wrk"

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def run(
        self, url: str, body: bytes, conns: int, duration: float, timeout: float, tick: Tick,
        headers: Mapping[str, str] = NO_HEADERS,
    ) -> LoadResult:
        text, env = wrk_script(body, headers)
        script = self.fleet.workdir / f"post-{len(body)}-{len(headers)}.lua"
        script.write_text(text)
        log = self.fleet.workdir / "wrk.out"
        argv = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration:g}s", "--timeout", f"{timeout:g}s",
                "--latency", "-s", str(script), url]
        started = time.monotonic()
        proc = self.fleet.popen(argv, log, env)
        while proc.poll() is None:
            tick(time.monotonic() - started)
            time.sleep(0.1)
        self.fleet.procs.remove(proc)
        output = log.read_text(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output}")
        return parse_wrk(output)


    def run_spread(self, urls: list[str], body: bytes, conns: int, duration: float, timeout: float,
                   headers: Mapping[str, str] = NO_HEADERS) -> LoadResult:
        """One wrk per url at once, the connections shared out; their figures added up (the
        latencies are the slowest instance's)."""
        results = []
        text, env = wrk_script(body, headers)
        script = self.fleet.workdir / f"post-{len(body)}-{len(headers)}.lua"
        script.write_text(text)
        procs = []
        for index, url in enumerate(urls):
            share = max(1, conns // len(urls))
            argv = ["wrk", f"-t{min(2, share)}", f"-c{share}", f"-d{duration:g}s", "--timeout", f"{timeout:g}s",
                    "--latency", "-s", str(script), url]
            log = self.fleet.workdir / f"wrk-{index}.out"
            procs.append((self.fleet.popen(argv, log, env), log))
        for proc, log in procs:
            proc.wait()
            self.fleet.procs.remove(proc)
            results.append(parse_wrk(log.read_text(errors="replace")))
        return LoadResult(
            requests=sum(r.requests for r in results), duration_s=max(r.duration_s for r in results),
            rps=sum(r.rps for r in results), p50_ms=max(r.p50_ms for r in results),
            p99_ms=max(r.p99_ms for r in results), non_2xx=sum(r.non_2xx for r in results),
            socket_errors=sum(r.socket_errors for r in results), timeouts=sum(r.timeouts for r in results),
        )


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
    rate = find(r"^Requests/sec:\s+([\d.]+)")
    if not done or not rate:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    percentiles = {p: _ms(n, u) for p, n, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)}
    sockets = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    non_2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    connect, read, write, timeout = (int(g) for g in sockets.groups()) if sockets else (0, 0, 0, 0)
    return LoadResult(
        requests=int(done.group(1)),
        duration_s=_ms(done.group(2), done.group(3)) / 1000,
        rps=float(rate.group(1)),
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=connect + read + write,
        timeouts=timeout,
    )


class PythonLoad:
    """Fallback when wrk is missing: trio + httpx, same outputs; it competes with the servers for CPU."""

    name = "python (trio + httpx)"

    def run(
        self, url: str, body: bytes, conns: int, duration: float, timeout: float, tick: Tick,
        headers: Mapping[str, str] = NO_HEADERS,
    ) -> LoadResult:
        import trio

        outcome = trio.run(_python_load, url, [body], conns, duration, None, timeout, tick, headers)
        return outcome

    def run_spread(self, urls: list[str], body: bytes, conns: int, duration: float, timeout: float,
                   headers: Mapping[str, str] = NO_HEADERS) -> LoadResult:
        """One run whose connections are spread evenly over `urls` (a load balancer's work)."""
        import trio

        return trio.run(_python_load, urls, [body], conns, duration, None, timeout, None, headers)


async def _python_load(
    url: str | list[str], bodies: list[bytes], conns: int, duration: float | None, total: int | None, timeout: float,
    tick: Tick | None, extra_headers: Mapping[str, str] = NO_HEADERS,
) -> LoadResult:
    """`conns` workers per body, each sending its body (and `extra_headers`) again and again
    until `duration` or `total`; with several urls, the workers are spread over them evenly."""
    urls = [url] if isinstance(url, str) else url
    import httpx
    import trio

    latencies: list[float] = []
    counts: Counter[str] = Counter()
    budget = [total if total is not None else 1 << 62]
    limits = httpx.Limits(max_connections=conns * len(bodies), max_keepalive_connections=conns * len(bodies))
    headers = {"content-type": "application/json", **extra_headers}
    started = time.monotonic()

    async def worker(client: httpx.AsyncClient, body: bytes, url: str) -> None:
        while budget[0] > 0:
            budget[0] -= 1
            begun = time.perf_counter()
            try:
                async with client.stream("POST", url, content=body, headers=headers) as reply:
                    async for _ in reply.aiter_raw():
                        pass
            except httpx.TimeoutException:
                counts["timeouts"] += 1
                continue
            except httpx.TransportError:
                counts["socket_errors"] += 1
                continue
            latencies.append((time.perf_counter() - begun) * 1000)
            if not 200 <= reply.status_code < 300:
                counts["non_2xx"] += 1

    async def ticker() -> None:
        while tick is not None:
            tick(time.monotonic() - started)
            await trio.sleep(0.1)

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        with trio.move_on_after(duration if duration is not None else float("inf")):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                async with trio.open_nursery() as workers:
                    for body in bodies:
                        for number in range(conns):
                            workers.start_soon(worker, client, body, urls[number % len(urls)])
                nursery.cancel_scope.cancel()  # the budget is spent: stop the ticker too
    elapsed = time.monotonic() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return LoadResult(len(latencies), elapsed, len(latencies) / elapsed, pick(0.50), pick(0.99), **counts)


def warm_up(server: Server, per_kind: int, conns: int, headers: Mapping[str, str] = NO_HEADERS) -> LoadResult:
    """A few hundred JSON and streamed calls first: imports, pools and caches are then warm."""
    import trio

    bodies = [request_body(False), request_body(True)]
    return trio.run(_python_load, server.url, bodies, conns, None, per_kind * 2, 30.0, None, headers)


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Cell:
    target: str
    stream: bool
    conns: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    timeouts: int
    cpu_ms_per_request: float | None = None
    rss_base_mb: float | None = None
    rss_peak_mb: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts


def measure(
    load: Wrk | PythonLoad, target: str, server: Server, stream: bool, conns: int, duration: float, timeout: float,
    *, watch: bool, on_tick: Tick | None = None, headers: Mapping[str, str] = NO_HEADERS, settle_s: float = 0.2,
) -> Cell:
    """One load run; if `watch`, the server's CPU and sampled RSS around it, `settle_s` past its end."""
    pid = server.pid
    cpu_before = cpu_ms(pid) if watch else 0.0
    rss_base = rss_mb(pid) if watch else None
    peak = [rss_base or 0.0]

    def tick(elapsed: float) -> None:
        if watch:
            peak[0] = max(peak[0], rss_mb(pid))
        if on_tick is not None:
            on_tick(elapsed)

    started = time.monotonic()
    result = load.run(server.url, request_body(stream), conns, duration, timeout, tick, headers)
    time.sleep(settle_s)  # let the server finish what the end of the run cut off, so its CPU counts
    cpu_used = cpu_ms(pid) - cpu_before if watch else 0.0
    cpu = cpu_used / result.requests if watch and result.requests else None
    busy = {"cpu_percent": 100 * cpu_used / (1000 * (time.monotonic() - started))} if watch else {}
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} died during the load:\n{_tail(server.log)}")
    return Cell(
        target=target, stream=stream, conns=conns, rps=result.rps, p50_ms=result.p50_ms, p99_ms=result.p99_ms,
        requests=result.requests, non_2xx=result.non_2xx, socket_errors=result.socket_errors,
        timeouts=result.timeouts, cpu_ms_per_request=cpu, rss_base_mb=rss_base, rss_peak_mb=peak[0] if watch else None,
        extra=busy,
    )


def run_matrix(fleet: Fleet, load: Wrk | PythonLoad, duration: float) -> list[Cell]:
    tenancy = Tenancy.generate()
    mock = start_mock(fleet, "mock", ["--chunks", str(MATRIX_CHUNKS)])
    servers = {"direct": mock, "floor": start_floor(fleet, mock), "gateway": start_gateway(fleet, mock, tenancy)}
    # Who calls each row's server: the gateway as the master key and as the virtual key, and
    # the same key on a second gateway with [redis], all three alternated in one run.
    callers: dict[str, list[tuple[str, Mapping[str, str], Server]]] = {
        "direct": [("direct", NO_HEADERS, mock)], "floor": [("floor", NO_HEADERS, servers["floor"])],
        "gateway": [("gateway", tenancy.master_headers(), servers["gateway"]),
                    (KEY_TARGET, tenancy.key_headers(), servers["gateway"])],
    }
    redis_url = start_redis(fleet)
    if redis_url is not None:
        servers["gateway-redis"] = shared = start_gateway(fleet, mock, tenancy, redis_url=redis_url,
                                                          name="gateway-redis")
        callers["gateway"].append((REDIS_KEY_TARGET, tenancy.key_headers(), shared))
    # The gateway's spend rows are written a flush interval after their calls: wait for them,
    # so that a key run's writes are not counted in the master run after it.
    settle_s = SPEND_FLUSH_S + 0.3
    cells = []
    for name in TARGETS:
        warmed_servers: set[str] = set()
        for target, headers, server in callers[name]:
            # A key's warm-up on a gateway already warm only needs to fill the key cache.
            warm = server.name in warmed_servers
            warmed_servers.add(server.name)
            warmed = warm_up(server, per_kind=100 if warm else 300, conns=8, headers=headers)
            _check_warm_up(server, warmed, headers)
            if target != name and (warmed.non_2xx or not warmed.requests):
                raise RuntimeError(f"the virtual key's warm-up calls were refused ({warmed.non_2xx} non-2xx of "
                                   f"{warmed.requests}): its rows would measure refusals, not calls")
        rounds = KEY_ROUNDS if len(callers[name]) > 1 else 1
        for index, (stream, conns) in enumerate([(False, 1), (False, 32), (True, 1), (True, 32)]):
            runs: dict[str, list[Cell]] = {target: [] for target, _, _ in callers[name]}
            for turn in range(rounds):
                # Master then key, then key then master, each cell starting with the other one:
                # drift on a shared machine (and the spend table growing) weighs on both alike.
                for target, headers, server in callers[name][:: 1 if (turn + index) % 2 == 0 else -1]:
                    print(f"  {target:12} {'stream' if stream else 'json':6} c={conns:<3} ...", end=" ", flush=True)
                    cell = measure(load, target, server, stream, conns, duration, 10.0, watch=name != "direct",
                                   headers=headers, settle_s=settle_s if name == "gateway" else 0.2)
                    print(f"{cell.rps:8.0f} req/s" + (f", {cell.errors} errors" if cell.errors else ""))
                    runs[target].append(cell)
            cells.extend(pooled(target_runs) for target_runs in runs.values())
    fleet.stop_all([s.proc for s in servers.values() if s is not mock] + [mock.proc])
    return cells


def run_instances(fleet: Fleet, load: Wrk | PythonLoad, counts: list[int], duration: float,
                  conns: int = INSTANCE_CONNECTIONS) -> list[dict[str, object]]:
    """N gateways sharing one Redis (and so one set of limits), the load spread over them as
    a load balancer would: throughput, and CPU per request of each instance and of them all."""
    redis_url = start_redis(fleet)
    if redis_url is None:
        raise RuntimeError("--instances needs redis-server (the instances share their limits through it)")
    tenancy = Tenancy.generate()
    mock = start_mock(fleet, "mock-fleet", ["--chunks", str(MATRIX_CHUNKS)])
    rows = []
    for count in counts:
        gateways = [start_gateway(fleet, mock, tenancy, redis_url=redis_url, name=f"fleet-{count}-{index}")
                    for index in range(count)]
        for gateway in gateways:
            _check_warm_up(gateway, warm_up(gateway, per_kind=100, conns=4, headers=tenancy.key_headers()),
                           tenancy.key_headers())
        for stream in (False, True):
            print(f"  {count} instance(s) {'stream' if stream else 'json':6} c={conns} ...", end=" ", flush=True)
            before = [cpu_ms(gateway.pid) for gateway in gateways]
            result = load.run_spread([gateway.url for gateway in gateways], request_body(stream), conns, duration,
                                     10.0, tenancy.key_headers())
            time.sleep(SPEND_FLUSH_S + 0.3)
            used = [cpu_ms(gateway.pid) - start for gateway, start in zip(gateways, before)]
            per_request = sum(used) / result.requests if result.requests else None
            print(f"{result.rps:8.0f} req/s, {_fmt(per_request, '.2f')} ms CPU/req"
                  + (f", {result.non_2xx + result.socket_errors + result.timeouts} errors"
                     if result.non_2xx + result.socket_errors + result.timeouts else ""))
            rows.append({
                "instances": count, "stream": stream, "connections": conns, "rps": result.rps,
                "rps_per_instance": result.rps / count, "cpu_ms_per_request": per_request,
                "cpu_ms_per_instance": used, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
                "errors": result.non_2xx + result.socket_errors + result.timeouts,
            })
        fleet.stop_all([gateway.proc for gateway in gateways])
    fleet.stop_all([mock.proc])
    return rows


def report_instances(rows: list[dict[str, object]], duration: float) -> None:
    print(f"\ninstances sharing one Redis (a virtual key with limits and a budget; {duration:g} s per run; "
          "one loopback machine: the instances, the mock, Redis and the load generator share its CPUs)")
    print(f"{'instances':>9} {'kind':6} {'req/s':>8} {'req/s/inst':>10} {'CPU ms/req':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6}")
    for row in rows:
        print(f"{row['instances']:>9} {'stream' if row['stream'] else 'json':6} {row['rps']:8.0f} "
              f"{row['rps_per_instance']:10.0f} {_fmt(row['cpu_ms_per_request'], '.2f'):>10} "
              f"{row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['errors']:6}")


def pooled(runs: list[Cell]) -> Cell:
    """Several runs of one cell as one: requests and errors summed, CPU per request over all
    of them, rates and latencies averaged, memory at its extremes."""
    if len(runs) == 1:
        return runs[0]
    requests = sum(run.requests for run in runs)
    cpu_runs = [run for run in runs if run.cpu_ms_per_request is not None]
    cpu = (sum(run.cpu_ms_per_request * run.requests for run in cpu_runs) / requests  # type: ignore[operator]
           if cpu_runs and requests else None)
    mean = lambda values: sum(values) / len(values)
    bases = [run.rss_base_mb for run in runs if run.rss_base_mb is not None]
    peaks = [run.rss_peak_mb for run in runs if run.rss_peak_mb is not None]
    first = runs[0]
    return Cell(
        target=first.target, stream=first.stream, conns=first.conns, rps=fmean(run.rps for run in runs),
        p50_ms=fmean(run.p50_ms for run in runs), p99_ms=fmean(run.p99_ms for run in runs), requests=requests,
        non_2xx=sum(run.non_2xx for run in runs), socket_errors=sum(run.socket_errors for run in runs),
        timeouts=sum(run.timeouts for run in runs), cpu_ms_per_request=cpu,
        rss_base_mb=min(bases) if bases else None, rss_peak_mb=max(peaks) if peaks else None,
        extra={"runs": float(len(runs))},
    )


def refused_key_calls(cells: list[Cell]) -> int:
    """Non-2xx answers to the virtual key: a refused call is not the scenario being measured."""
    return sum(cell.non_2xx for cell in cells if cell.target in (KEY_TARGET, REDIS_KEY_TARGET))


def _check_warm_up(server: Server, result: LoadResult, headers: Mapping[str, str] = NO_HEADERS) -> None:
    """Say so loudly if the server fails before the measurement, and show one answer."""
    if not result.errors and result.requests:
        return
    import httpx

    print(f"  warning: {server.name} warm-up: {result.requests} answered, {result.non_2xx} non-2xx, "
          f"{result.socket_errors} socket errors, {result.timeouts} timeouts")
    try:
        reply = httpx.post(server.url, content=request_body(False),
                           headers={"content-type": "application/json", **headers}, timeout=30)
        print(f"  one more call now: {reply.status_code} {reply.text[:300]}")
    except httpx.HTTPError as error:
        print(f"  one more call now: {error!r}")
    print(f"  {server.name} log tail:\n{_tail(server.log, 10)}")


class Profiler:
    """py-spy on the gateway, started a moment into the load so it sees the steady state."""

    def __init__(self, fleet: Fleet, pid: int, seconds: float, output: Path) -> None:
        self.fleet, self.pid, self.seconds, self.output = fleet, pid, max(1, int(seconds)), output
        self.proc: subprocess.Popen[bytes] | None = None

    def tick(self, elapsed: float) -> None:
        if self.proc is None and elapsed >= 1.5:
            argv = [str(BIN / "py-spy"), "record", "--format", "raw", "--nolineno", "-r", "100",
                    "-d", str(self.seconds), "-p", str(self.pid), "-o", str(self.output)]
            self.proc = self.fleet.popen(argv, self.fleet.workdir / "py-spy.log")

    def finish(self) -> dict[str, object] | None:
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            self.proc.wait(timeout=10)
        self.fleet.procs.remove(self.proc)
        if not self.output.exists():
            print(f"  py-spy wrote nothing:\n{_tail(self.fleet.workdir / 'py-spy.log')}")
            return None
        return summarize_profile(self.output, self.seconds)


def summarize_profile(path: Path, seconds: float, rate: int = 100, top: int = 20) -> dict[str, object]:
    """Own time (leaf frames) and total time (anywhere on the stack) per function, from py-spy raw output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = other_threads = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        if not any(frame.startswith("unrolled_run ") for frame in frames):
            other_threads += n  # e.g. trio's cached worker threads waiting for a job: not the event loop
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    watched = {f: (own[f], total[f]) for f in total if "_assign_requests_to_connections" in f or
               ("connection_pool" in f and "<listcomp>" in f)}
    return {
        "samples": samples,
        "other_thread_samples": other_threads,
        "busy_fraction": samples / (rate * seconds),
        "own": [(f, n, n / samples) for f, n in own.most_common(top)] if samples else [],
        "total": [(f, n, n / samples) for f, n in total.most_common(top)] if samples else [],
        "watched": {f: {"own": o, "total": t, "total_fraction": t / samples} for f, (o, t) in watched.items()},
        "file": str(path),
    }


def run_concurrency(
    fleet: Fleet, load: Wrk | PythonLoad, duration: float, profile_to: Path | None
) -> tuple[list[Cell], dict[str, object] | None]:
    mock = start_mock(fleet, "mock-wait", ["--delay-s", str(WAIT_DELAY_S), "--chunks", str(WAIT_CHUNKS),
                                           "--chunk-delay-s", str(WAIT_CHUNK_DELAY_S)])
    cells: list[Cell] = []
    profile = None
    timeout = max(10.0, 5 * WAIT_DELAY_S)
    starters: dict[str, Callable[[Fleet, Server], Server]] = {
        "direct": lambda _fleet, upstream: upstream, "floor": start_floor, "gateway": start_gateway,
    }
    for name in TARGETS:
        for stream in (False, True):
            # A fresh relay per run, alone on the machine: calls cut off by the previous run
            # (maybe a thousand of them, if it fell behind) must not weigh on this one.
            server = starters[name](fleet, mock)
            _check_warm_up(server, warm_up(server, per_kind=200, conns=200))
            profiler = None
            if profile_to is not None and name == "gateway" and not stream:
                profiler = Profiler(fleet, server.pid, duration - 2.5, profile_to)
            print(f"  {name:8} {'stream' if stream else 'json':6} c={WAIT_CONNECTIONS} ...", end=" ", flush=True)
            cell = measure(load, name, server, stream, WAIT_CONNECTIONS, duration, timeout, watch=name != "direct",
                           on_tick=profiler.tick if profiler else None)
            print(f"{cell.rps:8.0f} req/s, {cell.errors} errors")
            cells.append(cell)
            if profiler is not None:
                profile = profiler.finish()
            if server is not mock:
                fleet.stop(server.proc)
            time.sleep(1.0)  # let the sockets of the cut-off calls close before the next run
    fleet.stop(mock.proc)
    return cells, profile


# -- reporting ------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    """Like format(), with a right-aligned dash for a missing figure."""
    if value is None:
        width = re.match(r">(\d+)", spec)
        return "-".rjust(int(width.group(1)) if width else 1)
    return format(value, spec)


def report_matrix(cells: list[Cell], duration: float) -> list[dict[str, object]]:
    print(f"\nMatrix: upstream answers at once; streams carry {MATRIX_CHUNKS} chunks; {duration:g} s per cell")
    print("latency in ms; +p50/+p99 = added over direct; CPU = server process ms per request;"
          " gw/floor = gateway CPU/request ÷ floor CPU/request")
    print(f"gateway = called with the master key; {KEY_TARGET} = the same gateway called with a virtual key"
          f" (budget, rpm and tpm limits, in a team with its own); each of the two is {KEY_ROUNDS} alternated runs,"
          " pooled; key/mst = its CPU/request ÷ the master key's")
    header = f"{'mode':6} {'conc':>4} {'target':8} {'req/s':>8} {'p50':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} " \
             f"{'errors':>6} {'CPU ms/req':>10} {'gw/floor':>8} {'key/mst':>7} {'rds/key':>7}"
    print(header)
    print("-" * len(header))
    rows = []
    index = {(c.target, c.stream, c.conns): c for c in cells}
    for stream in (False, True):
        for conns in (1, 32):
            direct = index.get(("direct", stream, conns))
            floor = index.get(("floor", stream, conns))
            master = index.get(("gateway", stream, conns))
            keyed = index.get((KEY_TARGET, stream, conns))
            for name in (*TARGETS, KEY_TARGET, REDIS_KEY_TARGET):
                cell = index.get((name, stream, conns))
                if cell is None:
                    continue
                added50 = cell.p50_ms - direct.p50_ms if direct and name != "direct" else None
                added99 = cell.p99_ms - direct.p99_ms if direct and name != "direct" else None
                gateway = name in ("gateway", KEY_TARGET, REDIS_KEY_TARGET)
                ratio = _cpu_ratio(cell, floor) if gateway else None
                key_ratio = _cpu_ratio(cell, master) if name == KEY_TARGET else None
                redis_ratio = _cpu_ratio(cell, keyed) if name == REDIS_KEY_TARGET else None
                print(f"{'stream' if stream else 'json':6} {conns:>4} {name:12} {cell.rps:>8.0f} {cell.p50_ms:>7.2f} "
                      f"{cell.p99_ms:>7.2f} {_fmt(added50, '>7.2f')} {_fmt(added99, '>7.2f')} {cell.errors:>6} "
                      f"{_fmt(cell.cpu_ms_per_request, '>10.3f')} {_fmt(ratio, '>8.2f')} {_fmt(key_ratio, '>7.2f')} "
                      f"{_fmt(redis_ratio, '>7.2f')}")
                rows.append({**asdict(cell), "errors": cell.errors, "added_p50_ms": added50, "added_p99_ms": added99,
                             "cpu_ratio_gateway_over_floor": ratio, "cpu_ratio_key_over_master": key_ratio,
                             "cpu_ratio_redis_over_key": redis_ratio})
    key_ratios = [row["cpu_ratio_key_over_master"] for row in rows if row["cpu_ratio_key_over_master"] is not None]
    if key_ratios:
        mean = sum(key_ratios) / len(key_ratios)
        verdict = "within" if mean <= KEY_CPU_RATIO_GOAL else "OVER"
        print(f"virtual key vs master key, CPU per request: {mean:.2f}× over the {len(key_ratios)} cells "
              f"(worst cell {max(key_ratios):.2f}×; {verdict} the {KEY_CPU_RATIO_GOAL}× goal)")
    redis_ratios = [row["cpu_ratio_redis_over_key"] for row in rows if row["cpu_ratio_redis_over_key"] is not None]
    if redis_ratios:
        mean = sum(redis_ratios) / len(redis_ratios)
        verdict = "within" if mean <= REDIS_CPU_RATIO_GOAL else "OVER"
        print(f"virtual key with [redis] vs without, CPU per request: {mean:.2f}× over the {len(redis_ratios)} cells "
              f"(worst cell {max(redis_ratios):.2f}×; {verdict} the {REDIS_CPU_RATIO_GOAL}× goal)")
    return rows


def _cpu_ratio(cell: Cell, base: Cell | None) -> float | None:
    if base is None or not base.cpu_ms_per_request or not cell.cpu_ms_per_request:
        return None
    return cell.cpu_ms_per_request / base.cpu_ms_per_request


def key_scenario_summary(rows: list[dict[str, object]]) -> dict[str, object]:
    """The key-versus-master figures of the matrix for the JSON output, without any secret."""
    ratios = {f"{'stream' if row['stream'] else 'json'} c={row['conns']}": row["cpu_ratio_key_over_master"]
              for row in rows if row["target"] == KEY_TARGET}
    known = [r for r in ratios.values() if isinstance(r, float)]
    return {
        "target": KEY_TARGET, "goal_cpu_ratio": KEY_CPU_RATIO_GOAL, "cpu_ratio_key_over_master": ratios,
        "worst_cpu_ratio": max(known) if known else None,
        "mean_cpu_ratio": sum(known) / len(known) if known else None,
        "key": {"key_alias": "bench-key", "team_id": "bench-team", **KEY_LIMITS}, "team": TEAM_LIMITS,
        "prices": PRICES,
    }


def redis_scenario_summary(rows: list[dict[str, object]]) -> dict[str, object] | None:
    """The Redis-on versus Redis-off figures of the matrix (None when redis-server was missing)."""
    ratios = {f"{'stream' if row['stream'] else 'json'} c={row['conns']}": row["cpu_ratio_redis_over_key"]
              for row in rows if row["target"] == REDIS_KEY_TARGET}
    if not ratios:
        return None
    known = [r for r in ratios.values() if isinstance(r, float)]
    return {"target": REDIS_KEY_TARGET, "goal_cpu_ratio": REDIS_CPU_RATIO_GOAL, "cpu_ratio_redis_over_key": ratios,
            "worst_cpu_ratio": max(known) if known else None,
            "mean_cpu_ratio": sum(known) / len(known) if known else None}


def report_concurrency(cells: list[Cell], duration: float) -> list[dict[str, object]]:
    stream_time = WAIT_DELAY_S + (WAIT_CHUNKS - 1) * WAIT_CHUNK_DELAY_S
    print(f"\nConcurrency: {WAIT_CONNECTIONS} connections, upstream answers after {WAIT_DELAY_S:g} s "
          f"(streams: {WAIT_CHUNKS} chunks {WAIT_CHUNK_DELAY_S * 1000:g} ms apart), {duration:g} s per run")
    print(f"ideal = {WAIT_CONNECTIONS} / upstream time ({WAIT_CONNECTIONS / WAIT_DELAY_S:.0f}/s JSON, "
          f"{WAIT_CONNECTIONS / stream_time:.0f}/s streams); % direct = vs the mock reached without a relay;"
          " errors = non-2xx + socket errors + timeouts")
    print("done = responses completed in the window (calls still in flight when it closes are not counted);"
          " CPU % = server process CPU over the run (100% = one core); RSS MB = before the run")
    header = f"{'target':8} {'mode':6} {'done':>5} {'req/s':>7} {'%ideal':>6} {'%direct':>7} {'p50 ms':>8} {'p99 ms':>8} " \
             f"{'errors':>6} {'(n2xx/sock/tmo)':>15} {'RSS MB':>7} {'peak MB':>7} {'CPU %':>5} {'CPU ms/req':>10}"
    print(header)
    print("-" * len(header))
    rows = []
    direct = {c.stream: c for c in cells if c.target == "direct"}
    for cell in cells:
        ideal = WAIT_CONNECTIONS / (stream_time if cell.stream else WAIT_DELAY_S)
        base = direct.get(cell.stream)
        of_direct = 100 * cell.rps / base.rps if base and base.rps else None
        detail = f"{cell.non_2xx}/{cell.socket_errors}/{cell.timeouts}"
        print(f"{cell.target:8} {'stream' if cell.stream else 'json':6} {cell.requests:>5} {cell.rps:>7.1f} {100 * cell.rps / ideal:>5.1f}% "
              f"{_fmt(of_direct, '>6.1f')}% {cell.p50_ms:>8.1f} {cell.p99_ms:>8.1f} {cell.errors:>6} {detail:>15} "
              f"{_fmt(cell.rss_base_mb, '>7.1f')} {_fmt(cell.rss_peak_mb, '>7.1f')} {_fmt(cell.extra.get('cpu_percent'), '>5.0f')} "
              f"{_fmt(cell.cpu_ms_per_request, '>10.3f')}")
        rows.append({**asdict(cell), "errors": cell.errors, "ideal_rps": ideal,
                     "percent_of_ideal": 100 * cell.rps / ideal, "percent_of_direct": of_direct})
    return rows


def report_profile(profile: dict[str, object]) -> None:
    print(f"\npy-spy on the gateway, {WAIT_CONNECTIONS} JSON calls in flight: {profile['samples']} samples of the trio "
          f"thread (busy {100 * float(profile['busy_fraction']):.0f}% of the time; "
          f"{profile['other_thread_samples']} samples of other threads left out); file {profile['file']}")
    for kind, title in (("own", "own time (leaf frame)"), ("total", "total time (anywhere on the stack)")):
        print(f"top functions by {title}:")
        for frame, n, fraction in profile[kind]:  # type: ignore[union-attr]
            print(f"  {100 * fraction:5.1f}%  {n:6}  {frame}")
    watched = profile["watched"]
    if watched:
        print("httpcore pool assignment:")
        for frame, figures in watched.items():  # type: ignore[union-attr]
            print(f"  {frame}: total {100 * figures['total_fraction']:.1f}% ({figures['total']} samples, own {figures['own']})")
    else:
        print("httpcore pool assignment: _assign_requests_to_connections never sampled")


def _busy_processes(window_s: float = 0.5, threshold: float = 20.0) -> list[tuple[int, float, str]]:
    """Other processes using CPU right now: the bench's figures are only as quiet as the machine."""
    def snapshot() -> dict[int, float]:
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    found[int(entry)] = cpu_ms(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return found

    before = snapshot()
    time.sleep(window_s)
    after = snapshot()
    busy = []
    for pid, used in after.items():
        percent = (used - before.get(pid, used)) / (window_s * 10)
        if percent >= threshold and pid != os.getpid():
            try:
                command = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
            except OSError:
                continue
            busy.append((pid, percent, command))
    return busy


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds per run (default 5 per matrix cell, "
                        "41 for the 1,000-connection runs; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="2 s cells, no 1,000-connection scenario")
    parser.add_argument("--only", choices=("matrix", "concurrency"))
    parser.add_argument("--instances", help="only the fleet scenario: N gateways sharing one Redis, for each N of "
                        "a comma-separated list (e.g. 1,2,4)")
    parser.add_argument("--json", type=Path, help="also write every figure here as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the gateway during the 1,000-connection JSON run; print the top functions")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk when on PATH, else the trio + httpx fallback")
    return parser.parse_args(argv)


def _on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM / SIGHUP: unwind through the cleanup like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_file_limit()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    matrix_s = args.duration or (2.0 if args.quick else 5.0)
    wait_s = args.duration or WAIT_CYCLES * WAIT_DELAY_S + 1.0
    run_matrix_part = args.only in (None, "matrix")
    run_wait_part = args.only == "concurrency" or (args.only is None and not args.quick)
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    fleet = Fleet(workdir)
    load: Wrk | PythonLoad = Wrk(fleet) if use_wrk else PythonLoad()
    out: dict[str, object] = {
        "loadgen": load.name, "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
    profile_file = Path(tempfile.gettempdir()) / f"gateway-bench-{os.getpid()}.pyspy.txt" if args.profile else None
    print(f"load generator: {load.name}; {os.cpu_count()} CPUs; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; open-file limit {out['nofile_limit']}")
    out["busy_processes_at_start"] = busy = _busy_processes()
    for pid, percent, command in busy:
        print(f"  note: another process is busy (competes for the {os.cpu_count()} CPUs): "
              f"pid {pid} {percent:.0f}% {command[:80]}")
    try:
        if args.instances:
            counts = [int(part) for part in args.instances.split(",")]
            print(f"instances ({', '.join(map(str, counts))}):")
            out["instances"] = rows = run_instances(fleet, load, counts, matrix_s)
            report_instances(rows, matrix_s)
            if args.json:
                args.json.write_text(json.dumps(out, indent=2))
            return 0
        if run_matrix_part:
            print("matrix:")
            out["matrix_duration_s"] = matrix_s
            matrix = run_matrix(fleet, load, matrix_s)
        if run_wait_part:
            print(f"concurrency ({WAIT_CONNECTIONS} connections):")
            out["concurrency_duration_s"] = wait_s
            waits, profile = run_concurrency(fleet, load, wait_s, profile_file)
        if run_matrix_part:
            out["matrix"] = report_matrix(matrix, matrix_s)
            out["key_scenario"] = key_scenario_summary(out["matrix"])
            out["redis_scenario"] = redis_scenario_summary(out["matrix"])
        if run_wait_part:
            out["concurrency"] = report_concurrency(waits, wait_s)
            if profile is not None:
                report_profile(profile)
                out["profile"] = profile
            elif args.profile:
                print("\n(no profile was recorded)")
        out["loadavg_at_end"] = os.getloadavg()
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
            print(f"\nJSON written to {args.json}")
        refused = refused_key_calls(matrix) if run_matrix_part else 0
        if refused:
            print(f"\nFAILED: the gateway refused {refused} of the virtual key's calls (non-2xx): its rows"
                  f" measure refusals, not the key's calls. Gateway log tail:\n{_tail(workdir / 'gateway.log')}",
                  file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the bench started", file=sys.stderr)
        return 130
    finally:
        fleet.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

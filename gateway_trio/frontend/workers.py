"""Several worker processes sharing the listening sockets, each a whole gateway of its own.

hypercorn's own multi-process runner gives each trio worker a shutdown trigger the application
never hears of, so a worker's gateway could not end its open streams with an error event before
the graceful timeout cuts them, as a single process does (see `shutdown.py`).  This runner is the
same shape (spawned processes, one shared stop event, the sockets made once by the parent) with
the gateway told when its worker's shutdown begins.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
from functools import partial
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event
from typing import Any

import trio
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from gateway_trio.config import GatewayConfig
from gateway_trio.frontend.serving import (
    GatewayHypercornConfig,
    hypercorn_config,
    raise_open_file_limit,
    shutdown_trigger,
    tune_garbage_collector,
)
from gateway_trio.runtime.worker_samples import DIRECTORY_ENV, WORKERS_ENV

STOP_POLL_S = 0.1
# What a worker may take beyond the graceful timeout to write its last records and exit.
EXIT_SLACK_S = 15.0


def run_workers(config_path: str, config: GatewayConfig, host: str, port: int, workers: int, log_level: str) -> int:
    """Serve with `workers` processes, each building its own app from `config_path`
    (`gateway_trio.frontend.asgi`), until SIGTERM/SIGINT or one of them ends; the exit code."""
    raise_open_file_limit()
    os.environ["GATEWAY_CONFIG"] = config_path
    os.environ["GATEWAY_LOG_LEVEL"] = log_level
    os.environ[WORKERS_ENV] = str(workers)
    with tempfile.TemporaryDirectory(prefix="gateway-metrics-") as metrics_dir:
        os.environ[DIRECTORY_ENV] = metrics_dir  # the workers add up their /metrics through it
        try:
            return run_processes(hypercorn_config(config, host, port), workers)
        finally:
            del os.environ[DIRECTORY_ENV]


def run_processes(hyper: GatewayHypercornConfig, workers: int) -> int:
    """Serve with `workers` processes until SIGTERM/SIGINT (or one of them ends); the exit code."""
    sockets = hyper.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    # The workers inherit an ignored SIGINT: the parent alone decides when they stop.  And an
    # ignored SIGHUP until their gateway listens for it (a reload must never kill one).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    processes = [context.Process(target=serve_worker, args=(hyper, sockets, stop)) for _ in range(workers)]
    for process in processes:
        process.start()

    def shutdown(*_: Any) -> None:
        stop.set()

    def reload(*_: Any) -> None:
        for process in processes:  # each worker reloads its own gateway
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGHUP)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, shutdown)
    signal.signal(signal.SIGHUP, reload)
    try:
        wait([process.sentinel for process in processes])  # until asked to stop, or a worker ends
        stop.set()
        for process in processes:
            process.join(hyper.graceful_timeout + EXIT_SLACK_S)
        for process in processes:
            if process.exitcode is None:
                process.terminate()
                process.join()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGHUP, previous_hup)
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.close()
    return next((p.exitcode for p in processes if p.exitcode), 0)


def serve_worker(hyper: GatewayHypercornConfig, sockets: Sockets, stop: Event) -> None:
    """One worker: its own gateway built from `$GATEWAY_CONFIG` (`gateway_trio.frontend.asgi`), served
    on the shared sockets until `stop` is set."""
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.listen(hyper.backlog)
    from gateway_trio.frontend.asgi import app

    async def stopped() -> None:
        while not stop.is_set():
            await trio.sleep(STOP_POLL_S)

    tune_garbage_collector()
    trigger = shutdown_trigger(app.gateway, stopped)
    trio.run(partial(worker_serve, wrap_app(app, hyper.wsgi_max_body_size, "asgi"), hyper, sockets=sockets,
                     shutdown_trigger=trigger))

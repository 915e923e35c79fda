"""Running the app under hypercorn's trio worker, with our limits and graceful shutdown."""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from gateway_trio.config import GatewayConfig
from gateway_trio.connection import GatewayApp

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # LLM calls are long: many clients connect at once
GC_THRESHOLDS = tuple(int(x) for x in os.environ.get("GATEWAY_GC_THRESHOLDS", "20000,20,50").split(","))


def hypercorn_config(config: GatewayConfig, host: str, port: int) -> HypercornConfig:
    hyper = HypercornConfig()
    hyper.bind = [f"{host}:{port}"]
    hyper.backlog = LISTEN_BACKLOG
    hyper.graceful_timeout = config.server.graceful_timeout_s
    hyper.keep_alive_timeout = 75
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    return hyper


def configure_logging(level: str) -> None:
    """Logging for `serve`, in the main process and in each worker process alike."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise


def raise_open_file_limit() -> None:
    """Each open call holds a client and an upstream socket: allow as many as the system lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def wait_for_termination() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: finishing in-flight requests", signal.Signals(signum).name)
            return


def tune_garbage_collector() -> None:
    """Many calls in flight mean many live objects; the default thresholds make the cyclic
    collector rescan them all every few hundred allocations."""
    gc.freeze()  # start-up objects (modules, config, actors) are never garbage
    gc.set_threshold(*GC_THRESHOLDS)


async def serve_app(app: GatewayApp, config: GatewayConfig, host: str, port: int) -> None:
    tune_garbage_collector()
    hyper = hypercorn_config(config, host, port)
    await serve(app, hyper, shutdown_trigger=wait_for_termination)  # type: ignore[arg-type]


def run_single(app: GatewayApp, config: GatewayConfig, host: str, port: int) -> None:
    """Serve `app`, built (and so checked) by the caller before anything listens."""
    raise_open_file_limit()
    trio.run(serve_app, app, config, host, port)


def run_workers(config_path: str, config: GatewayConfig, host: str, port: int, workers: int, log_level: str) -> None:
    """Several worker processes sharing one socket, each building its own app (`gateway_trio.asgi`)."""
    from hypercorn.run import run

    raise_open_file_limit()
    os.environ["GATEWAY_CONFIG"] = config_path
    os.environ["GATEWAY_LOG_LEVEL"] = log_level
    hyper = hypercorn_config(config, host, port)
    hyper.application_path = "gateway_trio.asgi:app"
    hyper.worker_class = "trio"
    hyper.workers = workers
    run(hyper)

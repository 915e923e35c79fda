"""Running the app under hypercorn's trio worker, with our limits and graceful shutdown."""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import socket
from typing import TYPE_CHECKING, Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio import serve

from gateway_trio.config import GatewayConfig

if TYPE_CHECKING:
    from gateway_trio.gateway import Gateway

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # LLM calls are long: many clients connect at once
GC_THRESHOLDS = tuple(int(x) for x in os.environ.get("GATEWAY_GC_THRESHOLDS", "20000,20,50").split(","))


class GatewayHypercornConfig(HypercornConfig):
    """Hypercorn's config, whose connections give up on a client that takes nothing for
    `send_timeout_s` (nginx's `send_timeout`).

    Hypercorn shields its socket writes from cancellation, so a client that stops reading would
    hold its write forever: its stream past every deadline, and a graceful shutdown with it.  The
    kernel's TCP_USER_TIMEOUT, set on the listening sockets and inherited by every connection,
    ends such a connection instead (the write fails; the call is recorded).
    """

    send_timeout_s: float | None = None

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if self.send_timeout_s and hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(self.send_timeout_s * 1000))
        return sockets


def hypercorn_config(config: GatewayConfig, host: str, port: int) -> HypercornConfig:
    hyper = GatewayHypercornConfig()
    hyper.send_timeout_s = config.server.send_timeout_s
    hyper.bind = [f"{host}:{port}"]
    hyper.backlog = LISTEN_BACKLOG
    hyper.graceful_timeout = config.server.graceful_timeout_s
    hyper.keep_alive_timeout = 75
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    return hyper


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


def shutdown_trigger(gateway: Gateway, wait: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """Hypercorn's shutdown trigger, telling the gateway first: its open streams then end with
    an error event a little before the graceful timeout would cut them (see shutdown.py)."""

    async def triggered() -> None:
        await wait()
        gateway.begin_shutdown()

    return triggered


async def serve_app(config: GatewayConfig, host: str, port: int) -> None:
    from gateway_trio.app import create_app

    app = create_app(config)
    tune_garbage_collector()
    hyper = hypercorn_config(config, host, port)
    await serve(app, hyper, shutdown_trigger=shutdown_trigger(app.gateway, wait_for_termination))  # type: ignore[arg-type]


def run_single(config: GatewayConfig, host: str, port: int) -> None:
    raise_open_file_limit()
    trio.run(serve_app, config, host, port)


def run_workers(config_path: str, config: GatewayConfig, host: str, port: int, workers: int) -> None:
    """Several worker processes sharing one socket, each with its own actors."""
    import os

    from hypercorn.run import run

    raise_open_file_limit()
    os.environ["GATEWAY_CONFIG"] = config_path
    hyper = hypercorn_config(config, host, port)
    hyper.application_path = "gateway_trio.asgi:app"
    hyper.worker_class = "trio"
    hyper.workers = workers
    run(hyper)

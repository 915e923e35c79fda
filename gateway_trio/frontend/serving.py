"""Running the app under hypercorn's trio worker, with our limits and graceful shutdown.

What a client may hold, and for how long, is bounded at each stage of a connection:
- idle (no byte of a request yet): `KEEP_ALIVE_S`, hypercorn's keep-alive timer;
- the request's head (request line and headers), from its first byte: `server.request_header_timeout_s`
  (`HeadDeadlineTCPServer` below; hypercorn has no such deadline of its own);
- the body, from the end of the head: `server.request_body_timeout_s` (`intake.py`);
- the call: the router's whole-request deadline;
- and, behind them all, hypercorn's `read_timeout`: a connection that sends nothing for longer
  than any of these allows is closed, whatever state it is stuck in.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import hypercorn.trio.run
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.events import Event, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer

from gateway_trio.config import GatewayConfig
from gateway_trio.frontend.handler import GatewayApp

if TYPE_CHECKING:
    from gateway_trio.gateway import Gateway

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # LLM calls are long: many clients connect at once
GC_THRESHOLDS = tuple(int(x) for x in os.environ.get("GATEWAY_GC_THRESHOLDS", "20000,20,50").split(","))
# Longer than the idle timeouts of the load balancers in front (60 s on most), so that they,
# not we, close an idle connection: otherwise a request can race our close and fail.
KEEP_ALIVE_S = 75
# What `read_timeout` allows beyond the longest silence a well-behaved client keeps: the
# answer's own writing and scheduling.
READ_TIMEOUT_SLACK_S = 30


class GatewayHypercornConfig(HypercornConfig):
    """hypercorn's config, plus the head deadline our connections apply, and connections that
    give up on a client that takes nothing for `send_timeout_s` (nginx's `send_timeout`).

    Hypercorn shields its socket writes from cancellation, so a client that stops reading would
    hold its write forever: its stream past every deadline, and a graceful shutdown with it.  The
    kernel's TCP_USER_TIMEOUT, set on the listening sockets and inherited by every connection,
    ends such a connection instead (the write fails; the call is recorded).
    """

    request_header_timeout: float | None = None
    send_timeout_s: float | None = None

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if self.send_timeout_s and hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(self.send_timeout_s * 1000))
        return sockets


def hypercorn_config(config: GatewayConfig, host: str, port: int) -> GatewayHypercornConfig:
    """hypercorn's settings for serving `config` (and its connections made to apply them)."""
    use_head_deadlines()
    server = config.server
    hyper = GatewayHypercornConfig()
    hyper.send_timeout_s = server.send_timeout_s
    hyper.bind = [f"{host}:{port}"]
    hyper.backlog = LISTEN_BACKLOG
    hyper.graceful_timeout = server.graceful_timeout_s
    hyper.keep_alive_timeout = KEEP_ALIVE_S
    hyper.request_header_timeout = server.request_header_timeout_s
    hyper.read_timeout = longest_silence_s(config) + READ_TIMEOUT_SLACK_S  # type: ignore[assignment]  # a float works
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("hypercorn.error")
    return hyper


def longest_silence_s(config: GatewayConfig) -> float:
    """The longest a well-behaved client sends nothing: while it waits for its answer (the request
    deadline, then the post-call guardrails and hooks), between pieces of its body, or idle."""
    after_the_answer = max((g.timeout_s for g in config.guardrails), default=0) + config.hooks.timeout_s
    waiting = config.router.timeout_s + after_the_answer
    return max(KEEP_ALIVE_S, config.server.request_body_timeout_s, waiting)


class HeadDeadlineTCPServer(TCPServer):
    """hypercorn's trio connection, with a deadline on each HTTP/1.1 request's head.

    hypercorn times an idle connection (keep-alive) and each read (`read_timeout`), but not
    the head: a client that sends a header line every few seconds holds its connection until
    the keep-alive timer ends, and a thousand such clients hold a thousand.  The protocol tells
    the connection when a request's head is complete (`Updated(idle=False)`) and when it waits
    for the next one (`Updated(idle=True)`); between the two, the first byte received starts the
    head's deadline, and once it passes the connection is closed the way hypercorn closes one
    after a read timeout.  Idle connections that have sent nothing are left to the keep-alive
    timer, so that clients' pools may open connections ahead of their requests.  HTTP/2 is left
    as hypercorn runs it: its control frames (pings, window updates) flow between requests.
    """

    def __init__(self, app: Any, config: HypercornConfig, context: Any, state: Any, stream: Any) -> None:
        # Any hypercorn server in the process is built here; only ours carry a head deadline.
        timeout_s = getattr(config, "request_header_timeout", None)
        self.head_deadline: _HeadDeadline | None = None
        if timeout_s is not None:
            self.head_deadline = stream = _HeadDeadline(stream, timeout_s, self)
        super().__init__(app, config, context, state, stream)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and self.head_deadline is not None:
            self.head_deadline.between_requests(event.idle)
        await super().protocol_send(event)

    def speaks_http1(self) -> bool:
        return isinstance(getattr(self.protocol, "protocol", None), H11Protocol)

    async def head_timed_out(self) -> None:
        # The keep-alive timer still runs while a head comes in, and the connection's tasks
        # (hence the socket) would wait for it: stop it, so the close happens now.
        await self.idle_task.stop()


class _HeadDeadline:
    """The connection's stream, whose reads end at the deadline of a head under way."""

    def __init__(self, stream: Any, timeout_s: float, connection: HeadDeadlineTCPServer) -> None:
        self._stream = stream
        self._timeout_s = timeout_s
        self._connection = connection
        self._waiting_for_head = True  # a new connection waits for its first request
        self._deadline: float | None = None  # set by the head's first byte

    def between_requests(self, waiting_for_head: bool) -> None:
        self._waiting_for_head = waiting_for_head
        self._deadline = None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._deadline is None:
            data = await self._stream.receive_some(max_bytes)
        else:
            with trio.move_on_at(self._deadline) as reading:
                data = await self._stream.receive_some(max_bytes)
            if reading.cancelled_caught:
                await self._connection.head_timed_out()
                raise trio.TooSlowError  # hypercorn's reader closes the connection, as for read_timeout
        if data and self._waiting_for_head and self._deadline is None and self._connection.speaks_http1():
            self._deadline = trio.current_time() + self._timeout_s
        return data

    def __getattr__(self, name: str) -> Any:
        # hypercorn reads `socket` and tells TLS streams from plain ones by their attributes.
        return getattr(self._stream, name)


def use_head_deadlines() -> None:
    """Have hypercorn's trio worker build its connections as `HeadDeadlineTCPServer`.

    hypercorn (0.17, 0.18) offers no seam for this: its worker builds each connection from the
    name `TCPServer` in `hypercorn.trio.run`.  Called wherever the gateway is served in a
    process (here, and in each worker process by `gateway_trio.frontend.asgi`).
    """
    hypercorn.trio.run.TCPServer = HeadDeadlineTCPServer  # type: ignore[misc]


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


async def reload_on_sighup(gateway: Gateway) -> None:
    """`SIGHUP` reloads the config (each worker process gets its own from the parent); a config
    that cannot work is logged, naming its key, and the old one keeps serving."""
    from gateway_trio.config import ConfigError

    try:
        receiver = trio.open_signal_receiver(signal.SIGHUP)
    except RuntimeError:  # not the main thread (an embedding app's): no signals to take
        return
    with receiver as signals:
        async for _ in signals:
            log.info("received SIGHUP: reloading the config")
            try:
                await gateway.reload()
            except ConfigError as error:
                log.error("config not reloaded, the old one keeps serving: %s", error)
            except Exception:  # the reload's own failure must not end the server
                log.exception("config not reloaded, the old one keeps serving")


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


async def serve_app(app: GatewayApp, config: GatewayConfig, host: str, port: int) -> None:
    tune_garbage_collector()
    hyper = hypercorn_config(config, host, port)
    await serve(app, hyper, shutdown_trigger=shutdown_trigger(app.gateway, wait_for_termination))  # type: ignore[arg-type]


def run_single(app: GatewayApp, config: GatewayConfig, host: str, port: int) -> None:
    """Serve `app`, built (and so checked) by the caller before anything listens."""
    raise_open_file_limit()
    trio.run(serve_app, app, config, host, port)

"""The cost floor for scripts/bench: a bare Quart-Trio + httpx relay with no parsing or checks.

Whatever the gateway costs beyond this relay (CPU, latency, memory) is the price of its own
work; whatever this relay costs is paid by any gateway on this stack.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio


def create_app(upstream: str) -> QuartTrio:
    app = QuartTrio(__name__)
    target = upstream.rstrip("/") + "/v1/chat/completions"
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    client = httpx.AsyncClient(limits=limits, timeout=None)  # one pool for the process's life

    @app.post("/v1/chat/completions")
    async def relay():  # type: ignore[no-untyped-def]
        body = await request.get_data()
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        reply = await client.send(client.build_request("POST", target, content=body, headers=headers), stream=True)

        async def chunks():  # type: ignore[no-untyped-def]
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            finally:  # may run mid-cancellation (client gone): shield the short close
                with trio.CancelScope(shield=True):
                    await reply.aclose()

        response = app.response_class(chunks(), status=reply.status_code)
        response.headers["content-type"] = reply.headers.get("content-type", "application/json")
        response.timeout = None  # Quart's 60 s default would cut long streams
        return response

    return app


async def main(args: argparse.Namespace) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.backlog = 4096
    config.accesslog = None

    async def until_signalled() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                return

    async with trio.open_nursery() as nursery:
        app = create_app(args.upstream)
        binds = await nursery.start(functools.partial(serve, app, config, shutdown_trigger=until_signalled))
        if args.port_file:  # write-then-rename: a poller never sees a half-written port
            with open(f"{args.port_file}.tmp", "w") as handle:
                handle.write(binds[0].rsplit(":", 1)[1] + "\n")
            os.replace(f"{args.port_file}.tmp", args.port_file)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Bare relay: the floor any gateway on this stack pays.")
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    trio.run(main, parser.parse_args())

"""Start the real gateway on 127.0.0.1:0 (real hypercorn, real sockets) for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio
from hypercorn.trio import serve

from gateway_trio.config import GatewayConfig, parse_config
from gateway_trio.frontend.app import create_app
from gateway_trio.frontend.serving import hypercorn_config, shutdown_trigger
from gateway_trio.gateway import Gateway

ROOT = Path(__file__).resolve().parents[2]
# The database a config gets when it names none; the `database_url` fixture (tests/conftest.py)
# sets it for a test, so a module of end-to-end tests runs against SQLite and PostgreSQL.
DEFAULT_DATABASE_URL = "sqlite:///:memory:"


def make_config(**sections: Any) -> GatewayConfig:
    """A config from plain dicts, validated exactly like a TOML file."""
    sections.setdefault("server", {})
    sections["server"].setdefault("graceful_timeout_s", 2)
    sections.setdefault("database", {"url": DEFAULT_DATABASE_URL})
    sections["database"].setdefault("url", DEFAULT_DATABASE_URL)
    # A spool of its own: records one test spooled must never be replayed into another's database.
    sections["database"].setdefault("spool_dir", tempfile.mkdtemp(prefix="gw-spool-"))
    return parse_config(sections, "<test>")


@asynccontextmanager
async def serving(
    config: GatewayConfig, *, quart_config: dict[str, Any] | None = None, **app_options: Any
) -> AsyncIterator[tuple[str, Gateway]]:
    """Serve `config`; yield its base URL and its Gateway. Shuts down gracefully on exit."""
    app = create_app(config, **app_options)
    app.config.update(quart_config or {})
    hyper = hypercorn_config(config, "127.0.0.1", 0)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        trigger = shutdown_trigger(app.gateway, shutdown.wait)  # as `serve` does
        binds = await nursery.start(partial(serve, app, hyper, shutdown_trigger=trigger))
        try:
            yield binds[0], app.gateway
        finally:
            shutdown.set()


@asynccontextmanager
async def running_gateway(config: GatewayConfig, **options: Any) -> AsyncIterator[str]:
    async with serving(config, **options) as (base_url, _):
        yield base_url


@asynccontextmanager
async def client_and_gateway(config: GatewayConfig, **options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    async with serving(config, **options) as (base_url, gateway):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield client, gateway


@asynccontextmanager
async def gateway_client(config: GatewayConfig, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(config, **options) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield client


def chat(model: str, text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sse_payloads(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [line[len("data: "):] for line in body.split("\n") if line.startswith("data: ")]


async def eventually(predicate: Any, timeout: float = 5.0) -> Any:
    """Wait until `predicate()` is truthy (events reach hooks off the request path)."""
    with trio.fail_after(timeout):
        while not (value := predicate()):
            await trio.sleep(0.01)
        return value


@asynccontextmanager
async def served_process(upstream, tmp_path, *, graceful_timeout_s: float, workers: int = 1, server: str = "",
                         model: str = "", env: dict[str, str] | None = None, log: bytearray | None = None):
    """`gateway-trio serve` in its own process (or `workers` of them) against `upstream`: yields
    the process and its base URL once every worker listens; killed if still running at the end.

    `server` and `model` are more TOML lines for `[server]` and the one `[[models]]` entry; the
    stderr read while waiting for the workers is appended to `log` (the rest is the caller's).
    """
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\ngraceful_timeout_s = {graceful_timeout_s}\n{server}\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/spend.db"\n'
        f'[[models]]\nname = "gpt"\nmodel = "openai/gpt-4o-mini"\napi_base = "{upstream.base_url}/v1"\n{model}\n'
    )
    async with serving_process(config, workers=workers, env=env, log=log) as served:
        yield served


@asynccontextmanager
async def serving_process(config: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                          log: bytearray | None = None):
    """`gateway-trio serve --config config` in its own process(es): yields the process and its
    base URL once every worker listens; killed if still running at the end."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway_trio", "serve", "--config", str(config), "--port", "0",
         "--workers", str(workers)],
        stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        seen = bytearray() if log is None else log
        with trio.fail_after(30):
            while len(listening := re.findall(rb"Running on (http://127\.0\.0\.1:\d+)", seen)) < workers:
                chunk = await process.stderr.receive_some()
                if not chunk:
                    raise AssertionError(f"serve ended before listening:\n{seen.decode(errors='replace')}")
                seen += chunk
        yield process, listening[0].decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

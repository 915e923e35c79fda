from __future__ import annotations

from typing import Any

import trio

from gateway_trio.frontend.handler import GatewayApp


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http", "http_version": "1.1", "asgi": {"spec_version": "2.1"}, "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
        "extensions": {},
    }


def then_disconnect(disconnected: trio.Event) -> Any:
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await disconnected.wait()
        return {"type": "http.disconnect"}
    return receive


async def test_the_handler_runs_in_the_task_that_called_the_app():
    app, ran_in = GatewayApp(__name__), []

    @app.post("/here")
    async def here() -> str:
        ran_in.append(trio.lowlevel.current_task())
        return "ok"

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(http_scope("/here"), then_disconnect(trio.Event()), send)
    assert ran_in == [trio.lowlevel.current_task()]
    assert sent[0]["status"] == 200 and b"".join(m.get("body", b"") for m in sent[1:]) == b"ok"


async def test_a_client_that_disconnects_cancels_the_handler(autojump_clock):
    app, disconnected, outcome = GatewayApp(__name__), trio.Event(), []

    @app.post("/slow")
    async def slow() -> str:
        try:
            disconnected.set()
            await trio.sleep(60)
        except trio.Cancelled:
            outcome.append("cancelled")
            raise
        return "too late"

    async def send(message: dict[str, Any]) -> None:
        outcome.append(message["type"])

    with trio.fail_after(5):
        await app(http_scope("/slow"), then_disconnect(disconnected), send)
    assert outcome == ["cancelled"]

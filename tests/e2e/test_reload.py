"""Config reload (SPEC §11): `POST /config/reload` and `SIGHUP` swap what the config declares
between calls; calls under way finish on the config they started with."""

import signal
import sys
import textwrap

import httpx
import trio
from harness import chat, eventually, served_process, serving, sse_payloads

from gateway_trio.config import load_config
from gateway_trio.runtime.histogram import Histogram
from gateway_trio.testing import Behavior

MASTER = "sk-master-reload"
ADMIN = {"authorization": f"Bearer {MASTER}"}


def toml(tmp_path, models, *, extra=""):
    """A whole config file: the same [server] and [database] every time (a reload refuses a
    change there), `models` as (group, upstream model) pairs against the mock upstream."""
    server = f'[server]\ngraceful_timeout_s = 5\nmaster_key = "{MASTER}"\n'
    database = f'[database]\nurl = "sqlite:///{tmp_path}/spend.db"\nspool_dir = "{tmp_path}/spool"\n'
    return (
        server
        + database
        + "".join(
            f'[[models]]\nname = "{name}"\nmodel = "openai/{model}"\napi_base = "{{base}}/v1"\n{more}\n'
            for name, model, more in models
        )
        + extra
    )


def write(path, text, upstream):
    path.write_text(text.replace("{base}", upstream.base_url))


def config_file(tmp_path, upstream, models, *, extra=""):
    path = tmp_path / "gateway.toml"
    write(path, toml(tmp_path, models, extra=extra), upstream)
    return path


async def model_names(client):
    return [m["id"] for m in (await client.get("/v1/models", headers=ADMIN)).json()["data"]]


async def test_post_reload_swaps_models_and_guardrails_for_the_next_call(upstream, tmp_path):
    guard = (
        '[[guardrails]]\nname = "words"\nguardrail = "regex"\nmode = "pre_call"\n'
        '[guardrails.params]\npatterns = ["{word}"]\n'
    )
    guarded = 'guardrails = ["words"]'
    path = config_file(
        tmp_path, upstream, [("gpt", "gpt-a", guarded), ("old", "old-model", "")], extra=guard.format(word="apple")
    )
    async with serving(load_config(path)) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            assert sorted(await model_names(client)) == ["gpt", "old"]
            assert (
                await client.post("/v1/chat/completions", json=chat("gpt", "an apple"), headers=ADMIN)
            ).status_code == 400
            write(
                path,
                toml(tmp_path, [("gpt", "gpt-a", guarded), ("new", "new-model", "")]) + guard.format(word="banana"),
                upstream,
            )
            reloaded = await client.post("/config/reload", headers=ADMIN)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json() == {"status": "reloaded", "groups": ["gpt", "new"], "deployments": 2}
            assert sorted(await model_names(client)) == ["gpt", "new"]
            gone = await client.post("/v1/chat/completions", json=chat("old"), headers=ADMIN)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
            assert (await client.post("/v1/chat/completions", json=chat("new"), headers=ADMIN)).status_code == 200
            # The changed guardrail applies: apples pass now, bananas do not.
            assert (
                await client.post("/v1/chat/completions", json=chat("gpt", "an apple"), headers=ADMIN)
            ).status_code == 200
            banana = await client.post("/v1/chat/completions", json=chat("gpt", "a banana"), headers=ADMIN)
            assert banana.status_code == 400 and banana.json()["error"]["type"] == "guardrail_blocked"
    assert upstream.received[-1].model != "old-model"


async def test_reload_needs_the_master_key(upstream, tmp_path):
    path = config_file(tmp_path, upstream, [("gpt", "gpt-a", "")])
    async with serving(load_config(path)) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            assert (await client.post("/config/reload")).status_code == 401


async def test_streams_under_way_finish_on_their_config_with_zero_failed_calls(upstream, tmp_path):
    """20 slow streams of a group the reload removes, plain calls of a group it keeps all along,
    and the reload in the middle: every call succeeds; a new call of the removed group 404s."""
    upstream.behaviors["slow-model"] = Behavior(chunks=20, chunk_delay_s=0.05)
    path = config_file(tmp_path, upstream, [("slow", "slow-model", ""), ("steady", "steady-model", "")])
    streams_done: list[list[str]] = []
    plain: list[int] = []
    async with serving(load_config(path)) as (base_url, gateway):
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=100)) as client:
            first_chunks = trio.Semaphore(0)

            async def one_stream() -> None:
                body = chat("slow", stream=True)
                async with client.stream("POST", "/v1/chat/completions", json=body, headers=ADMIN) as response:
                    assert response.status_code == 200
                    lines = []
                    async for line in response.aiter_lines():
                        if not lines and line.startswith("data: "):
                            first_chunks.release()
                        lines.append(line)
                streams_done.append(sse_payloads("\n".join(lines)))

            async def plain_calls(until: trio.Event) -> None:
                while not until.is_set():
                    answer = await client.post("/v1/chat/completions", json=chat("steady"), headers=ADMIN)
                    plain.append(answer.status_code)

            old = gateway.current
            stop_plain = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(plain_calls, stop_plain)
                async with trio.open_nursery() as streams:
                    for _ in range(20):
                        streams.start_soon(one_stream)
                    for _ in range(20):
                        await first_chunks.acquire()  # every stream is under way
                    write(
                        path, toml(tmp_path, [("steady", "steady-model", ""), ("fresh", "fresh-model", "")]), upstream
                    )
                    reloaded = await client.post("/config/reload", headers=ADMIN)
                    assert reloaded.status_code == 200, reloaded.text
                    assert old.pipeline.inflight > 0  # the streams are still on the old config
                    gone = await client.post("/v1/chat/completions", json=chat("slow", stream=True), headers=ADMIN)
                    assert gone.status_code == 404
                stop_plain.set()
            assert gateway.current is not old
            # The old generation retires once its streams are done: its router stops.
            await eventually(lambda: not old.router._running, timeout=10)
    assert len(streams_done) == 20
    assert all(payloads[-1] == "[DONE]" and '"error"' not in "".join(payloads) for payloads in streams_done)
    assert plain and set(plain) == {200}


async def test_a_broken_file_is_refused_naming_the_error_and_the_old_config_serves(upstream, tmp_path):
    path = config_file(tmp_path, upstream, [("gpt", "gpt-a", "")])
    async with serving(load_config(path)) as (base_url, gateway):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            before = gateway.current
            path.write_text("[[models]\nname = ")
            broken = await client.post("/config/reload", headers=ADMIN)
            assert broken.status_code == 400
            assert "invalid TOML" in broken.json()["error"]["message"]
            assert broken.json()["error"]["code"] == "invalid_config"
            # Valid TOML whose fallback names no group: the key is named.
            write(path, toml(tmp_path, [("gpt", "gpt-a", "")]) + '[router.fallbacks]\ngpt = ["nope"]\n', upstream)
            unknown = await client.post("/config/reload", headers=ADMIN)
            assert unknown.status_code == 400
            assert "router.fallbacks.gpt[0]: unknown model group 'nope'" in unknown.json()["error"]["message"]
            # What only a restart applies is refused, naming the section.
            write(path, toml(tmp_path, [("gpt", "gpt-a", "")]).replace(MASTER, "sk-another"), upstream)
            server = await client.post("/config/reload", headers=ADMIN)
            assert server.status_code == 400 and "server: changed" in server.json()["error"]["message"]
            assert gateway.current is before
            assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=ADMIN)).status_code == 200


async def test_replaced_hook_objects_are_closed(upstream, tmp_path):
    module = "reload_hooks_closed"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent("""
        from gateway_trio.hooks import CustomLogger

        made = []

        class Closing(CustomLogger):
            def __init__(self):
                self.closed = False
                made.append(self)

            async def aclose(self):
                self.closed = True
    """)
    )
    hooks = f'[hooks]\ncallbacks = ["{module}:Closing"]\n'
    path = config_file(tmp_path, upstream, [("gpt", "gpt-a", "")], extra=hooks)
    try:
        async with serving(load_config(path)) as (base_url, _):
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                assert (await client.post("/v1/chat/completions", json=chat("gpt"), headers=ADMIN)).status_code == 200
                assert (await client.post("/config/reload", headers=ADMIN)).status_code == 200
                made = sys.modules[module].made
                assert len(made) == 2
                await eventually(lambda: made[0].closed)
                assert not made[1].closed  # the one now serving
    finally:
        sys.modules.pop(module, None)


async def test_config_declared_keys_are_added_and_removed_on_reload(upstream, tmp_path):
    def keys(*secrets):
        return "".join(f'[[keys]]\nkey = "{secret}"\nkey_alias = "{secret[3:10]}"\n' for secret in secrets)

    path = config_file(tmp_path, upstream, [("gpt", "gpt-a", "")], extra=keys("sk-key-one-0123456789"))
    async with serving(load_config(path)) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def status(secret):
                headers = {"authorization": f"Bearer {secret}"}
                return (await client.post("/v1/chat/completions", json=chat("gpt"), headers=headers)).status_code

            assert await status("sk-key-one-0123456789") == 200
            assert await status("sk-key-two-0123456789") == 401
            write(path, toml(tmp_path, [("gpt", "gpt-a", "")]) + keys("sk-key-two-0123456789"), upstream)
            assert (await client.post("/config/reload", headers=ADMIN)).status_code == 200
            assert await status("sk-key-one-0123456789") == 401
            assert await status("sk-key-two-0123456789") == 200


async def sighup_reloads(upstream, tmp_path, workers):
    """`serve` (with `workers` processes) gets SIGHUP after its file gained a model: every worker
    serves it."""
    async with served_process(upstream, tmp_path, graceful_timeout_s=5, workers=workers) as (process, base_url):
        path = tmp_path / "gateway.toml"
        path.write_text(
            path.read_text() + f'[[models]]\nname = "added"\nmodel = "openai/added-model"\n'
            f'api_base = "{upstream.base_url}/v1"\n'
        )
        process.send_signal(signal.SIGHUP)
        seen: set[int] = set()
        with trio.fail_after(30):
            while len(seen) < workers:
                # A connection of its own each time, so that every worker gets asked.
                async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                    answer = await client.post("/v1/chat/completions", json=chat("added"))
                    pid = (await client.get("/health/readiness")).json()["worker_pid"]
                if answer.status_code == 200:
                    seen.add(pid)
                else:
                    assert answer.status_code == 404  # not reloaded yet
                    await trio.sleep(0.1)
        assert process.returncode is None  # SIGHUP never ends the server


async def test_sighup_reloads_a_single_process(upstream, tmp_path):
    await sighup_reloads(upstream, tmp_path, workers=1)


async def test_sighup_to_the_parent_reloads_every_worker(upstream, tmp_path):
    await sighup_reloads(upstream, tmp_path, workers=2)


async def test_a_kept_deployment_stays_cooled_down_across_a_reload(upstream, tmp_path):
    path = config_file(tmp_path, upstream, [("gpt", "gpt-a", ""), ("gpt", "gpt-b", ""), ("other", "o", "")])
    async with serving(load_config(path)) as (_, gateway):
        old = gateway.router
        cooled = old.groups["gpt"][0].id
        old.cool_down(cooled, trio.current_time())
        write(path, toml(tmp_path, [("gpt", "gpt-a", ""), ("gpt", "gpt-b", "")]), upstream)
        await gateway.reload()
        new = gateway.router
        assert new is not old
        assert new.loads[cooled].cooled_until == old.loads[cooled].cooled_until > trio.current_time()
        assert new.loads[new.groups["gpt"][1].id].cooled_until == 0


async def test_counters_of_the_old_config_carry_over_so_metrics_never_go_backwards(upstream, tmp_path):
    upstream.behaviors["slow-model"] = Behavior(chunks=10, chunk_delay_s=0.05)
    path = config_file(tmp_path, upstream, [("gpt", "slow-model", "")])
    async with serving(load_config(path)) as (base_url, gateway):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            old = gateway.current
            old.hooks.failures["some_hook.async_log_success_event"] += 2
            old.hooks.runs["some_hook.async_pre_call_hook", "ran"] += 4
            timing = old.hooks.durations["some_hook.async_pre_call_hook"] = Histogram()
            timing.observe(0.3)
            body = chat("gpt", stream=True)
            async with client.stream("POST", "/v1/chat/completions", json=body, headers=ADMIN) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        break
                assert (await client.post("/config/reload", headers=ADMIN)).status_code == 200
                assert gateway.hooks.failures["some_hook.async_log_success_event"] == 2
                old.hooks.failures["some_hook.async_log_success_event"] += 1  # counted while retiring
                rest = [line async for line in lines]
            assert sse_payloads("\n".join(rest))[-1:] == ["[DONE]"], rest
            await eventually(lambda: gateway.hooks.failures["some_hook.async_log_success_event"] == 3, timeout=10)
            metrics = (await client.get("/metrics", headers=ADMIN)).text
            assert 'gateway_hook_failures_total{hook="some_hook.async_log_success_event"} 3.0' in metrics
            assert 'gateway_hook_runs_total{hook="some_hook.async_pre_call_hook",outcome="ran"} 4.0' in metrics
            assert 'gateway_hook_duration_seconds_count{hook="some_hook.async_pre_call_hook"} 1.0' in metrics
            assert 'status="success"} 1.0' in metrics  # the stream, finished on the old config, counted once


async def test_an_api_that_follows_the_config_follows_a_reload(upstream, tmp_path):
    """The moderation route's default model is the config's first moderation deployment."""
    moderation = '[models.info]\nmode = "moderation"'
    path = config_file(tmp_path, upstream, [("mod-a", "mod-a-model", moderation)])
    async with serving(load_config(path)) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            before = await client.post("/v1/moderations", json={"input": "hi"}, headers=ADMIN)
            write(path, toml(tmp_path, [("mod-b", "mod-b-model", moderation)]), upstream)
            assert (await client.post("/config/reload", headers=ADMIN)).status_code == 200
            after = await client.post("/v1/moderations", json={"input": "hi"}, headers=ADMIN)
    assert before.status_code == after.status_code == 200
    assert [before.headers["x-gateway-model-group"], after.headers["x-gateway-model-group"]] == ["mod-a", "mod-b"]


async def test_sighup_with_a_broken_file_logs_the_error_and_the_old_config_serves(upstream, tmp_path):
    async with served_process(upstream, tmp_path, graceful_timeout_s=5) as (process, base_url):
        path = tmp_path / "gateway.toml"
        path.write_text(path.read_text() + "[router]\nnum_retries = -1\n")
        process.send_signal(signal.SIGHUP)
        seen = bytearray()
        with trio.fail_after(30):
            while b"config not reloaded" not in seen:
                seen += await process.stderr.receive_some()
            while b"\n" not in seen[seen.index(b"config not reloaded") :]:
                seen += await process.stderr.receive_some()
        line = seen[seen.index(b"config not reloaded") :].split(b"\n")[0].decode()
        assert "router.num_retries" in line, line
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            assert (await client.post("/v1/chat/completions", json=chat("gpt"))).status_code == 200
        assert process.returncode is None

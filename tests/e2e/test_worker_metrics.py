"""`serve --workers 2`: /metrics is one gateway's view whichever worker answers the scrape."""

import re

import httpx
import trio
from harness import chat, served_process

CALLS_SUCCESS = re.compile(r'^gateway_calls_total\{call_type="completion",status="success"\} (\S+)$', re.MULTILINE)
REQUESTS = re.compile(r'^gateway_requests_total\{.*status="success".*\} (\S+)$', re.MULTILINE)
DURATION_COUNT = re.compile(r'^gateway_request_duration_seconds_bucket\{.*le="\+Inf".*\} (\S+)$', re.MULTILINE)
MAX_TRIES = 400  # fresh connections until both workers answered one; each takes a few ms


def chat_successes(text: str) -> float:
    found = CALLS_SUCCESS.search(text)
    return float(found.group(1)) if found else 0.0


async def one_connection_per_worker(base_url: str) -> dict[int, httpx.AsyncClient]:
    """A kept-alive client per worker process: a connection stays with the worker that took it."""
    clients: dict[int, httpx.AsyncClient] = {}
    for _ in range(MAX_TRIES):
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        pid = (await client.get("/health/readiness")).json()["worker_pid"]
        if pid in clients:
            await client.aclose()
        else:
            clients[pid] = client
            if len(clients) == 2:
                return clients
    raise AssertionError(f"only one worker took {MAX_TRIES} connections")


async def test_every_worker_answers_a_scrape_with_the_calls_of_both(upstream, tmp_path):
    async with served_process(upstream, tmp_path, graceful_timeout_s=5, workers=2) as (_, base_url):
        clients = await one_connection_per_worker(base_url)
        try:
            first, second = clients.values()
            for _ in range(3):
                assert (await first.post("/v1/chat/completions", json=chat("gpt"))).status_code == 200
            for _ in range(5):
                assert (await second.post("/v1/chat/completions", json=chat("gpt"))).status_code == 200

            seen: list[float] = []
            with trio.fail_after(15):  # the other worker's file is at most a second old
                while not seen or seen[-1] < 8:
                    for client in (first, second):
                        seen.append(chat_successes((await client.get("/metrics")).text))
                    await trio.sleep(0.2)
            for client in (first, second, first, second):  # once whole, it stays whole
                text = (await client.get("/metrics")).text
                seen.append(chat_successes(text))
                # the per-call families add up too: counters and histogram buckets alike
                assert sum(float(n) for n in REQUESTS.findall(text)) == 8
                assert sum(float(n) for n in DURATION_COUNT.findall(text)) == 8
        finally:
            for client in clients.values():
                await client.aclose()
    assert seen[-4:] == [8, 8, 8, 8]
    assert seen == sorted(seen)  # never backwards, whichever worker answered


async def test_without_redis_workers_warn_and_say_that_limits_are_per_worker(upstream, tmp_path):
    log = bytearray()
    async with served_process(upstream, tmp_path, graceful_timeout_s=5, workers=2, model="rpm = 100",
                              log=log) as (process, base_url):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            ready = (await client.get("/health/readiness")).json()
        with trio.fail_after(15):  # both workers' start-up lines
            while log.count(b"no [redis]: rate limits") < 2:
                log += await process.stderr.receive_some()
    assert ready["limits"] == "per worker"


async def test_one_process_without_redis_counts_limits_per_instance(upstream, tmp_path):
    log = bytearray()
    async with served_process(upstream, tmp_path, graceful_timeout_s=5, model="rpm = 100", log=log) as (_, base_url):
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            ready = (await client.get("/health/readiness")).json()
    assert ready["limits"] == "per instance"
    assert b"no [redis]" not in log

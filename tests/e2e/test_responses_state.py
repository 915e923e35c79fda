"""`previous_response_id` on deployments served through chat (Anthropic, an OpenAI-compatible
chat-only server): the gateway keeps the conversation, in memory at once and in the database
behind it, for its TTL and within its caps, for the key (or team) that made it, unless the
request said `store: false`."""

from __future__ import annotations

import httpx
import orjson
import pytest
from harness import client_and_gateway, make_config, sse_payloads

MASTER = "sk-master-responses-state-012345"
AUTH = {"authorization": f"Bearer {MASTER}"}
SECRET = "responses-state-id-secret-0123"
CHAT_ONLY = "chat-only-1"


def config_for(upstream, *, database=None, **responses):
    models = [
        {
            "name": "claude",
            "model": "anthropic/claude-3-5-sonnet",
            "api_base": upstream.base_url,
            "api_key": "sk-ant-upstream-secret",
            "info": {"id": "claude-1"},
        },
        # An OpenAI-compatible server with chat completions only (vLLM, Ollama...): served through chat.
        {
            "name": "chatonly",
            "model": "hosted_vllm/small-model",
            "api_base": f"{upstream.base_url}/v1",
            "info": {"id": CHAT_ONLY, "responses_api": False},
        },
        {
            "name": "native",
            "model": "openai/gpt-native",
            "api_base": f"{upstream.base_url}/v1",
            "info": {"id": "native-1"},
        },
    ]
    return make_config(
        models=models,
        server={"master_key": MASTER, "response_id_secret": SECRET},
        router={"num_retries": 0},
        responses=responses,
        database=database or {"url": "sqlite:///:memory:"},
    )


def gateway_for(upstream, **options):
    return client_and_gateway(config_for(upstream, **options))


async def respond(client, model, text, *, previous=None, stream=False, headers=AUTH, **extra):
    body = {"model": model, "input": text, "stream": stream, **extra}
    if previous is not None:
        body["previous_response_id"] = previous
    return await client.post("/v1/responses", json=body, headers=headers)


def response_of(answer: httpx.Response, stream: bool) -> dict:
    assert answer.status_code == 200, answer.text
    if not stream:
        return answer.json()
    events = [orjson.loads(p) for p in sse_payloads(answer.text)]
    return next(e["response"] for e in events if e["type"] == "response.completed")


def output_text(response: dict) -> str:
    return "".join(part["text"] for item in response["output"] if item["type"] == "message" for part in item["content"])


def conversation_sent(upstream) -> list[tuple[str, str]]:
    """(role, text) of every message the last upstream request carried (chat or Anthropic)."""
    body = upstream.received[-1].json
    sent = []
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        sent.append((message["role"], content))
    return sent


def assert_not_found(answer: httpx.Response, response_id: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "previous_response_not_found",
        "previous_response_id",
        "invalid_request_error",
    )
    assert error["message"] == f"Previous response with id {response_id!r} not found."


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", ["claude", "chatonly"])
async def test_a_chain_of_follow_ups_carries_the_whole_conversation(upstream, model, stream):
    async with gateway_for(upstream) as (client, _):
        first = response_of(
            await respond(client, model, "first question", stream=stream, instructions="be brief", store=True), stream
        )
        second = response_of(
            await respond(client, model, "second question", previous=first["id"], stream=stream), stream
        )
        assert second["id"] != first["id"]
        third = response_of(
            await respond(client, model, "third question", previous=second["id"], stream=stream), stream
        )
        sent = upstream.received[-1].json
        assert "previous_response_id" not in sent and "store" not in sent  # the upstream knows neither
        assert upstream.received[-1].path.endswith("/messages" if model == "claude" else "/chat/completions")
        # The instructions of the first call are not carried over (as OpenAI does not); the rest is.
        assert conversation_sent(upstream) == [
            ("user", "first question"),
            ("assistant", output_text(first)),
            ("user", "second question"),
            ("assistant", output_text(second)),
            ("user", "third question"),
        ]
        assert output_text(first) and output_text(third)
        assert "system" not in sent and all(role != "system" for role, _ in conversation_sent(upstream))


async def test_a_follow_up_may_switch_between_streaming_and_not(upstream):
    async with gateway_for(upstream) as (client, _):
        first = response_of(await respond(client, "claude", "streamed first", stream=True), True)
        second = response_of(await respond(client, "claude", "then plain", previous=first["id"]), False)
        await respond(client, "claude", "streamed again", previous=second["id"], stream=True)
        assert [text for _, text in conversation_sent(upstream)][::2] == [
            "streamed first",
            "then plain",
            "streamed again",
        ]


async def test_store_false_keeps_nothing_and_its_follow_up_is_not_found(upstream):
    async with gateway_for(upstream) as (client, gateway):
        unstored = response_of(await respond(client, "chatonly", "forget me", store=False), False)
        assert "store" not in upstream.received[-1].json
        assert_not_found(await respond(client, "chatonly", "more", previous=unstored["id"]), unstored["id"])
        for stream in (False, True):
            assert_not_found(
                await respond(client, "chatonly", "more", previous=unstored["id"], stream=stream), unstored["id"]
            )
        # A call that continues a stored one with store false continues it, and is not stored itself.
        kept = response_of(await respond(client, "chatonly", "keep me"), False)
        passing = response_of(await respond(client, "chatonly", "passing", previous=kept["id"], store=False), False)
        assert conversation_sent(upstream)[0] == ("user", "keep me")
        assert_not_found(await respond(client, "chatonly", "more", previous=passing["id"]), passing["id"])
        assert set(gateway.conversations.recent) == {kept["id"]}


async def test_a_stored_response_expires_after_its_ttl(upstream):
    now = [1_000_000.0]
    async with gateway_for(upstream, store_ttl_s=60) as (client, gateway):
        gateway.conversations.clock = lambda: now[0]
        first = response_of(await respond(client, "claude", "short lived"), False)
        now[0] += 59
        assert (await respond(client, "claude", "still here", previous=first["id"])).status_code == 200
        now[0] += 2
        assert_not_found(await respond(client, "claude", "gone", previous=first["id"]), first["id"])
        await gateway.conversations.flush()
        await gateway.conversations.prune()
        rows = gateway.database.connection.execute("SELECT response_id FROM response_states").fetchall()
        assert (first["id"],) not in rows  # pruned from the database too, not only refused


async def test_the_oldest_past_the_cap_are_pruned_and_a_too_large_one_is_not_kept(upstream):
    async with gateway_for(upstream, max_stored=2, max_stored_kb=2) as (client, gateway):
        ids = [response_of(await respond(client, "claude", f"number {n}"), False)["id"] for n in range(3)]
        await gateway.conversations.flush()
        await gateway.conversations.prune()
        assert gateway.database.connection.execute("SELECT count(*) FROM response_states").fetchone() == (2,)
        assert_not_found(await respond(client, "claude", "more", previous=ids[0]), ids[0])
        assert (await respond(client, "claude", "more", previous=ids[2])).status_code == 200
        large = response_of(await respond(client, "claude", "x" * 3000), False)
        assert gateway.conversations.too_large == 1
        assert_not_found(await respond(client, "claude", "more", previous=large["id"]), large["id"])


async def test_stored_responses_outlive_the_process_in_the_database(upstream, tmp_path):
    database = {"url": f"sqlite:///{tmp_path / 'gateway.db'}"}
    async with gateway_for(upstream, database=database) as (client, _):
        first = response_of(await respond(client, "chatonly", "remember this", stream=True), True)
    async with gateway_for(upstream, database=database) as (client, gateway):
        assert not gateway.conversations.recent  # a new process: only the database has it
        response_of(await respond(client, "chatonly", "and this", previous=first["id"]), False)
        assert conversation_sent(upstream)[:2] == [("user", "remember this"), ("assistant", output_text(first))]


async def new_key(client, **fields) -> dict[str, str]:
    made = await client.post("/key/generate", json=fields, headers=AUTH)
    assert made.status_code == 200, made.text
    return {"authorization": f"Bearer {made.json()['key']}"}


async def test_only_the_key_or_its_team_may_continue_a_stored_response(upstream):
    async with gateway_for(upstream) as (client, _):
        assert (await client.post("/team/new", json={"team_id": "blue"}, headers=AUTH)).status_code == 200
        alice, bob = await new_key(client), await new_key(client)
        blue_one, blue_two = await new_key(client, team_id="blue"), await new_key(client, team_id="blue")

        mine = response_of(await respond(client, "claude", "alice's secret", headers=alice), False)
        for other in (bob, blue_one, AUTH):  # another key, a team key, the master key
            assert_not_found(await respond(client, "claude", "tell me", previous=mine["id"], headers=other), mine["id"])
        assert (await respond(client, "claude", "go on", previous=mine["id"], headers=alice)).status_code == 200

        teams = response_of(await respond(client, "chatonly", "blue's plan", headers=blue_one, stream=True), True)
        continued = await respond(client, "chatonly", "go on", previous=teams["id"], headers=blue_two)
        assert continued.status_code == 200 and conversation_sent(upstream)[0] == ("user", "blue's plan")
        assert_not_found(await respond(client, "chatonly", "tell me", previous=teams["id"], headers=alice), teams["id"])


async def test_native_responses_deployments_keep_their_own_state(upstream):
    async with gateway_for(upstream) as (client, gateway):
        first = response_of(await respond(client, "native", "hi"), False)
        assert not gateway.conversations.recent and not gateway.conversations.pending
        follow = await respond(client, "native", "more", previous=first["id"])
        assert follow.status_code == 200
        sent = upstream.received[-1]
        assert sent.path.endswith("/responses") and sent.json["previous_response_id"] != first["id"]


async def test_an_id_the_gateway_never_issued_is_not_found_on_a_chat_deployment(upstream):
    async with gateway_for(upstream) as (client, _):
        assert_not_found(await respond(client, "claude", "more", previous="resp_made_up"), "resp_made_up")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_kept_response_can_be_retrieved_and_deleted_by_its_key(upstream, stream):
    async with gateway_for(upstream) as (client, _):
        alice, bob = await new_key(client), await new_key(client)
        made = response_of(await respond(client, "claude", "keep this", headers=alice, stream=stream), stream)
        got = await client.get(f"/v1/responses/{made['id']}", headers=alice)
        assert got.status_code == 200 and got.json() == made  # what the client was given, streamed or not
        assert (await client.get(f"/responses/{made['id']}", headers=alice)).json() == made
        for other in (bob, AUTH):
            refused = await client.get(f"/v1/responses/{made['id']}", headers=other)
            assert refused.status_code == 404 and refused.json()["error"]["param"] == "response_id"
            assert (await client.delete(f"/v1/responses/{made['id']}", headers=other)).status_code == 404
        assert (await client.get(f"/v1/responses/{made['id']}")).status_code == 401

        deleted = await client.delete(f"/v1/responses/{made['id']}", headers=alice)
        assert deleted.json() == {"id": made["id"], "object": "response", "deleted": True}
        assert (await client.get(f"/v1/responses/{made['id']}", headers=alice)).status_code == 404
        assert (await client.delete(f"/v1/responses/{made['id']}", headers=alice)).status_code == 404
        assert_not_found(await respond(client, "claude", "more", previous=made["id"], headers=alice), made["id"])


async def test_a_deleted_response_is_gone_from_the_database_too(upstream, tmp_path):
    database = {"url": f"sqlite:///{tmp_path / 'gateway.db'}"}
    async with gateway_for(upstream, database=database) as (client, gateway):
        made = response_of(await respond(client, "chatonly", "short"), False)
        await gateway.conversations.flush()
        assert (await client.delete(f"/v1/responses/{made['id']}", headers=AUTH)).status_code == 200
    async with gateway_for(upstream, database=database) as (client, _):
        assert (await client.get(f"/v1/responses/{made['id']}", headers=AUTH)).status_code == 404


async def test_a_refused_follow_up_names_its_key_and_the_keys_own_refusals_come_first(upstream):
    async with gateway_for(upstream) as (client, gateway):
        made = await client.post("/key/generate", json={"key_alias": "carol"}, headers=AUTH)
        secret = made.json()["key"]
        carol = {"authorization": f"Bearer {secret}"}
        first = response_of(await respond(client, "claude", "hello", headers=carol), False)
        unstored = response_of(await respond(client, "claude", "hello", headers=carol, store=False), False)
        refused = await respond(client, "claude", "more", previous=unstored["id"], headers=carol)
        assert_not_found(refused, unstored["id"])
        await gateway.spend.flush()
        records = await client.get(
            "/spend/logs", params={"call_id": refused.headers["x-gateway-call-id"]}, headers=AUTH
        )
        assert [(r["key_alias"], r["status"]) for r in records.json()] == [("carol", "failure")]

        assert (await client.post("/key/block", json={"key": secret}, headers=AUTH)).status_code == 200
        blocked = await respond(client, "claude", "more", previous=first["id"], headers=carol)
        assert blocked.status_code == 401 and blocked.json()["error"]["code"] == "key_blocked"

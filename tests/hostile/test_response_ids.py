"""Response ids as a client may bend them: forged for another group's deployment, altered,
signed by another fleet, or issued before ids were signed.  Only an id this fleet signed
pins a deployment, and only one of the group the call resolved to."""

import base64
import logging

import orjson
import pytest
from harness import client_and_gateway, make_config, serving, sse_payloads

from gateway_trio.apis.wires import ResponseIds, response_id_key
from gateway_trio.config import ConfigError
from gateway_trio.errors import BadRequest

MASTER = "sk-master-response-ids-0123456"
AUTH = {"authorization": f"Bearer {MASTER}"}
SECRET = "fleet-response-id-secret-0123"


def config_for(upstream, *, secret=SECRET, master=MASTER):
    base = f"{upstream.base_url}/v1"
    models = [
        {"name": "ok", "model": "openai/ok-one", "api_base": base, "info": {"id": "ok-1"}},
        {"name": "ok", "model": "openai/ok-two", "api_base": base, "info": {"id": "ok-2"}},
        {"name": "other", "model": "openai/other-model", "api_base": base, "info": {"id": "ot-1"}},
    ]
    server = {"master_key": master}
    if secret is not None:
        server["response_id_secret"] = secret
    return make_config(models=models, server=server, router={"num_retries": 0})


def unsigned_id(deployment_id: str, upstream_id: str) -> str:
    """An id in the format issued before ids were signed (anyone can write one)."""
    return "resp_" + base64.urlsafe_b64encode(f"{deployment_id}:{upstream_id}".encode()).rstrip(b"=").decode()


def tampered(response_id: str, old: bytes, new: bytes) -> str:
    packed = response_id[len("resp_"):]
    data = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
    assert old in data
    return "resp_" + base64.urlsafe_b64encode(data.replace(old, new)).rstrip(b"=").decode()


def follow_up(previous: str, model: str = "ok", stream: bool = False) -> dict:
    return {"model": model, "input": "more", "previous_response_id": previous, "stream": stream}


async def first_response(client, model="ok", stream=False):
    answer = await client.post("/v1/responses", json={"model": model, "input": "hi", "stream": stream}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    if not stream:
        return answer.json()["id"], answer.headers["x-gateway-model-id"]
    events = [orjson.loads(p) for p in sse_payloads(answer.text)]
    ids = {e["response"]["id"] for e in events if e["type"] in ("response.created", "response.completed")}
    assert len(ids) == 1  # the same id in the first and the last event
    return ids.pop(), answer.headers["x-gateway-model-id"]


# --- the group ------------------------------------------------------------------------------


async def test_a_forged_id_for_another_group_s_deployment_does_not_reach_it(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        issued_by_other, deployment = await first_response(client, model="other")
        assert deployment == "ot-1"
        answers = []
        for previous in (unsigned_id("ot-1", "resp_x"), issued_by_other) * 3:
            answers.append(await client.post("/v1/responses", json=follow_up(previous), headers=AUTH))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-gateway-model-group"] == "ok"
        assert answer.headers["x-gateway-model-id"] in ("ok-1", "ok-2")
    assert {r.model for r in upstream.received[1:]} <= {"ok-one", "ok-two"}


async def test_an_old_unsigned_id_works_within_its_group_only(upstream):
    old = unsigned_id("ok-2", "resp_from_before")
    async with client_and_gateway(config_for(upstream)) as (client, _):
        within = [await client.post("/v1/responses", json=follow_up(old), headers=AUTH) for _ in range(6)]
        elsewhere = await client.post("/v1/responses", json=follow_up(old, model="other"), headers=AUTH)
    for answer in within:
        assert answer.status_code == 200 and answer.headers["x-gateway-model-id"] == "ok-2"
    assert [r.model for r in upstream.received[:6]] == ["ok-two"] * 6
    assert all(r.json["previous_response_id"] == "resp_from_before" for r in upstream.received[:6])
    assert elsewhere.status_code == 200 and elsewhere.headers["x-gateway-model-id"] == "ot-1"
    assert upstream.received[-1].model == "other-model"


# --- the signature ----------------------------------------------------------------------------


async def test_a_tampered_signed_id_is_not_honoured(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        issued, deployment = await first_response(client)
        elsewhere = b"ok-1" if deployment == "ok-2" else b"ok-2"
        moved = tampered(issued, deployment.encode(), elsewhere)
        renamed = tampered(issued, b"resp_mock1", b"resp_mock9")
        answers = [await client.post("/v1/responses", json=follow_up(forged), headers=AUTH) for forged in (moved, renamed)]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == "previous_response_id"
    assert len(upstream.received) == 1  # neither reached an upstream


@pytest.mark.parametrize("stream", [False, True])
async def test_a_signed_id_round_trips_and_is_honoured_by_the_fleet_only(upstream, stream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        issued, deployment = await first_response(client, stream=stream)
        follows = [await client.post("/v1/responses", json=follow_up(issued, stream=stream), headers=AUTH)
                   for _ in range(4)]
    for answer in follows:
        assert answer.status_code == 200 and answer.headers["x-gateway-model-id"] == deployment
    sent = upstream.received[1:]
    assert len({r.model for r in sent}) == 1 and sent[0].model == upstream.received[0].model
    assert all(r.json["previous_response_id"] == "resp_mock1" for r in sent)  # the upstream's own id restored
    # Another instance of the same fleet (same secret, even with another master key) honours it ...
    other_master = "sk-master-another-instance-42"
    async with client_and_gateway(config_for(upstream, master=other_master)) as (client, _):
        fleet = await client.post("/v1/responses", json=follow_up(issued),
                                  headers={"authorization": f"Bearer {other_master}"})
    assert fleet.status_code == 200 and fleet.headers["x-gateway-model-id"] == deployment
    # ... a gateway with another secret does not.
    async with client_and_gateway(config_for(upstream, secret="another-fleet-secret-987654")) as (client, _):
        stranger = await client.post("/v1/responses", json=follow_up(issued), headers=AUTH)
    assert stranger.status_code == 400 and stranger.json()["error"]["param"] == "previous_response_id"


# --- the key ----------------------------------------------------------------------------------


def test_ids_are_signed_and_read_back_by_the_same_key_only():
    ids = ResponseIds(response_id_key(SECRET, None))
    issued = ids.encode("dep:with:colons", "resp_abc:def")
    assert issued.startswith("resp_")
    assert ids.decode(issued) == ("dep:with:colons", "resp_abc:def")
    assert ResponseIds(response_id_key(SECRET, "any master key")).decode(issued) == ("dep:with:colons", "resp_abc:def")
    with pytest.raises(BadRequest):
        ResponseIds(response_id_key("some-other-secret-value", None)).decode(issued)
    assert ids.decode("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b") is None  # the upstream's own
    assert ids.decode(unsigned_id("dep", "up")) == ("dep", "up")
    assert ids.decode("msg_123") is None


def test_without_a_secret_the_key_comes_from_the_master_key_else_from_this_process():
    assert response_id_key(None, MASTER) == response_id_key(None, MASTER) != response_id_key(None, MASTER + "x")
    assert response_id_key(None, None) != response_id_key(None, None)


async def test_a_gateway_whose_ids_die_with_it_says_so_when_it_starts(caplog):
    with caplog.at_level(logging.WARNING, logger="gateway_trio.gateway"):
        async with serving(make_config()):
            pass
    assert "will not survive" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway_trio.gateway"):
        async with serving(make_config(server={"response_id_secret": "a-fleet-wide-secret-value"})):
            pass
    assert "will not survive" not in caplog.text


@pytest.mark.parametrize("secret", ["", "   ", "short"])
def test_a_weak_response_id_secret_is_a_load_error_naming_the_key(secret):
    with pytest.raises(ConfigError, match="server.response_id_secret"):
        make_config(server={"response_id_secret": secret})

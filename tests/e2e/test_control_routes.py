"""The admin routes of SPEC §9 against the real gateway: LiteLLM's shapes, refusals, secrets once.

Each test drives one wing (keys, teams, users, customers) through its routes in order, as an
operator's script would, checking the answer's shape at each step, and the refusals: 400
naming the field, 401 without a key, 403 for a virtual key or a config-owned row, 404 for
an id that is not there.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from harness import client_and_gateway, eventually, make_config

from gateway_trio.control.records import KeyRecord, TeamRecord

# Each test runs against SQLite and PostgreSQL (tests/conftest.py `database_url`).
pytestmark = pytest.mark.usefixtures("database_url")

MASTER = "sk-master-control-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def config():
    return make_config(models=[{"name": "m", "model": "mock/m"}], server={"master_key": MASTER})


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def ok(client, method: str, path: str, **kwargs):
    response = await client.request(method, path, headers=kwargs.pop("headers", AUTH), **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def refused(client, method: str, path: str, status: int, **kwargs):
    response = await client.request(method, path, headers=kwargs.pop("headers", AUTH), **kwargs)
    assert response.status_code == status, response.text
    return response.json()["error"]


async def test_keys_generate_info_list_update_block_regenerate_delete():
    async with client_and_gateway(config()) as (client, _):
        made = await ok(client, "POST", "/key/generate", json={
            "key_alias": "app", "max_budget": 5, "rpm_limit": 10, "duration": "1h", "models": ["m"],
            "metadata": {"owner": "ops"}, "tags": ["prod"], "budget_duration": "1d"})
        secret, token = made["key"], made["token"]
        assert secret.startswith("sk-") and len(secret) >= 35 and token == sha256(secret)
        assert made["key_name"] == f"sk-...{secret[-4:]}" and ISO.match(made["expires"])
        assert (made["max_budget"], made["rpm_limit"], made["models"]) == (5.0, 10, ["m"])
        assert ISO.match(made["budget_reset_at"]) and made["metadata"] == {"owner": "ops"}

        for asked in (secret, token):
            info = await ok(client, "GET", "/key/info", params={"key": asked})
            assert info["key"] == token and info["info"]["key_alias"] == "app" and info["info"]["spend"] == 0.0
        listing = await ok(client, "GET", "/key/list")
        assert listing == {"keys": [token], "total_count": 1, "current_page": 1, "total_pages": 1}
        full = await ok(client, "GET", "/key/list", params={"key_alias": "app", "return_full_object": "true"})
        assert full["keys"][0]["token"] == token
        assert (await ok(client, "GET", "/key/list", params={"team_id": "nobody"}))["keys"] == []
        for text in (str(info), str(listing), str(full)):
            assert secret not in text

        updated = await ok(client, "POST", "/key/update", json={"key": secret, "max_budget": 7.5, "tpm_limit": 100})
        assert (updated["key"], updated["max_budget"], updated["tpm_limit"], updated["rpm_limit"]) == (token, 7.5, 100, 10)
        assert "sk-" not in updated["key"]

        assert (await ok(client, "POST", "/key/block", json={"key": token}))["blocked"] is True
        assert (await ok(client, "GET", "/key/info", params={"key": token}))["info"]["blocked"] is True
        assert (await ok(client, "POST", "/key/unblock", json={"key": secret}))["blocked"] is False

        fresh = await ok(client, "POST", "/key/regenerate", json={"key": secret})
        assert fresh["key"] != secret and fresh["token"] == sha256(fresh["key"])
        assert (fresh["key_alias"], fresh["max_budget"], fresh["tpm_limit"]) == ("app", 7.5, 100)
        await refused(client, "GET", "/key/info", 404, params={"key": secret})  # the old secret is dead
        assert (await ok(client, "GET", "/key/info", params={"key": fresh["key"]}))["key"] == fresh["token"]

        other = await ok(client, "POST", "/key/generate", json={})
        deleted = await ok(client, "POST", "/key/delete", json={"key_aliases": ["app"], "keys": [other["key"]]})
        assert sorted(deleted["deleted_keys"]) == sorted([fresh["token"], other["token"]])
        assert (await ok(client, "GET", "/key/list"))["total_count"] == 0


async def test_key_refusals_name_the_field_and_the_status():
    async with client_and_gateway(config()) as (client, _):
        error = await refused(client, "POST", "/key/generate", 400, json={"max_budgett": 1})
        assert error["param"] == "max_budgett" and "unknown field" in error["message"]
        error = await refused(client, "POST", "/key/generate", 400, json={"rpm_limit": "ten"})
        assert error["param"] == "rpm_limit"
        assert (await refused(client, "POST", "/key/generate", 400, json={"duration": "forever"}))["param"] == "duration"
        assert (await refused(client, "POST", "/key/generate", 400, json={"team_id": "ghost"}))["param"] == "team_id"
        assert (await refused(client, "POST", "/key/generate", 400, content=b"{nope"))["param"] is None
        await ok(client, "POST", "/key/generate", json={"key_alias": "taken"})
        assert (await refused(client, "POST", "/key/generate", 400, json={"key_alias": "taken"}))["param"] == "key_alias"
        await refused(client, "POST", "/key/generate", 401, headers={}, json={})
        await refused(client, "POST", "/key/generate", 401, headers={"authorization": "Bearer sk-wrong"}, json={})
        missing = "sk-" + "0" * 40
        for method, path, kwargs in [
            ("GET", "/key/info", {"params": {"key": missing}}),
            ("POST", "/key/update", {"json": {"key": missing, "max_budget": 1}}),
            ("POST", "/key/delete", {"json": {"keys": [missing]}}),
            ("POST", "/key/delete", {"json": {"key_aliases": ["no-such-alias"]}}),
            ("POST", "/key/regenerate", {"json": {"key": missing}}),
            ("POST", "/key/block", {"json": {"key": missing}}),
            ("POST", "/key/unblock", {"json": {"key": missing}}),
        ]:
            await refused(client, method, path, 404, **kwargs)
        error = await refused(client, "GET", "/key/list", 400, params={"size": "1000"})
        assert error["param"] == "size"


async def test_a_virtual_key_reads_its_own_info_and_nothing_else():
    async with client_and_gateway(config()) as (client, _):
        mine = await ok(client, "POST", "/key/generate", json={"key_alias": "mine"})
        theirs = await ok(client, "POST", "/key/generate", json={"key_alias": "theirs"})
        as_mine = {"authorization": f"Bearer {mine['key']}"}
        assert (await ok(client, "GET", "/key/info", headers=as_mine))["key"] == mine["token"]
        assert (await ok(client, "GET", "/key/info", headers=as_mine, params={"key": mine["token"]}))["key"] == mine["token"]
        await refused(client, "GET", "/key/info", 403, headers=as_mine, params={"key": theirs["key"]})
        for method, path, kwargs in [
            ("POST", "/key/generate", {"json": {}}), ("GET", "/key/list", {}),
            ("POST", "/key/update", {"json": {"key": mine["key"], "max_budget": 100}}),
            ("POST", "/key/unblock", {"json": {"key": mine["key"]}}),
            ("POST", "/team/new", {"json": {}}), ("GET", "/team/list", {}), ("POST", "/user/new", {"json": {}}),
            ("GET", "/user/list", {}), ("POST", "/customer/new", {"json": {"user_id": "c"}}),
            ("GET", "/customer/list", {}),
        ]:
            await refused(client, method, path, 403, headers=as_mine, **kwargs)
        await ok(client, "POST", "/key/block", json={"key": mine["key"]})
        await refused(client, "GET", "/key/info", 401, headers=as_mine)  # blocked: no longer valid
        await refused(client, "GET", "/key/info", 401, headers={"authorization": "Bearer sk-unknown-123456789"})


async def test_teams_new_info_members_update_block_delete():
    async with client_and_gateway(config()) as (client, _):
        team = await ok(client, "POST", "/team/new", json={
            "team_alias": "ml", "max_budget": 50, "rpm_limit": 100, "models": ["m"],
            "members_with_roles": [{"user_id": "ann", "role": "admin"}]})
        team_id = team["team_id"]
        assert team["team_alias"] == "ml" and team["max_budget"] == 50.0 and team["blocked"] is False
        assert team["members_with_roles"] == [{"user_id": "ann", "user_email": None, "role": "admin"}]
        assert (await refused(client, "POST", "/team/new", 400, json={"team_id": team_id}))["param"] == "team_id"

        key = await ok(client, "POST", "/key/generate", json={"team_id": team_id})
        info = await ok(client, "GET", "/team/info", params={"team_id": team_id})
        assert info["team_id"] == team_id and info["team_info"]["team_alias"] == "ml"
        assert [k["token"] for k in info["keys"]] == [key["token"]] and key["key"] not in str(info)

        added = await ok(client, "POST", "/team/member_add", json={"team_id": team_id,
                                                                    "member": {"user_id": "bob", "role": "user"}})
        assert {m["user_id"] for m in added["members_with_roles"]} == {"ann", "bob"}
        assert [u["user_id"] for u in added["updated_users"]] == ["bob"]
        bob = await ok(client, "GET", "/user/info", params={"user_id": "bob"})
        assert bob["user_info"]["teams"] == [team_id]
        assert [t["team_id"] for t in await ok(client, "GET", "/team/list", params={"user_id": "bob"})] == [team_id]
        removed = await ok(client, "POST", "/team/member_delete", json={"team_id": team_id, "user_id": "bob"})
        assert [m["user_id"] for m in removed["members_with_roles"]] == ["ann"]
        assert await ok(client, "GET", "/team/list", params={"user_id": "bob"}) == []

        updated = await ok(client, "POST", "/team/update", json={"team_id": team_id, "max_budget": 60})
        assert updated["team_id"] == team_id and updated["data"]["max_budget"] == 60.0
        assert updated["data"]["rpm_limit"] == 100
        assert (await ok(client, "POST", "/team/block", json={"team_id": team_id}))["blocked"] is True
        assert (await ok(client, "POST", "/team/unblock", json={"team_id": team_id}))["blocked"] is False
        assert [t["team_id"] for t in await ok(client, "GET", "/team/list")] == [team_id]

        assert (await ok(client, "POST", "/team/delete", json={"team_ids": [team_id]})) == {"deleted_teams": [team_id]}
        await refused(client, "GET", "/key/info", 404, params={"key": key["key"]})  # the team's keys go with it
        assert await ok(client, "GET", "/team/list") == []
        for method, path, kwargs in [
            ("GET", "/team/info", {"params": {"team_id": team_id}}),
            ("POST", "/team/update", {"json": {"team_id": team_id, "max_budget": 1}}),
            ("POST", "/team/delete", {"json": {"team_ids": [team_id]}}),
            ("POST", "/team/block", {"json": {"team_id": team_id}}),
            ("POST", "/team/member_add", {"json": {"team_id": team_id, "member": {"user_id": "x", "role": "user"}}}),
            ("POST", "/team/member_delete", {"json": {"team_id": team_id, "user_id": "ann"}}),
        ]:
            await refused(client, method, path, 404, **kwargs)
        error = await refused(client, "POST", "/team/new", 400, json={"team_member_budget": 5})
        assert error["param"] == "team_member_budget" and "not supported" in error["message"]
        assert (await refused(client, "POST", "/team/update", 400, json={"max_budget": 5}))["param"] == "team_id"
        assert (await refused(client, "GET", "/team/info", 400))["param"] == "team_id"


async def test_users_new_with_a_key_shown_once_info_list_update_delete():
    async with client_and_gateway(config()) as (client, _):
        await ok(client, "POST", "/team/new", json={"team_id": "t1"})
        user = await ok(client, "POST", "/user/new", json={
            "user_id": "ann", "user_email": "ann@example.com", "max_budget": 20, "teams": ["t1"], "key_alias": "ann-key"})
        secret = user["key"]
        assert secret.startswith("sk-") and user["token"] == sha256(secret) and user["user_id"] == "ann"
        assert (user["max_budget"], user["user_email"], user["teams"]) == (20.0, "ann@example.com", ["t1"])
        assert (await refused(client, "POST", "/user/new", 400, json={"user_id": "ann"}))["param"] == "user_id"

        info = await ok(client, "GET", "/user/info", params={"user_id": "ann"})
        assert info["user_id"] == "ann" and info["user_info"]["max_budget"] == 20.0
        assert [k["token"] for k in info["keys"]] == [user["token"]] and info["keys"][0]["key_alias"] == "ann-key"
        assert [t["team_id"] for t in info["teams"]] == ["t1"] and secret not in str(info)
        team = await ok(client, "GET", "/team/info", params={"team_id": "t1"})
        assert [m["user_id"] for m in team["team_info"]["members_with_roles"]] == ["ann"]

        keyless = await ok(client, "POST", "/user/new", json={"auto_create_key": False})
        assert keyless["key"] is None and keyless["user_id"]
        listing = await ok(client, "GET", "/user/list", params={"page_size": "1"})
        assert (listing["total"], listing["page"], listing["page_size"], listing["total_pages"]) == (2, 1, 1, 2)
        assert len(listing["users"]) == 1

        updated = await ok(client, "POST", "/user/update", json={"user_id": "ann", "rpm_limit": 5})
        assert (updated["rpm_limit"], updated["max_budget"]) == (5, 20.0)
        by_email = await ok(client, "POST", "/user/update", json={"user_email": "ann@example.com", "tpm_limit": 9})
        assert (by_email["user_id"], by_email["tpm_limit"]) == ("ann", 9)
        assert (await refused(client, "POST", "/user/update", 400, json={"user_id": "ann", "password": "hunter2!"}))[
            "param"] == "password"
        assert (await refused(client, "POST", "/user/new", 400, json={"user_role": "proxy_admin"}))["param"] == "user_role"

        assert await ok(client, "POST", "/user/delete", json={"user_ids": ["ann"]}) == {"deleted_users": ["ann"]}
        await refused(client, "GET", "/key/info", 404, params={"key": secret})  # the user's key goes with them
        team = await ok(client, "GET", "/team/info", params={"team_id": "t1"})
        assert team["team_info"]["members_with_roles"] == []
        for method, path, kwargs in [
            ("GET", "/user/info", {"params": {"user_id": "ann"}}),
            ("POST", "/user/update", {"json": {"user_id": "ann", "max_budget": 1}}),
            ("POST", "/user/delete", {"json": {"user_ids": ["ann"]}}),
        ]:
            await refused(client, method, path, 404, **kwargs)
        assert (await refused(client, "POST", "/user/new", 400, json={"teams": ["no-such-team"]}))["param"] == "teams"


async def test_customers_new_info_list_update_block_delete():
    async with client_and_gateway(config()) as (client, _):
        made = await ok(client, "POST", "/customer/new", json={"user_id": "c1", "alias": "Acme", "max_budget": 3,
                                                                "budget_duration": "30d", "rpm_limit": 2})
        assert (made["user_id"], made["alias"], made["blocked"], made["spend"]) == ("c1", "Acme", False, 0.0)
        assert made["litellm_budget_table"]["max_budget"] == 3.0 and made["litellm_budget_table"]["rpm_limit"] == 2
        assert (await refused(client, "POST", "/customer/new", 400, json={"user_id": "c1"}))["param"] == "user_id"
        assert (await ok(client, "GET", "/customer/info", params={"end_user_id": "c1"}))["alias"] == "Acme"
        updated = await ok(client, "POST", "/customer/update", json={"user_id": "c1", "max_budget": 4})
        assert updated["litellm_budget_table"]["max_budget"] == 4.0 and updated["alias"] == "Acme"

        blocked = await ok(client, "POST", "/customer/block", json={"user_ids": ["c1", "c2"]})
        assert blocked == {"blocked_users": ["c1", "c2"]}
        assert (await ok(client, "GET", "/customer/info", params={"end_user_id": "c2"}))["blocked"] is True
        assert [c["user_id"] for c in await ok(client, "GET", "/customer/list")] == ["c1", "c2"]
        assert await ok(client, "POST", "/customer/unblock", json={"user_ids": ["c1"]}) == {"unblocked_users": ["c1"]}
        assert (await ok(client, "GET", "/customer/info", params={"end_user_id": "c1"}))["blocked"] is False

        assert await ok(client, "POST", "/customer/delete", json={"user_ids": ["c1", "c2"]}) == {
            "deleted_customers": ["c1", "c2"]}
        for method, path, kwargs in [
            ("GET", "/customer/info", {"params": {"end_user_id": "c1"}}),
            ("POST", "/customer/update", {"json": {"user_id": "c1", "max_budget": 1}}),
            ("POST", "/customer/delete", {"json": {"user_ids": ["c1"]}}),
            ("POST", "/customer/unblock", {"json": {"user_ids": ["c1"]}}),
        ]:
            await refused(client, method, path, 404, **kwargs)
        error = await refused(client, "POST", "/customer/new", 400, json={"user_id": "c3", "allowed_model_region": "eu"})
        assert error["param"] == "allowed_model_region"
        assert (await refused(client, "POST", "/customer/new", 400, json={"user_id": 3}))["param"] == "user_id"
        assert (await refused(client, "GET", "/customer/list", 400, params={"page": "1"}))["param"] == "page"


async def test_config_owned_rows_are_refused_with_403():
    async with client_and_gateway(config()) as (client, gateway):
        store = gateway.admin.store
        secret = "sk-config-owned-0123456789"
        await store.insert_team(TeamRecord(team_id="platform", config_owned=True))
        await store.insert_key(KeyRecord(token=sha256(secret), key_name="sk-...6789", key_alias="ops",
                                         team_id="platform", config_owned=True))
        info = await ok(client, "GET", "/key/info", params={"key": secret})
        assert info["info"]["config_owned"] is True
        for method, path, kwargs in [
            ("POST", "/key/update", {"json": {"key": secret, "max_budget": 1}}),
            ("POST", "/key/delete", {"json": {"keys": [secret]}}),
            ("POST", "/key/delete", {"json": {"key_aliases": ["ops"]}}),
            ("POST", "/key/regenerate", {"json": {"key": secret}}),
            ("POST", "/key/block", {"json": {"key": secret}}),
            ("POST", "/team/update", {"json": {"team_id": "platform", "max_budget": 1}}),
            ("POST", "/team/delete", {"json": {"team_ids": ["platform"]}}),
            ("POST", "/team/block", {"json": {"team_id": "platform"}}),
            ("POST", "/team/member_add", {"json": {"team_id": "platform", "member": {"user_id": "u", "role": "user"}}}),
        ]:
            error = await refused(client, method, path, 403, **kwargs)
            assert "config" in error["message"]
        assert (await ok(client, "GET", "/key/info", params={"key": secret}))["info"]["max_budget"] is None


@pytest.mark.parametrize("path", ["/key/generate", "/team/new", "/user/new", "/customer/new"])
async def test_bodies_that_are_not_json_objects_are_400(path):
    async with client_and_gateway(config()) as (client, _):
        error = await refused(client, "POST", path, 400, json=["not", "an", "object"])
        assert "JSON object" in error["message"]


async def test_spend_report_groups_calls():
    async with client_and_gateway(config()) as (client, gateway):
        for model in ("m", "m"):
            response = await client.post("/v1/chat/completions", headers=AUTH,
                                         json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200, response.text
        await eventually(lambda: gateway.spend._accepted >= 2)
        rows = await ok(client, "GET", "/spend/report", params={"group_by": "model", "start": "2000-01-01"})
        assert [(row["group"], row["requests"]) for row in rows] == [("m", 2)]
        assert rows[0]["total_tokens"] == rows[0]["prompt_tokens"] + rows[0]["completion_tokens"] > 0
        assert await ok(client, "GET", "/spend/report", params={"group_by": "model", "end": "2000-01-01"}) == []
        assert (await refused(client, "GET", "/spend/report", 400, params={"group_by": "org"}))["param"] == "group_by"
        assert (await refused(client, "GET", "/spend/report", 400))["param"] == "group_by"
        await refused(client, "GET", "/spend/report", 401, headers={}, params={"group_by": "key"})

"""The admin operations over a real (in-memory) store: times from durations, config-owned
rows, and every change reported so a key cache can drop it at once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway_trio.auth import hash_key
from gateway_trio.control import requests as rq
from gateway_trio.control.admin import Admin, token_of
from gateway_trio.control.database import open_database
from gateway_trio.control.records import KeyRecord
from gateway_trio.control.store import ControlStore, Store
from gateway_trio.errors import BadRequest, Forbidden, NotFound

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def admin(database_url: str):
    changes: list[tuple[str, tuple[str, ...]]] = []
    store = Store(ControlStore(open_database(database_url), clock=lambda: NOW))
    admin = Admin(store, clock=lambda: NOW, changed=lambda kind, ids: changes.append((kind, tuple(ids))))
    admin.changes = changes  # type: ignore[attr-defined]
    yield admin
    store.blocking.close()


def body(model, **fields):
    return rq.parse_body(model, fields)


def test_a_key_is_named_by_its_secret_or_its_token() -> None:
    token = hash_key("sk-some-secret")
    assert token_of("sk-some-secret") == token and token_of(token) == token


async def test_generate_turns_durations_into_times(admin) -> None:
    key, secret = await admin.generate_key(body(rq.GenerateKeyRequest, duration="1mo", budget_duration="1d",
                                                model_max_budget={"m": {"budget_limit": 1, "time_period": "7d"}}))
    assert key.token == hash_key(secret) and key.key_name == f"sk-...{secret[-4:]}"
    assert key.expires == datetime(2026, 2, 28, 12, 0, tzinfo=timezone.utc).timestamp()  # a calendar month
    assert key.budget_reset_at == NOW + 86400
    assert key.model_budget_reset_at == {"m": NOW + 7 * 86400}
    chosen, secret = await admin.generate_key(body(rq.GenerateKeyRequest), "sk-chosen-by-the-caller")
    assert secret == "sk-chosen-by-the-caller" and chosen.expires is None and chosen.budget_reset_at is None


async def test_every_change_is_reported_for_the_key_cache(admin) -> None:
    key, secret = await admin.generate_key(body(rq.GenerateKeyRequest))
    await admin.update_key(body(rq.UpdateKeyRequest, key=secret, max_budget=2))
    await admin.block_key(secret, True)
    renewed, _ = await admin.regenerate_key(body(rq.RegenerateKeyRequest, key=key.token))
    await admin.delete_keys(body(rq.DeleteKeysRequest, keys=[renewed.token]))
    assert admin.changes == [("key", (key.token,))] * 3 + [("key", (key.token, renewed.token)),
                                                           ("key", (renewed.token,))]


async def test_update_sets_spend_and_restarts_a_changed_budget_period(admin) -> None:
    _, secret = await admin.generate_key(body(rq.GenerateKeyRequest, budget_duration="1d"))
    updated = await admin.update_key(body(rq.UpdateKeyRequest, key=secret, spend=1.25, budget_duration="1h",
                                          duration="30s"))
    assert updated.spend == 1.25 and updated.budget_reset_at == NOW + 3600 and updated.expires == NOW + 30
    cleared = await admin.update_key(body(rq.UpdateKeyRequest, key=secret, duration=None))
    assert cleared.expires is None and cleared.budget_reset_at == NOW + 3600


async def test_config_owned_rows_are_refused(admin) -> None:
    secret = "sk-declared-in-the-config"
    await admin.store.insert_key(KeyRecord(token=hash_key(secret), key_name="sk-...nfig", config_owned=True))
    with pytest.raises(Forbidden):
        await admin.update_key(body(rq.UpdateKeyRequest, key=secret, max_budget=1))
    with pytest.raises(Forbidden):
        await admin.delete_keys(body(rq.DeleteKeysRequest, keys=[secret]))
    assert admin.changes == []


async def test_missing_ids_and_unknown_teams(admin) -> None:
    with pytest.raises(NotFound):
        await admin.key("sk-nobody")
    with pytest.raises(BadRequest) as caught:
        await admin.generate_key(body(rq.GenerateKeyRequest, team_id="ghost"))
    assert caught.value.param == "team_id"
    with pytest.raises(NotFound):
        await admin.block_end_users(["never-seen"], False)
    blocked = await admin.block_end_users(["never-seen"], True)  # blocked before the first call
    assert [(c.user_id, c.blocked) for c in blocked] == [("never-seen", True)]


async def test_deleting_a_team_reports_its_keys(admin) -> None:
    team = await admin.new_team(body(rq.NewTeamRequest, team_id="t", members_with_roles=[{"user_id": "u", "role": "user"}]))
    key, _ = await admin.generate_key(body(rq.GenerateKeyRequest, team_id=team.team_id))
    assert await admin.delete_teams(["t"]) == ["t"]
    assert ("key", (key.token,)) in admin.changes and ("team", ("t",)) in admin.changes

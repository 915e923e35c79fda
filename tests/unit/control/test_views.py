"""Records rendered as LiteLLM's answers: the shapes, ISO times, and a secret shown only once."""

from __future__ import annotations

from types import MappingProxyType

import orjson

from gateway_trio.control.records import EndUserRecord, KeyRecord, ModelBudget, TeamMember, TeamRecord, UserRecord
from gateway_trio.control.views import (
    deleted_view,
    end_user_view,
    generated_key_view,
    iso,
    key_info_view,
    key_list_view,
    key_view,
    member_add_view,
    new_user_view,
    team_info_view,
    team_update_view,
    user_info_view,
    user_list_view,
)

SECRET = "sk-" + "q" * 40
KEY = KeyRecord(
    token="ab" * 32, key_name="sk-...qqqq", key_alias="app", team_id="t1", user_id="u1", models=("gpt-4o",),
    aliases=MappingProxyType({"fast": "gpt-4o-mini"}), max_budget=10.0, spend=1.5, rpm_limit=5,
    model_max_budget=MappingProxyType({"gpt-4o": ModelBudget(2.0, "1d")}), metadata=MappingProxyType({"a": 1}),
    expires=1767225600.0, created_at=1767225600.0, updated_at=1767225600.0,
)
TEAM = TeamRecord(team_id="t1", team_alias="ml", max_budget=50.0,
                  members_with_roles=(TeamMember("u1", None, "admin"), TeamMember("u2", "b@x.io", "user")))
USER = UserRecord(user_id="u1", user_email="a@x.io", max_budget=20.0, teams=("t1",))


def test_iso_times_are_utc() -> None:
    assert iso(1767225600.0) == "2026-01-01T00:00:00+00:00"
    assert iso(None) is None


def test_a_key_is_shown_by_its_hash_and_serialises() -> None:
    view = key_view(KEY)
    assert view["token"] == KEY.token and view["key_name"] == "sk-...qqqq" and "key" not in view
    assert view["expires"] == "2026-01-01T00:00:00+00:00" and view["budget_reset_at"] is None
    assert view["model_max_budget"] == {"gpt-4o": {"budget_limit": 2.0, "time_period": "1d"}}
    assert view["aliases"] == {"fast": "gpt-4o-mini"} and view["models"] == ["gpt-4o"]
    orjson.dumps(view)  # read-only mappings rendered as dicts


def test_the_secret_is_only_in_the_generate_answer() -> None:
    generated = generated_key_view(KEY, SECRET)
    assert generated["key"] == SECRET and generated["token"] == KEY.token and generated["key_alias"] == "app"
    for other in (key_info_view(KEY), key_list_view([KEY], total=1, page=1, size=10, full_objects=True),
                  team_info_view(TEAM, [KEY]), user_info_view(USER, [KEY], [TEAM])):
        assert SECRET not in orjson.dumps(other).decode()


def test_key_info_and_list_shapes() -> None:
    assert key_info_view(KEY) == {"key": KEY.token, "info": key_view(KEY)}
    listing = key_list_view([KEY], total=21, page=3, size=10)
    assert listing == {"keys": [KEY.token], "total_count": 21, "current_page": 3, "total_pages": 3}
    assert key_list_view([], total=0, page=1, size=10)["total_pages"] == 1


def test_team_shapes() -> None:
    info = team_info_view(TEAM, [KEY])
    assert info["team_id"] == "t1" and info["team_info"]["team_alias"] == "ml"
    assert info["team_info"]["members_with_roles"] == [
        {"user_id": "u1", "user_email": None, "role": "admin"}, {"user_id": "u2", "user_email": "b@x.io", "role": "user"}]
    assert info["team_info"]["admins"] == ["u1"] and info["keys"][0]["token"] == KEY.token
    assert team_update_view(TEAM)["data"]["max_budget"] == 50.0
    added = member_add_view(TEAM, [USER])
    assert added["team_id"] == "t1" and added["updated_users"][0]["user_id"] == "u1"


def test_user_shapes() -> None:
    created = new_user_view(USER, KEY, SECRET)
    assert created["key"] == SECRET and created["user_id"] == "u1" and created["max_budget"] == 20.0
    assert created["user_email"] == "a@x.io" and created["teams"] == ["t1"]
    keyless = new_user_view(USER, None, None)
    assert keyless["key"] is None and keyless["user_id"] == "u1"
    info = user_info_view(USER, [KEY], [TEAM])
    assert info["user_info"]["user_role"] == "internal_user" and info["teams"][0]["team_id"] == "t1"
    listing = user_list_view([USER], total=26, page=2, page_size=25)
    assert (listing["total"], listing["page"], listing["page_size"], listing["total_pages"]) == (26, 2, 25, 2)


def test_end_user_budget_is_in_litellms_budget_table() -> None:
    plain = end_user_view(EndUserRecord(user_id="c1"))
    assert plain["litellm_budget_table"] is None and plain["blocked"] is False
    budgeted = end_user_view(EndUserRecord(user_id="c1", max_budget=3.0, budget_duration="1d", rpm_limit=2))
    assert budgeted["litellm_budget_table"]["max_budget"] == 3.0
    assert budgeted["litellm_budget_table"]["rpm_limit"] == 2


def test_deletions_answer_as_litellm() -> None:
    assert deleted_view("keys", iter(["h1"])) == {"deleted_keys": ["h1"]}

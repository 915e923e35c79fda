"""The admin routes' bodies and query strings: LiteLLM's names, strict types, refusals by name."""

from __future__ import annotations

import pytest

from gateway_trio.control.queries import KeyListQuery, SpendReportQuery, TeamInfoQuery, UserListQuery, parse_query
from gateway_trio.control.records import ModelBudget, TeamMember
from gateway_trio.control.requests import (
    BlockUsersRequest,
    DeleteKeysRequest,
    DeleteTeamsRequest,
    GenerateKeyRequest,
    NewCustomerRequest,
    NewTeamRequest,
    NewUserRequest,
    RegenerateKeyRequest,
    TeamMemberAddRequest,
    TeamMemberDeleteRequest,
    UpdateCustomerRequest,
    UpdateKeyRequest,
    UpdateTeamRequest,
    UpdateUserRequest,
    check_duration,
    parse_body,
)
from gateway_trio.errors import BadRequest


def refused(model, body) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        parse_body(model, body)
    return caught.value


def test_generate_key_takes_litellms_fields_with_litellms_defaults() -> None:
    body = parse_body(GenerateKeyRequest, b'{"key_alias": "app", "max_budget": 1, "rpm_limit": 5, '
                                          b'"models": ["gpt-4o"], "duration": "30d", "metadata": {"team": "x"}}')
    fields = body.record_fields()
    assert fields["key_alias"] == "app" and fields["max_budget"] == 1.0 and fields["rpm_limit"] == 5
    assert fields["models"] == ("gpt-4o",) and fields["metadata"] == {"team": "x"}
    assert body.duration == "30d" and "duration" not in fields
    defaults = parse_body(GenerateKeyRequest, b"").record_fields()
    assert defaults["spend"] == 0.0 and defaults["blocked"] is False and defaults["models"] == ()
    assert defaults["max_budget"] is None and defaults["allowed_routes"] == ()


def test_model_max_budget_in_either_of_litellms_spellings_and_the_shorthand() -> None:
    body = parse_body(GenerateKeyRequest, {"model_max_budget": {
        "a": {"budget_limit": 2, "time_period": "1d"}, "b": {"max_budget": 1.5, "budget_duration": "1mo"}, "c": 3}})
    assert body.record_fields()["model_max_budget"] == {
        "a": ModelBudget(2.0, "1d"), "b": ModelBudget(1.5, "1mo"), "c": ModelBudget(3.0, None)}
    error = refused(GenerateKeyRequest, {"model_max_budget": {"a": {"budget_limit": 1, "max_budget": 2}}})
    assert error.param == "model_max_budget" and "model_max_budget.a" in error.message


@pytest.mark.parametrize("body, field", [
    ({"max_budget": "10"}, "max_budget"),
    ({"rpm_limit": 1.5}, "rpm_limit"),
    ({"rpm_limit": True}, "rpm_limit"),
    ({"models": "gpt-4o"}, "models"),
    ({"models": [1]}, "models"),
    ({"blocked": "true"}, "blocked"),
    ({"metadata": []}, "metadata"),
    ({"model_tpm_limit": {"m": "3"}}, "model_tpm_limit"),
    ({"max_budget": -1}, "max_budget"),
    ({"duration": "1 week"}, "duration"),
    ({"budget_duration": "0d"}, "budget_duration"),
    ({"key": "not-sk-prefixed-but-long"}, "key"),
    ({"key": "sk-short"}, "key"),
])
def test_wrong_types_are_a_400_naming_the_field(body, field) -> None:
    error = refused(GenerateKeyRequest, body)
    assert error.status == 400 and error.param == field and field in error.message


def test_unknown_fields_are_a_400_naming_the_field() -> None:
    error = refused(GenerateKeyRequest, {"max_budgett": 1})
    assert error.param == "max_budgett" and error.message == "unknown field 'max_budgett'"
    assert refused(NewTeamRequest, {"team_alias": "a", "colour": "red"}).param == "colour"


def test_unimplemented_litellm_fields_pass_at_their_inert_value_and_are_refused_otherwise() -> None:
    # What LiteLLM's own clients send by default must not fail...
    parse_body(GenerateKeyRequest, {"config": {}, "permissions": {}, "allowed_cache_controls": [],
                                    "key_type": "default", "auto_rotate": False, "organization_id": None})
    # ...but a setting we would silently not honour is refused by name.
    for name, value in [("config", {"x": 1}), ("key_type", "read_only"), ("auto_rotate", True),
                        ("organization_id", "org-1"), ("budget_id", "b"), ("enforced_params", ["user"])]:
        error = refused(GenerateKeyRequest, {name: value})
        assert error.param == name and "not supported" in error.message
    assert refused(RegenerateKeyRequest, {"key": "sk-x", "grace_period": "1h"}).param == "grace_period"
    assert refused(NewTeamRequest, {"team_member_budget": 5}).param == "team_member_budget"
    assert refused(NewUserRequest, {"user_alias": "bob"}).param == "user_alias"
    assert refused(NewCustomerRequest, {"user_id": "c", "allowed_model_region": "eu"}).param == "allowed_model_region"


def test_an_inert_value_must_be_inert_in_type_too() -> None:
    assert refused(GenerateKeyRequest, {"auto_rotate": 0}).param == "auto_rotate"


def test_bodies_that_are_not_objects_are_refused() -> None:
    assert "JSON object" in refused(GenerateKeyRequest, b"[1]").message
    assert "not valid JSON" in refused(GenerateKeyRequest, b"{").message


def test_secrets_never_appear_in_a_repr_or_an_error() -> None:
    secret = "sk-" + "s3cr3t" * 6
    body = parse_body(UpdateKeyRequest, {"key": secret, "max_budget": 2})
    assert secret not in repr(body) and body.key.get_secret_value() == secret
    error = refused(GenerateKeyRequest, {"key": secret + " with a space"})
    assert "s3cr3t" not in error.message
    deletion = parse_body(DeleteKeysRequest, {"keys": [secret]})
    assert secret not in repr(deletion) and deletion.key_texts() == [secret]


def test_an_update_changes_only_what_was_sent() -> None:
    body = parse_body(UpdateKeyRequest, {"key": "sk-abc", "max_budget": None, "tags": ["a"]})
    assert body.record_fields() == {"max_budget": None, "tags": ("a",)}
    error = refused(UpdateKeyRequest, {"key": "sk-abc", "models": None})
    assert error.param == "models" and "null" in error.message
    assert refused(UpdateKeyRequest, {"max_budget": 1}).param == "key"
    team = parse_body(UpdateTeamRequest, {"team_id": "t", "rpm_limit": 3})
    assert team.record_fields() == {"rpm_limit": 3}
    customer = parse_body(UpdateCustomerRequest, {"user_id": "c", "blocked": True})
    assert customer.record_fields() == {"blocked": True}


def test_regenerate_takes_a_new_secret_and_setting_changes() -> None:
    body = parse_body(RegenerateKeyRequest, {"key": "sk-old", "new_key": "sk-" + "n" * 20, "max_budget": 4})
    assert body.new_key is not None and body.record_fields() == {"max_budget": 4.0}


def test_key_deletion_needs_keys_or_aliases() -> None:
    assert "at least one" in refused(DeleteKeysRequest, {}).message
    assert parse_body(DeleteKeysRequest, {"key_aliases": ["a"]}).key_aliases == ["a"]


def test_teams_with_members_and_member_changes() -> None:
    team = parse_body(NewTeamRequest, {"team_alias": "ml", "members_with_roles": [
        {"user_id": "u1", "role": "admin"}, {"user_email": "b@x.io", "role": "user"}], "max_budget": 10})
    fields = team.record_fields()
    assert fields["members_with_roles"] == (TeamMember("u1", None, "admin"), TeamMember(None, "b@x.io", "user"))
    assert fields["team_alias"] == "ml" and "team_id" not in fields
    single = parse_body(TeamMemberAddRequest, {"team_id": "t", "member": {"user_id": "u", "role": "user"}})
    assert single.records() == (TeamMember("u", None, "user"),)
    assert refused(TeamMemberAddRequest, {"team_id": "t", "member": {"role": "user"}}).param == "member"
    assert refused(TeamMemberAddRequest, {"team_id": "t", "member": []}).param == "member"
    assert refused(TeamMemberAddRequest, {"team_id": "t", "member": {"user_id": "u", "role": "owner"}}).param == "member"
    assert refused(TeamMemberDeleteRequest, {"team_id": "t"}).message.startswith("either")
    assert refused(DeleteTeamsRequest, {"team_ids": []}).param == "team_ids"


def test_new_user_separates_the_users_fields_from_its_keys() -> None:
    body = parse_body(NewUserRequest, {"user_email": "a@x.io", "max_budget": 5, "models": ["m"], "key_alias": "k",
                                       "teams": ["t1", {"team_id": "t2", "user_role": "admin"}], "team_id": "t3"})
    user = body.user_fields()
    assert user["max_budget"] == 5.0 and user["teams"] == ("t1", "t2", "t3") and user["user_role"] == "internal_user"
    assert body.key_fields() == {"key_alias": "k", "models": ("m",), "team_id": "t3", "metadata": {}}
    assert body.auto_create_key is True
    assert refused(NewUserRequest, {"user_role": "proxy_admin"}).param == "user_role"
    assert refused(NewUserRequest, {"teams": [{"team_id": "t", "max_budget_in_team": 1}]}).param == "teams"


def test_user_update_by_id_or_email() -> None:
    assert parse_body(UpdateUserRequest, {"user_id": "u", "max_budget": 3}).record_fields() == {"max_budget": 3.0}
    assert parse_body(UpdateUserRequest, {"user_email": "a@x.io", "rpm_limit": 1}).record_fields() == {"rpm_limit": 1}
    assert refused(UpdateUserRequest, {"max_budget": 3}).message.startswith("either")


def test_customers() -> None:
    fields = parse_body(NewCustomerRequest, {"user_id": "c1", "max_budget": 2, "budget_duration": "1d"}).record_fields()
    assert fields["max_budget"] == 2.0 and fields["spend"] == 0.0 and fields["blocked"] is False
    assert refused(NewCustomerRequest, {"alias": "x"}).param == "user_id"
    assert refused(BlockUsersRequest, {"user_ids": "c1"}).param == "user_ids"


@pytest.mark.parametrize("text", ["30s", "10m", "1h", "1d", "7d", "30d", "1mo", "2w"])
def test_the_duration_grammar(text) -> None:
    assert check_duration(text) == text


@pytest.mark.parametrize("text", ["", "1", "d", "0s", "-1d", "1y", "1 d", "1.5h", "1month", "1D"])
def test_durations_that_cannot_be_read(text) -> None:
    with pytest.raises(ValueError):
        check_duration(text)


def test_queries_read_text_and_refuse_unknown_parameters() -> None:
    query = parse_query(KeyListQuery, {"page": "2", "size": "5", "team_id": "t", "include_team_keys": "false"})
    assert (query.page, query.size, query.team_id, query.return_full_object) == (2, 5, "t", False)
    assert parse_query(UserListQuery, {}).page_size == 25
    for args, field in [({"size": "101"}, "size"), ({"page": "0"}, "page"), ({"pgae": "1"}, "pgae"),
                        ({"organization_id": "o"}, "organization_id"), ({"include_team_keys": "true"}, "include_team_keys")]:
        with pytest.raises(BadRequest) as caught:
            parse_query(KeyListQuery, args)
        assert caught.value.param == field
    with pytest.raises(BadRequest) as caught:
        parse_query(TeamInfoQuery, {})
    assert caught.value.param == "team_id"


def test_spend_report_query() -> None:
    query = parse_query(SpendReportQuery, {"group_by": "end_user", "start": "2026-01-01", "end": "1767312000"})
    assert query.group_by == "end_user" and query.start == 1767225600.0 and query.end == 1767312000.0
    for args, field in [({}, "group_by"), ({"group_by": "org"}, "group_by"), ({"group_by": "key", "end": "soon"}, "end")]:
        with pytest.raises(BadRequest) as caught:
            parse_query(SpendReportQuery, args)
        assert caught.value.param == field

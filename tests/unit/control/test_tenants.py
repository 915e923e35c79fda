"""The UserAPIKeyAuth hooks receive: LiteLLM's fields from key, team and user; a copy per call."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from gateway_trio.control.records import EndUserRecord, KeyRecord, ModelBudget, TeamRecord, Tenant, UserRecord
from gateway_trio.control.tenants import TenantAuths, key_auth

KEY = KeyRecord(
    token="f" * 64, key_name="sk-...wxyz", key_alias="ci", user_id="u1", team_id="t1", models=("gpt-4o",),
    max_budget=5.0, soft_budget=4.0, spend=1.25, rpm_limit=10, tpm_limit=1000, max_parallel_requests=3,
    budget_duration="1mo", budget_reset_at=1_700_000_000.0, expires=1_800_000_000.0, tags=("prod",),
    metadata={"owner": "ops"}, allowed_routes=("/chat/completions",), model_max_budget={"gpt-4o": ModelBudget(2.0, "1d")},
)
TEAM = TeamRecord(team_id="t1", team_alias="research", models=("gpt-4o", "claude"), max_budget=50.0, spend=7.0,
                  rpm_limit=100, tpm_limit=10_000, metadata={"cost_center": "42"})
USER = UserRecord(user_id="u1", user_email="a@example.com", user_role="internal_user")
TENANT = Tenant(KEY, TEAM, USER)


def test_fields_come_from_key_team_and_user() -> None:
    auth = key_auth(TENANT)
    assert auth.api_key == auth.token == KEY.token
    assert (auth.key_alias, auth.key_name, auth.user_id, auth.team_id) == ("ci", "sk-...wxyz", "u1", "t1")
    assert (auth.max_budget, auth.soft_budget, auth.spend) == (5.0, 4.0, 1.25)
    assert (auth.rpm_limit, auth.tpm_limit, auth.max_parallel_requests) == (10, 1000, 3)
    assert auth.models == ["gpt-4o"] and auth.tags == ["prod"] and auth.metadata == {"owner": "ops"}
    assert auth.expires == datetime.fromtimestamp(1_800_000_000, timezone.utc)
    assert auth.budget_reset_at == datetime.fromtimestamp(1_700_000_000, timezone.utc)
    assert auth.budget_duration == "1mo" and auth.allowed_routes == ["/chat/completions"] and auth.blocked is False
    assert auth.model_max_budget == {"gpt-4o": {"budget_limit": 2.0, "time_period": "1d"}}
    assert (auth.team_alias, auth.team_max_budget, auth.team_spend) == ("research", 50.0, 7.0)
    assert auth.team_models == ["gpt-4o", "claude"] and auth.team_metadata == {"cost_center": "42"}
    assert (auth.team_rpm_limit, auth.team_tpm_limit) == (100, 10_000)
    assert (auth.user_email, auth.user_role) == ("a@example.com", "internal_user")
    assert auth.end_user_id is None


def test_a_key_alone() -> None:
    auth = key_auth(Tenant(KeyRecord(token="0" * 64, key_name="sk-...0000")))
    assert auth.team_alias is None and auth.team_metadata is None and auth.user_email is None


def test_the_template_is_built_once_per_tenant_object() -> None:
    auths = TenantAuths(max_entries=2)
    first = auths.template(TENANT)
    assert auths.template(TENANT) is first
    changed = Tenant(replace(KEY, key_alias="renamed"), TEAM, USER)
    renamed = auths.template(changed)
    assert renamed.key_alias == "renamed" and auths.template(changed) is renamed
    for n in range(3):
        auths.template(Tenant(KeyRecord(token=str(n) * 64, key_name=f"sk-...{n}")))
    rebuilt = auths.template(changed)  # pushed out by newer keys: built again, then kept
    assert rebuilt is not renamed and rebuilt == renamed and auths.template(changed) is rebuilt


def test_each_call_gets_its_own_copy_with_its_end_user() -> None:
    auths = TenantAuths()
    one = auths.for_call(TENANT, "cust-1", spend=2.5)
    one.metadata["touched"] = True
    one.models.append("hacked")
    two = auths.for_call(TENANT, end_user=EndUserRecord(user_id="cust-2", rpm_limit=7, max_budget=1.0))
    assert one.end_user_id == "cust-1" and one.spend == 2.5
    assert two.end_user_id == "cust-2" and two.end_user_rpm_limit == 7 and two.end_user_max_budget == 1.0
    assert two.metadata == {"owner": "ops"} and two.models == ["gpt-4o"] and two.spend == 1.25
    assert auths.template(TENANT).metadata == {"owner": "ops"}

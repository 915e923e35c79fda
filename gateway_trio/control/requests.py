"""The request bodies of the admin routes (SPEC §9), with LiteLLM's field names and defaults.

A script written for the LiteLLM proxy must work unchanged, so the bodies are LiteLLM's
(`GenerateKeyRequest`, `UpdateKeyRequest`, `RegenerateKeyRequest`, `KeyRequest`,
`BlockKeyRequest`, `NewTeamRequest`, `UpdateTeamRequest`, `DeleteTeamRequest`,
`BlockTeamRequest`, `TeamMemberAddRequest`, `TeamMemberDeleteRequest`, `NewUserRequest`,
`UpdateUserRequest`, `DeleteUserRequest`, `NewCustomerRequest`, `UpdateCustomerRequest`,
`DeleteCustomerRequest`, `BlockUsers`).  Parsing is stricter than LiteLLM's, as the config
is: an unknown field or a wrong type is a 400 that names the field, because a typo in
`max_budget` must never leave a key without its cap.

Fields LiteLLM accepts whose effect this gateway does not implement are refused by name
unless they are at their inert value (None, false, empty, or LiteLLM's default), so that
LiteLLM's own clients, which send the defaults, still work, and nobody is told "done" for a
setting that would be silently ignored.  They are, per body (see `UNSUPPORTED_*`):
organisations, projects, agents and shared budgets (`organization_id`, `project_id`,
`agent_id`, `budget_id`); LiteLLM's permission objects (`object_permission`, `permissions`,
`config`, `allowed_cache_controls`, `enforced_params`, `allowed_passthrough_routes`,
`allowed_vector_store_indexes`, `access_group_ids`, `router_settings`, `policies`,
`prompts`); throughput modes (`rpm_limit_type`, `tpm_limit_type`); key rotation and
grace periods (`auto_rotate`, `rotation_interval`, `grace_period`, `new_master_key`,
`temp_budget_increase`, `temp_budget_expiry`); key types other than the LLM-route default
(`key_type`); e-mail and SSO (`send_invite_email`, `sso_user_id`, `password`,
`organizations`); per-member team budgets and limits (`team_member_*`,
`max_budget_in_team`); team fields our team has no place for (`model_aliases`, `tags`,
`soft_budget`, `model_rpm_limit`, `model_tpm_limit`, `secret_manager_settings`,
`enforced_*_expires_after`, legacy `admins`/`members`); the end-user's regions and default
model (`allowed_model_region`, `default_model`); and the user fields our user has no place
for (`user_alias`, `blocked`, `aliases`, `guardrails`, `model_max_budget`, per-model
limits).  User roles that would grant admin rights (`proxy_admin`, `proxy_admin_viewer`)
are refused too: a virtual key never reaches the admin routes.

Accepted as given: everything the records of `control/records.py` hold, including the
metadata-like `key_alias`, `metadata`, `tags` and `soft_budget` of a key.  A body parses
into a frozen model; an update body's `changes()` are only the fields the caller sent
(LiteLLM's "defaults of all params here MUST BE NONE" rule, made exact).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Iterable, Literal, Mapping, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway_trio.control.records import ModelBudget, TeamMember
from gateway_trio.errors import BadRequest

# The grammar of SPEC §9 ("30s", "10m", "1h", "1d", "7d", "30d", "1mo") with LiteLLM's weeks
# ("1w"), as `control/durations` reads it: that module turns one into times, this only refuses
# at the edge what it could never read (and counts of more than six digits, which no budget means).
DURATION = re.compile(r"([1-9][0-9]{0,5})(mo|s|m|h|d|w)")


def check_duration(value: str) -> str:
    if not DURATION.fullmatch(value):
        raise ValueError("must be a duration: a number and s, m, h, d, w or mo (\"30s\", \"1h\", \"30d\", \"1mo\")")
    return value


Duration = Annotated[str, AfterValidator(check_duration)]
Money = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Names = list[str]

# Values of an unsupported field that ask for nothing: what LiteLLM's clients send by default.
INERT: tuple[Any, ...] = (None, False, "", [], {})


class Body(BaseModel):
    """A request body: strict types, no unknown fields, frozen, secrets never in a repr."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, protected_namespaces=())

    # LiteLLM's fields we accept only at an inert value, with the inert values beyond INERT.
    UNSUPPORTED: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    # Fields that name the object (not changed by an update).
    IDENTITY: ClassVar[frozenset[str]] = frozenset()

    def refuse_nulls(self, *names: str) -> None:
        """An update that sends null for a field that cannot be "none" (a list, a flag) is a
        400 naming it (raised as is: pydantic passes a non-`ValueError` through)."""
        for name in names:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise BadRequest(f"'{name}' may not be null", param=name)

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent, but for the ones that name the object."""
        return {name: getattr(self, name) for name in self.model_fields_set if name not in self.IDENTITY}


def _unsupported(*names: str, **inert: tuple[Any, ...]) -> Mapping[str, tuple[Any, ...]]:
    return {**{name: () for name in names}, **inert}


B = TypeVar("B", bound=Body)


def parse_body(model: type[B], raw: bytes | Any) -> B:
    """`raw` (the request's bytes, or its already decoded JSON) as a `model`, or a 400 naming
    the first field that is wrong."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = orjson.loads(raw) if len(raw) else {}
        except orjson.JSONDecodeError:
            raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise BadRequest("the request body must be a JSON object")
    return validate_fields(model, raw)


def validate_fields(model: type[B], raw: Mapping[str, Any]) -> B:
    """`raw` as a `model`: its unsupported fields refused unless inert, then validated."""
    for name, value in raw.items():
        extra_inert = model.UNSUPPORTED.get(name)
        if extra_inert is not None and not _is_inert(value, extra_inert):
            raise BadRequest(f"'{name}' is not supported by this gateway (its effect is not implemented)", param=name)
    body = {name: value for name, value in raw.items() if name not in model.UNSUPPORTED}
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise validation_error(error) from None


def _is_inert(value: Any, extra: tuple[Any, ...]) -> bool:
    return any(value is v or (type(value) is type(v) and value == v) for v in INERT + extra)


def validation_error(error: ValidationError) -> BadRequest:
    """The first of pydantic's complaints as a 400 naming the field; never the value sent."""
    first = error.errors(include_url=False, include_input=False)[0]
    location = [str(part) for part in first["loc"]]
    field = location[0] if location else None
    path = ".".join(location)
    if first["type"] == "extra_forbidden":
        message = f"unknown field '{path}'"
    elif first["type"] == "missing":
        message = f"'{path}' is required"
    elif not location:  # a whole-body rule (a model validator)
        message = first["msg"].removeprefix("Value error, ")
    else:
        message = f"'{path}': {first['msg'].removeprefix('Value error, ')}"
    return BadRequest(message, param=field)


# --- pieces shared by several bodies -------------------------------------------------------


class ModelBudgetBody(Body):
    """One entry of `model_max_budget`: LiteLLM's `BudgetConfig` names, either spelling."""

    budget_limit: Money | None = None
    max_budget: Money | None = None
    time_period: Duration | None = None
    budget_duration: Duration | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> ModelBudgetBody:
        if (self.budget_limit is None) == (self.max_budget is None):
            raise ValueError("give exactly one of 'budget_limit' or 'max_budget'")
        if self.time_period is not None and self.budget_duration is not None:
            raise ValueError("give at most one of 'time_period' or 'budget_duration'")
        return self

    def record(self) -> ModelBudget:
        limit = self.budget_limit if self.budget_limit is not None else self.max_budget
        assert limit is not None
        return ModelBudget(budget_limit=limit, time_period=self.time_period or self.budget_duration)


def _model_budgets_shorthand(value: Any) -> Any:
    """LiteLLM also takes `{"gpt-4": 5.0}`: a bare number is the budget limit."""
    if isinstance(value, dict):
        return {
            model: {"budget_limit": entry} if isinstance(entry, (int, float)) and not isinstance(entry, bool) else entry
            for model, entry in value.items()
        }
    return value


class MemberBody(Body):
    """LiteLLM's `Member`: a user by id or e-mail, with a role in the team."""

    user_id: str | None = None
    user_email: str | None = None
    role: Literal["admin", "user"]

    @model_validator(mode="after")
    def _someone(self) -> MemberBody:
        if self.user_id is None and self.user_email is None:
            raise ValueError("either 'user_id' or 'user_email' must be given")
        return self

    def record(self) -> TeamMember:
        return TeamMember(user_id=self.user_id, user_email=self.user_email, role=self.role)


# --- keys --------------------------------------------------------------------------------

# Of LiteLLM's `KeyRequestBase`/`GenerateRequestBase`: what no key of ours can do.
_KEY_UNSUPPORTED = _unsupported(
    "agent_id", "budget_id", "config", "permissions", "allowed_cache_controls", "policies", "prompts",
    "object_permission", "enforced_params", "allowed_passthrough_routes", "allowed_vector_store_indexes",
    "rpm_limit_type", "tpm_limit_type", "router_settings", "access_group_ids", "organization_id",
    "auto_rotate", "rotation_interval",
)


class KeySettings(Body):
    """What a key holds, as `/key/generate` takes it (LiteLLM's defaults)."""

    UNSUPPORTED: ClassVar = {
        **_KEY_UNSUPPORTED,
        **_unsupported("project_id", "send_invite_email", key_type=("default", "llm_api")),
    }

    key_alias: str | None = None
    duration: Duration | None = None  # from now; None: never expires
    models: Names = []
    aliases: dict[str, str] = {}
    spend: Money = 0.0
    max_budget: Money | None = None
    soft_budget: Money | None = None
    budget_duration: Duration | None = None
    user_id: str | None = None
    team_id: str | None = None
    max_parallel_requests: Count | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    model_max_budget: dict[str, ModelBudgetBody] = {}
    model_rpm_limit: dict[str, Count] = {}
    model_tpm_limit: dict[str, Count] = {}
    guardrails: Names = []
    tags: Names = []
    metadata: dict[str, Any] = {}
    blocked: bool = False
    allowed_routes: Names = []

    @field_validator("model_max_budget", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _model_budgets_shorthand(value)

    @field_validator("max_budget", mode="before")
    @classmethod
    def _empty_budget(cls, value: Any) -> Any:
        return None if value == "" else value  # LiteLLM's UI sends "" for "no budget"

    def record_fields(self) -> dict[str, Any]:
        """The `KeyRecord` fields of a new key: every setting, sent or defaulted (its
        `expires` and `budget_reset_at` are the caller's to compute from the durations)."""
        return _key_record_fields(self, KeySettings.model_fields)


def _key_record_fields(body: Body, names: Iterable[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in names:
        if name == "duration" or name not in KeySettings.model_fields:
            continue  # `duration` becomes `expires`; `key`/`new_key` are secrets, not settings
        value = getattr(body, name)
        if name == "model_max_budget" and value is not None:
            value = {model: budget.record() for model, budget in value.items()}
        elif isinstance(value, list):
            value = tuple(value)
        fields[name] = value
    return fields


class GenerateKeyRequest(KeySettings):
    """`POST /key/generate`.  `key`: the caller's own secret, as LiteLLM allows ("sk-...")."""

    key: SecretStr | None = None

    @field_validator("key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_custom_secret(value.get_secret_value())
        return value


MIN_CUSTOM_SECRET = 16


def check_custom_secret(secret: str) -> None:
    """A caller-chosen secret: LiteLLM's "sk-" prefix, long enough not to be guessed."""
    if not secret.startswith("sk-"):
        raise ValueError("a key must start with 'sk-'")
    if len(secret) < MIN_CUSTOM_SECRET or any(ord(c) <= 32 or ord(c) == 127 for c in secret):
        raise ValueError(f"a key must be at least {MIN_CUSTOM_SECRET} printable characters without spaces")


class KeyChanges(Body):
    """The settings of `/key/update` and `/key/regenerate`: all optional, only what is sent
    changes (None clears a limit, as in LiteLLM)."""

    UNSUPPORTED: ClassVar = {
        **_KEY_UNSUPPORTED,
        **_unsupported("temp_budget_increase", "temp_budget_expiry"),
    }

    key_alias: str | None = None
    duration: Duration | None = None  # from now
    models: Names | None = None
    aliases: dict[str, str] | None = None
    spend: Money | None = None
    max_budget: Money | None = None
    soft_budget: Money | None = None
    budget_duration: Duration | None = None
    user_id: str | None = None
    team_id: str | None = None
    max_parallel_requests: Count | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    model_max_budget: dict[str, ModelBudgetBody] | None = None
    model_rpm_limit: dict[str, Count] | None = None
    model_tpm_limit: dict[str, Count] | None = None
    guardrails: Names | None = None
    tags: Names | None = None
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None
    allowed_routes: Names | None = None

    @field_validator("model_max_budget", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _model_budgets_shorthand(value)

    @model_validator(mode="after")
    def _no_none_for_collections(self) -> KeyChanges:
        # None would mean "no value" for a field that has none: an empty list says "every".
        self.refuse_nulls("models", "aliases", "model_max_budget", "model_rpm_limit", "model_tpm_limit",
                          "guardrails", "tags", "metadata", "allowed_routes", "spend", "blocked")
        return self

    def record_fields(self) -> dict[str, Any]:
        """The `KeyRecord` fields the caller changes (times are the caller's to compute)."""
        return _key_record_fields(self, self.model_fields_set)


class UpdateKeyRequest(KeyChanges):
    """`POST /key/update`: `key` is the secret or its hash."""

    IDENTITY: ClassVar = frozenset({"key"})
    key: SecretStr


class RegenerateKeyRequest(KeyChanges):
    """`POST /key/regenerate`: a new secret for `key`, same settings but for those sent.

    `new_key` is the caller's own new secret (LiteLLM's name); the old one dies at once, so
    LiteLLM's `grace_period` is refused."""

    UNSUPPORTED: ClassVar = {
        **KeyChanges.UNSUPPORTED,
        **_unsupported("grace_period", "new_master_key", "project_id", "send_invite_email",
                       key_type=("default", "llm_api")),
    }
    IDENTITY: ClassVar = frozenset({"key", "new_key"})
    key: SecretStr
    new_key: SecretStr | None = None

    @field_validator("new_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_custom_secret(value.get_secret_value())
        return value


class DeleteKeysRequest(Body):
    """`POST /key/delete` (LiteLLM's `KeyRequest`): by secret or hash, or by alias."""

    keys: list[SecretStr] | None = None
    key_aliases: Names | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> DeleteKeysRequest:
        if not self.keys and not self.key_aliases:
            raise ValueError("at least one of 'keys' or 'key_aliases' must be given")
        return self

    def key_texts(self) -> list[str]:
        return [key.get_secret_value() for key in self.keys or ()]


class BlockKeyRequest(Body):
    """`POST /key/block` and `/key/unblock`: `key` is the secret or its hash."""

    key: SecretStr


# --- teams -------------------------------------------------------------------------------

_TEAM_UNSUPPORTED = _unsupported(
    "organization_id", "admins", "members", "team_member_permissions", "soft_budget", "router_settings",
    "access_group_ids", "model_aliases", "tags", "policies", "prompts", "object_permission",
    "allowed_passthrough_routes", "secret_manager_settings", "model_rpm_limit", "model_tpm_limit",
    "rpm_limit_type", "tpm_limit_type", "team_member_budget", "team_member_rpm_limit",
    "team_member_tpm_limit", "team_member_key_duration", "team_member_budget_duration",
    "allowed_vector_store_indexes", "enforced_batch_output_expires_after", "enforced_file_expires_after",
)


class NewTeamRequest(Body):
    """`POST /team/new`.  `team_id`: generated when not given.  `max_parallel_requests` is
    ours beyond LiteLLM's body (LiteLLM's team table has it)."""

    UNSUPPORTED: ClassVar = _TEAM_UNSUPPORTED

    team_id: str | None = None
    team_alias: str | None = None
    members_with_roles: list[MemberBody] = []
    metadata: dict[str, Any] = {}
    models: Names = []
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    guardrails: Names = []
    blocked: bool = False

    def record_fields(self) -> dict[str, Any]:
        return _team_record_fields(self, set(type(self).model_fields))


def _team_record_fields(body: Body, names: set[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in names - {"team_id"}:
        value = getattr(body, name)
        if name == "members_with_roles":
            value = tuple(member.record() for member in value)
        elif isinstance(value, list):
            value = tuple(value)
        fields[name] = value
    return fields


class UpdateTeamRequest(Body):
    """`POST /team/update`: only what is sent changes."""

    UNSUPPORTED: ClassVar = _TEAM_UNSUPPORTED
    IDENTITY: ClassVar = frozenset({"team_id"})

    team_id: str
    team_alias: str | None = None
    metadata: dict[str, Any] | None = None
    models: Names | None = None
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    guardrails: Names | None = None
    blocked: bool | None = None

    @model_validator(mode="after")
    def _no_none_for_collections(self) -> UpdateTeamRequest:
        self.refuse_nulls("metadata", "models", "guardrails", "blocked")
        return self

    def record_fields(self) -> dict[str, Any]:
        return _team_record_fields(self, set(self.model_fields_set))


class DeleteTeamsRequest(Body):
    """`POST /team/delete`."""

    team_ids: Annotated[Names, Field(min_length=1)]


class BlockTeamRequest(Body):
    """`POST /team/block` and `/team/unblock`."""

    team_id: str


class TeamMemberAddRequest(Body):
    """`POST /team/member_add`: one member or a list of them."""

    UNSUPPORTED: ClassVar = _unsupported("max_budget_in_team")

    team_id: str
    member: list[MemberBody]

    @field_validator("member", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("member")
    @classmethod
    def _not_empty(cls, value: list[MemberBody]) -> list[MemberBody]:
        if not value:
            raise ValueError("give at least one member")
        return value

    def records(self) -> tuple[TeamMember, ...]:
        return tuple(member.record() for member in self.member)


class TeamMemberDeleteRequest(Body):
    """`POST /team/member_delete`: the member by id or e-mail."""

    team_id: str
    user_id: str | None = None
    user_email: str | None = None

    @model_validator(mode="after")
    def _someone(self) -> TeamMemberDeleteRequest:
        if self.user_id is None and self.user_email is None:
            raise ValueError("either 'user_id' or 'user_email' must be given")
        return self


# --- users -------------------------------------------------------------------------------

_USER_UNSUPPORTED = _unsupported(
    "user_alias", "agent_id", "config", "permissions", "allowed_cache_controls", "policies", "prompts",
    "object_permission", "model_max_budget", "model_rpm_limit", "model_tpm_limit", "guardrails", "blocked",
    "aliases", "send_invite_email", "sso_user_id", "organizations", "password",
)

# The roles a user of ours can have: both call the LLM routes their keys allow, nothing else.
UserRole = Literal["internal_user", "internal_user_viewer"]


class TeamOfUser(Body):
    """An entry of `/user/new`'s `teams` given as an object (LiteLLM's `NewUserRequestTeam`)."""

    team_id: str
    user_role: Literal["user", "admin"] = "user"


def _teams_as_objects(value: Any) -> Any:
    """LiteLLM takes team ids or `{team_id, user_role}` objects; make them all objects, and
    refuse what the object form would not honour."""
    if not isinstance(value, list):
        return value
    entries = []
    for entry in value:
        if isinstance(entry, str):
            entry = {"team_id": entry}
        elif isinstance(entry, dict) and not _is_inert(entry.get("max_budget_in_team"), ()):
            raise ValueError("'max_budget_in_team' is not supported by this gateway")
        elif isinstance(entry, dict):
            entry = {name: item for name, item in entry.items() if name != "max_budget_in_team"}
        entries.append(entry)
    return entries


class NewUserRequest(Body):
    """`POST /user/new`: a user, and (`auto_create_key`, LiteLLM's default) a key for them.

    The budget and limits are the user's; the key gets `key_alias`, `duration`, `models`,
    `team_id` and `metadata`, as LiteLLM's does."""

    UNSUPPORTED: ClassVar = _USER_UNSUPPORTED

    user_id: str | None = None  # generated when not given
    user_email: str | None = None
    user_role: UserRole | None = None
    teams: list[TeamOfUser] = []
    models: Names = []
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    spend: Money = 0.0
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    metadata: dict[str, Any] = {}
    auto_create_key: bool = True
    key_alias: str | None = None
    duration: Duration | None = None
    team_id: str | None = None

    @field_validator("teams", mode="before")
    @classmethod
    def _teams(cls, value: Any) -> Any:
        return _teams_as_objects(value)

    @field_validator("max_budget", mode="before")
    @classmethod
    def _empty_budget(cls, value: Any) -> Any:
        return None if value == "" else value

    def user_fields(self) -> dict[str, Any]:
        """The `UserRecord` fields (`teams` are the ids; the route adds the memberships)."""
        return {
            "user_email": self.user_email,
            "user_role": self.user_role or "internal_user",
            "teams": tuple(dict.fromkeys([team.team_id for team in self.teams] + ([self.team_id] if self.team_id else []))),
            "models": tuple(self.models),
            "max_budget": self.max_budget,
            "budget_duration": self.budget_duration,
            "spend": self.spend,
            "tpm_limit": self.tpm_limit,
            "rpm_limit": self.rpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "metadata": self.metadata,
        }

    def key_fields(self) -> dict[str, Any]:
        """The `KeyRecord` fields of the user's key (its `user_id` and times are the route's)."""
        return {"key_alias": self.key_alias, "models": tuple(self.models), "team_id": self.team_id,
                "metadata": self.metadata}


class UpdateUserRequest(Body):
    """`POST /user/update`: by `user_id` or `user_email`; only what is sent changes."""

    UNSUPPORTED: ClassVar = {**_USER_UNSUPPORTED, **_unsupported("key_alias", "duration", "team_id")}
    IDENTITY: ClassVar = frozenset({"user_id"})

    user_id: str | None = None
    user_email: str | None = None
    user_role: UserRole | None = None
    models: Names | None = None
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    spend: Money | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _someone(self) -> UpdateUserRequest:
        if self.user_id is None and self.user_email is None:
            raise ValueError("either 'user_id' or 'user_email' must be given")
        self.refuse_nulls("models", "spend", "metadata", "user_role")
        return self

    def record_fields(self) -> dict[str, Any]:
        fields = self.changes()
        if self.user_id is None:
            fields.pop("user_email", None)  # the e-mail names the user here, it is not a change
        if fields.get("models") is not None:
            fields["models"] = tuple(fields["models"])
        return fields


class DeleteUsersRequest(Body):
    """`POST /user/delete` (and `/customer/delete`, whose body is the same: `user_ids`)."""

    user_ids: Annotated[Names, Field(min_length=1)]


# --- end-users (customers) ---------------------------------------------------------------

_CUSTOMER_UNSUPPORTED = _unsupported(
    "budget_id", "allowed_model_region", "default_model", "object_permission", "soft_budget",
    "max_parallel_requests", "model_max_budget", "budget_reset_at",
)


class NewCustomerRequest(Body):
    """`POST /customer/new`."""

    UNSUPPORTED: ClassVar = _CUSTOMER_UNSUPPORTED

    user_id: str
    alias: str | None = None
    blocked: bool = False
    spend: Money | None = None
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None

    def record_fields(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in type(self).model_fields if name != "user_id"}
        fields["spend"] = fields["spend"] or 0.0
        return fields


class UpdateCustomerRequest(Body):
    """`POST /customer/update`: only what is sent changes.  `budget_duration`, `rpm_limit` and
    `tpm_limit` are ours beyond LiteLLM's body (SPEC §9 limits end-users by them)."""

    UNSUPPORTED: ClassVar = _CUSTOMER_UNSUPPORTED
    IDENTITY: ClassVar = frozenset({"user_id"})

    user_id: str
    alias: str | None = None
    blocked: bool | None = None
    max_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Count | None = None
    rpm_limit: Count | None = None

    @model_validator(mode="after")
    def _blocked_not_null(self) -> UpdateCustomerRequest:
        self.refuse_nulls("blocked")
        return self

    def record_fields(self) -> dict[str, Any]:
        return self.changes()


class BlockUsersRequest(Body):
    """`POST /customer/block` and `/customer/unblock` (LiteLLM's `BlockUsers`)."""

    user_ids: Annotated[Names, Field(min_length=1)]


__all__ = [
    "BlockKeyRequest", "BlockTeamRequest", "BlockUsersRequest", "Body", "DeleteKeysRequest",
    "DeleteTeamsRequest", "DeleteUsersRequest", "GenerateKeyRequest", "NewCustomerRequest",
    "NewTeamRequest", "NewUserRequest", "RegenerateKeyRequest", "TeamMemberAddRequest",
    "TeamMemberDeleteRequest", "UpdateCustomerRequest", "UpdateKeyRequest", "UpdateTeamRequest",
    "UpdateUserRequest", "check_duration", "parse_body", "validate_fields", "validation_error",
]

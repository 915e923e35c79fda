"""The query strings of the admin GET routes (SPEC §9), with LiteLLM's parameter names.

Like the bodies (`control/requests.py`), a query names only what the gateway does: an
unknown parameter is a 400 naming it, and LiteLLM's parameters whose effect is not implemented
(organisations, projects, sorting, `include_*` expansions) are refused unless they are at
their inert value, so a filter is never silently dropped from a listing.  Values arrive as
strings, so numbers and flags are read from text ("2", "true"), unlike the strict bodies.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar, Literal, Mapping, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr

from gateway_trio.control.requests import Body, validate_fields

# The largest page a listing returns, as LiteLLM's `/key/list` and `/user/list` allow.
MAX_PAGE_SIZE = 100


class Query(Body):
    """A query string: no unknown parameters, values read from text."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, protected_namespaces=())


Q = TypeVar("Q", bound=Query)


def parse_query(model: type[Q], args: Mapping[str, str]) -> Q:
    """The request's query parameters (the first value of each) as a `model`, or a 400."""
    return validate_fields(model, {name: args[name] for name in args})


def parse_moment(value: Any) -> Any:
    """Unix seconds, or an ISO 8601 date or time (UTC when no zone is given)."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be unix seconds or an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


Moment = Annotated[float, BeforeValidator(parse_moment)]
Page = Annotated[int, Field(ge=1)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
_OFF = ("false", "False", "0")


class KeyInfoQuery(Query):
    """`GET /key/info?key=`: the secret or its hash; none means the caller's own key."""

    key: SecretStr | None = None


class KeyListQuery(Query):
    """`GET /key/list`: hashes, never the keys (`return_full_object`: the key objects)."""

    UNSUPPORTED: ClassVar = {
        "organization_id": (), "project_id": (), "key_hash": (), "expand": (), "status": (),
        "sort_by": (), "sort_order": ("desc", "asc"),
        "include_team_keys": _OFF, "include_created_by_keys": _OFF,
    }

    page: Page = 1
    size: PageSize = 10
    user_id: str | None = None
    team_id: str | None = None
    key_alias: str | None = None
    return_full_object: bool = False


class TeamInfoQuery(Query):
    """`GET /team/info?team_id=`."""

    team_id: str


class TeamListQuery(Query):
    """`GET /team/list`: every team, or those `user_id` is a member of."""

    UNSUPPORTED: ClassVar = {"organization_id": ()}

    user_id: str | None = None


class UserInfoQuery(Query):
    """`GET /user/info?user_id=`."""

    user_id: str


class UserListQuery(Query):
    """`GET /user/list`: LiteLLM's paging (`page`, `page_size`)."""

    UNSUPPORTED: ClassVar = {
        "role": (), "user_ids": (), "sso_user_ids": (), "user_email": (), "team": (),
        "sort_by": (), "sort_order": ("desc", "asc"),
    }

    page: Page = 1
    page_size: PageSize = 25


class CustomerInfoQuery(Query):
    """`GET /customer/info?end_user_id=`."""

    end_user_id: str


class CustomerListQuery(Query):
    """`GET /customer/list`: every end-user."""


GroupBy = Literal["key", "team", "user", "end_user", "model"]


class SpendReportQuery(Query):
    """`GET /spend/report?group_by=&start=&end=`: cost, tokens and requests per group."""

    group_by: GroupBy
    start: Moment | None = None
    end: Moment | None = None


__all__ = [
    "MAX_PAGE_SIZE",
    "CustomerInfoQuery",
    "CustomerListQuery",
    "KeyInfoQuery",
    "KeyListQuery",
    "Query",
    "SpendReportQuery",
    "TeamInfoQuery",
    "TeamListQuery",
    "UserInfoQuery",
    "UserListQuery",
    "parse_moment",
    "parse_query",
]

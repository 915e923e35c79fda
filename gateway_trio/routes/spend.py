"""`GET /spend/logs` (master key): the spend records, filtered; `GET /spend/report`: cost,
tokens and requests per key, team, user, end-user or model."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import trio
from quart import Blueprint, Response, request

from gateway_trio.control.admin import token_of
from gateway_trio.control.queries import SpendReportQuery, parse_moment, parse_query
from gateway_trio.errors import BadRequest
from gateway_trio.gateway import Gateway
from gateway_trio.routes.errors import JSON, errors_as_responses


def parse_time(name: str, value: str | None) -> float | None:
    """Unix seconds, or an ISO 8601 date/time (UTC when no zone is given); 400 naming `name`."""
    if value is None or value == "":
        return None
    try:
        return parse_moment(value)
    except ValueError as error:
        raise BadRequest(f"'{name}' {error}", param=name) from None


# The filters of `/spend/logs`, and LiteLLM's names for some of them (its dashboards and
# scripts send those).  Anything else is a 400: a filter silently ignored returns the wrong
# records as if they were the right ones.
SPEND_LOG_FILTERS = frozenset(
    {"call_id", "api_key", "key_alias", "team_id", "user_id", "end_user", "model", "start", "end", "limit"}
)
LITELLM_FILTER_NAMES = {"request_id": "call_id", "start_date": "start", "end_date": "end"}


def spend_log_filters(args: Mapping[str, str]) -> dict[str, str]:
    """The query's filters under our names; 400 for an unknown one or one given twice over."""
    filters: dict[str, str] = {}
    for name, value in args.items():
        ours = LITELLM_FILTER_NAMES.get(name, name)
        if ours not in SPEND_LOG_FILTERS:
            known = sorted(SPEND_LOG_FILTERS | LITELLM_FILTER_NAMES.keys())
            raise BadRequest(f"unknown filter '{name}'; /spend/logs filters by: {', '.join(known)}", param=name)
        if ours in filters and filters[ours] != value:
            raise BadRequest(f"'{name}' and another name of the same filter disagree", param=name)
        filters[ours] = value
    return filters


def spend_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("spend", __name__)

    @routes.get("/spend/logs")
    @errors_as_responses
    async def spend_logs() -> Response:
        await gateway.control.require_master(request.headers, "read spend logs")
        args = spend_log_filters(request.args)
        api_key = args.get("api_key")
        if api_key:
            api_key = token_of(api_key)  # a raw key: records only know its hash
        try:
            limit = int(args.get("limit", 100))
        except ValueError:
            raise BadRequest("'limit' must be an integer", param="limit") from None
        if limit < 1:
            raise BadRequest("'limit' must be at least 1", param="limit")
        records = await gateway.spend.query(
            call_id=args.get("call_id") or None,
            api_key_hash=api_key or None,
            key_alias=args.get("key_alias") or None,
            team_id=args.get("team_id") or None,
            user_id=args.get("user_id") or None,
            end_user=args.get("end_user") or None,
            model=args.get("model") or None,
            start=parse_time("start", args.get("start")),
            end=parse_time("end", args.get("end")),
            limit=limit,
        )
        return Response(orjson.dumps(records), 200, content_type=JSON)

    @routes.get("/spend/report")
    @errors_as_responses
    async def spend_report() -> Response:
        await gateway.control.require_master(request.headers, "read spend reports")
        query = parse_query(SpendReportQuery, request.args)
        # What the writer holds is not in the database yet: write it first, within a bound,
        # so a report read right after the calls counts them.
        with trio.move_on_after(REPORT_FLUSH_S):
            await gateway.spend.flush()
        rows = await gateway.spend.report(query.group_by, start=query.start, end=query.end)
        return Response(orjson.dumps(rows), 200, content_type=JSON)

    return routes


REPORT_FLUSH_S = 5.0

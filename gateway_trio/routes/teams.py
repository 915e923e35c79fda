"""`/team/*` (SPEC §9): new, update, delete, info, list, member_add, member_delete, block,
unblock.  Master key only; thin over `control/admin` and `control/views`."""

from __future__ import annotations

from quart import Blueprint, Response, request

from gateway_trio.control import views
from gateway_trio.control.queries import TeamInfoQuery, TeamListQuery, parse_query
from gateway_trio.control.requests import (
    BlockTeamRequest,
    DeleteTeamsRequest,
    NewTeamRequest,
    TeamMemberAddRequest,
    TeamMemberDeleteRequest,
    UpdateTeamRequest,
)
from gateway_trio.gateway import Gateway
from gateway_trio.routes.control import admin_of, answer, body_of
from gateway_trio.routes.errors import errors_as_responses


def team_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("teams", __name__)

    @routes.post("/team/new")
    @errors_as_responses
    async def new() -> Response:
        admin = await admin_of(gateway, "create teams")
        return answer(views.team_view(await admin.new_team(await body_of(NewTeamRequest))))

    @routes.post("/team/update")
    @errors_as_responses
    async def update() -> Response:
        admin = await admin_of(gateway, "update teams")
        return answer(views.team_update_view(await admin.update_team(await body_of(UpdateTeamRequest))))

    @routes.post("/team/delete")
    @errors_as_responses
    async def delete() -> Response:
        admin = await admin_of(gateway, "delete teams")
        body = await body_of(DeleteTeamsRequest)
        return answer(views.deleted_view("teams", await admin.delete_teams(body.team_ids)))

    @routes.get("/team/info")
    @errors_as_responses
    async def info() -> Response:
        admin = await admin_of(gateway, "read teams")
        query = parse_query(TeamInfoQuery, request.args)
        team = await admin.team(query.team_id)
        return answer(views.team_info_view(team, await admin.keys_of(team_id=team.team_id)))

    @routes.get("/team/list")
    @errors_as_responses
    async def list_() -> Response:
        admin = await admin_of(gateway, "list teams")
        query = parse_query(TeamListQuery, request.args)
        return answer([views.team_view(team) for team in await admin.teams(query.user_id)])

    @routes.post("/team/member_add")
    @errors_as_responses
    async def member_add() -> Response:
        admin = await admin_of(gateway, "change team members")
        team, users = await admin.add_members(await body_of(TeamMemberAddRequest))
        return answer(views.member_add_view(team, users))

    @routes.post("/team/member_delete")
    @errors_as_responses
    async def member_delete() -> Response:
        admin = await admin_of(gateway, "change team members")
        return answer(views.team_view(await admin.remove_member(await body_of(TeamMemberDeleteRequest))))

    @routes.post("/team/block")
    @errors_as_responses
    async def block() -> Response:
        return await set_blocked(True)

    @routes.post("/team/unblock")
    @errors_as_responses
    async def unblock() -> Response:
        return await set_blocked(False)

    async def set_blocked(blocked: bool) -> Response:
        admin = await admin_of(gateway, "block teams" if blocked else "unblock teams")
        body = await body_of(BlockTeamRequest)
        return answer(views.team_view(await admin.block_team(body.team_id, blocked)))

    return routes


__all__ = ["team_routes"]

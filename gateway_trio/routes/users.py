"""`/user/*` (SPEC §9): new (with the user's key, shown once), update, delete, info, list.
Master key only; thin over `control/admin` and `control/views`."""

from __future__ import annotations

from quart import Blueprint, Response, request

from gateway_trio.control import views
from gateway_trio.control.queries import UserInfoQuery, UserListQuery, parse_query
from gateway_trio.control.requests import DeleteUsersRequest, NewUserRequest, UpdateUserRequest
from gateway_trio.gateway import Gateway
from gateway_trio.routes.control import admin_of, answer, body_of
from gateway_trio.routes.errors import errors_as_responses


def user_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("users", __name__)

    @routes.post("/user/new")
    @errors_as_responses
    async def new() -> Response:
        admin = await admin_of(gateway, "create users")
        user, key, secret = await admin.new_user(await body_of(NewUserRequest))
        return answer(views.new_user_view(user, key, secret))

    @routes.post("/user/update")
    @errors_as_responses
    async def update() -> Response:
        admin = await admin_of(gateway, "update users")
        return answer(views.user_view(await admin.update_user(await body_of(UpdateUserRequest))))

    @routes.post("/user/delete")
    @errors_as_responses
    async def delete() -> Response:
        admin = await admin_of(gateway, "delete users")
        body = await body_of(DeleteUsersRequest)
        return answer(views.deleted_view("users", await admin.delete_users(body.user_ids)))

    @routes.get("/user/info")
    @errors_as_responses
    async def info() -> Response:
        admin = await admin_of(gateway, "read users")
        user = await admin.user(parse_query(UserInfoQuery, request.args).user_id)
        teams = [team for team_id in user.teams if (team := await admin.store.get_team(team_id)) is not None]
        return answer(views.user_info_view(user, await admin.keys_of(user_id=user.user_id), teams))

    @routes.get("/user/list")
    @errors_as_responses
    async def list_() -> Response:
        admin = await admin_of(gateway, "list users")
        query = parse_query(UserListQuery, request.args)
        page = await admin.list_users(query)
        return answer(views.user_list_view(page.items, total=page.total_count, page=page.page, page_size=page.size))

    return routes


__all__ = ["user_routes"]

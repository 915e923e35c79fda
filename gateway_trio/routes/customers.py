"""`/customer/*` (SPEC §9): the end-users of the operator's app: new, update, delete, info,
list, block, unblock.  Master key only; thin over `control/admin` and `control/views`."""

from __future__ import annotations

from quart import Blueprint, Response, request

from gateway_trio.control import views
from gateway_trio.control.queries import CustomerInfoQuery, CustomerListQuery, parse_query
from gateway_trio.control.requests import (
    BlockUsersRequest,
    DeleteUsersRequest,
    NewCustomerRequest,
    UpdateCustomerRequest,
)
from gateway_trio.gateway import Gateway
from gateway_trio.routes.control import admin_of, answer, body_of
from gateway_trio.routes.errors import errors_as_responses


def customer_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("customers", __name__)

    @routes.post("/customer/new")
    @errors_as_responses
    async def new() -> Response:
        admin = await admin_of(gateway, "create customers")
        return answer(views.end_user_view(await admin.new_end_user(await body_of(NewCustomerRequest))))

    @routes.post("/customer/update")
    @errors_as_responses
    async def update() -> Response:
        admin = await admin_of(gateway, "update customers")
        return answer(views.end_user_view(await admin.update_end_user(await body_of(UpdateCustomerRequest))))

    @routes.post("/customer/delete")
    @errors_as_responses
    async def delete() -> Response:
        admin = await admin_of(gateway, "delete customers")
        body = await body_of(DeleteUsersRequest)
        return answer(views.deleted_view("customers", await admin.delete_end_users(body.user_ids)))

    @routes.get("/customer/info")
    @errors_as_responses
    async def info() -> Response:
        admin = await admin_of(gateway, "read customers")
        query = parse_query(CustomerInfoQuery, request.args)
        return answer(views.end_user_view(await admin.end_user(query.end_user_id)))

    @routes.get("/customer/list")
    @errors_as_responses
    async def list_() -> Response:
        admin = await admin_of(gateway, "list customers")
        parse_query(CustomerListQuery, request.args)
        return answer([views.end_user_view(end_user) for end_user in await admin.end_users()])

    @routes.post("/customer/block")
    @errors_as_responses
    async def block() -> Response:
        return await set_blocked(True)

    @routes.post("/customer/unblock")
    @errors_as_responses
    async def unblock() -> Response:
        return await set_blocked(False)

    async def set_blocked(blocked: bool) -> Response:
        admin = await admin_of(gateway, "block customers" if blocked else "unblock customers")
        body = await body_of(BlockUsersRequest)
        records = await admin.block_end_users(body.user_ids, blocked)
        return answer({"blocked_users" if blocked else "unblocked_users": [r.user_id for r in records]})

    return routes


__all__ = ["customer_routes"]

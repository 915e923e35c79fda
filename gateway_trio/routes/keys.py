"""`/key/*` (SPEC §9): generate, update, delete, info, list, regenerate, block, unblock.

Thin: parse the body (`control/requests`), run the operation (`control/admin`), render the
answer (`control/views`).  The master key may do everything; a virtual key may read its
own `/key/info` and nothing else here.
"""

from __future__ import annotations

import orjson
from quart import Blueprint, Response, request

from gateway_trio.control import views
from gateway_trio.control.admin import token_of
from gateway_trio.control.admission import check_key
from gateway_trio.control.queries import KeyInfoQuery, KeyListQuery, parse_query
from gateway_trio.control.records import KeyRecord
from gateway_trio.control.requests import (
    BlockKeyRequest,
    DeleteKeysRequest,
    GenerateKeyRequest,
    RegenerateKeyRequest,
    UpdateKeyRequest,
    validate_fields,
)
from gateway_trio.errors import BadRequest, Forbidden
from gateway_trio.gateway import Gateway
from gateway_trio.routes.control import admin_of, answer, body_of, running_admin
from gateway_trio.routes.errors import errors_as_responses


def key_routes(gateway: Gateway) -> Blueprint:
    routes = Blueprint("keys", __name__)

    @routes.post("/key/generate")
    @errors_as_responses
    async def generate() -> Response:
        admin = await admin_of(gateway, "generate keys")
        body = await body_of(GenerateKeyRequest)
        secret = body.key.get_secret_value() if body.key is not None else None
        key, secret = await admin.generate_key(body, secret)
        return answer(views.generated_key_view(key, secret))

    @routes.post("/key/update")
    @errors_as_responses
    async def update() -> Response:
        admin = await admin_of(gateway, "update keys")
        key = await admin.update_key(await body_of(UpdateKeyRequest))
        return answer({"key": key.token, **views.key_view(key)})

    @routes.post("/key/delete")
    @errors_as_responses
    async def delete() -> Response:
        admin = await admin_of(gateway, "delete keys")
        return answer(views.deleted_view("keys", await admin.delete_keys(await body_of(DeleteKeysRequest))))

    @routes.get("/key/info")
    @errors_as_responses
    async def info() -> Response:
        query = parse_query(KeyInfoQuery, request.args)
        asked = query.key.get_secret_value() if query.key is not None else None
        return answer(views.key_info_view(gateway.control.live(await readable_key(gateway, asked))))

    @routes.get("/key/list")
    @errors_as_responses
    async def list_() -> Response:
        admin = await admin_of(gateway, "list keys")
        query = parse_query(KeyListQuery, request.args)
        page = await admin.list_keys(query)
        return answer(views.key_list_view(page.items, total=page.total_count, page=page.page, size=page.size,
                                          full_objects=query.return_full_object))

    @routes.post("/key/regenerate")
    @errors_as_responses
    async def regenerate() -> Response:
        admin = await admin_of(gateway, "regenerate keys")
        key, secret = await admin.regenerate_key(await body_of(RegenerateKeyRequest))
        return answer(views.generated_key_view(key, secret))

    @routes.post("/key/<path:key>/regenerate")
    @errors_as_responses
    async def regenerate_named(key: str) -> Response:
        """LiteLLM's other form: the key (secret or hash) in the path, the changes in the body."""
        admin = await admin_of(gateway, "regenerate keys")
        raw = await request.get_data(cache=False)
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if "key" in body and body["key"] != key:
            raise BadRequest("the key in the body is not the key in the path", param="key")
        changes = validate_fields(RegenerateKeyRequest, {**body, "key": key})
        renewed, secret = await admin.regenerate_key(changes)
        return answer(views.generated_key_view(renewed, secret))

    @routes.post("/key/block")
    @errors_as_responses
    async def block() -> Response:
        return await set_blocked(True)

    @routes.post("/key/unblock")
    @errors_as_responses
    async def unblock() -> Response:
        return await set_blocked(False)

    async def set_blocked(blocked: bool) -> Response:
        admin = await admin_of(gateway, "block keys" if blocked else "unblock keys")
        body = await body_of(BlockKeyRequest)
        return answer(views.key_view(await admin.block_key(body.key.get_secret_value(), blocked)))

    return routes


async def readable_key(gateway: Gateway, asked: str | None) -> KeyRecord:
    """The key `/key/info` may show this caller: any (by secret or hash) to the master key;
    its own to a virtual key (401 for a key that is not, or no longer, valid; 403 for another's).
    Validity is decided where every call's is, by the control plane and admission."""
    admin = running_admin(gateway)
    _, tenant = await gateway.control.caller(request.headers)
    if tenant is None:
        if asked is None:
            raise BadRequest("the master key has no key info of its own: pass ?key=", param="key")
        return await admin.key(asked)
    own = check_key(tenant, admin.clock()).key
    if asked is not None and token_of(asked) != own.token:
        raise Forbidden("a key may read only its own /key/info")
    return await admin.key(own.token)


__all__ = ["key_routes", "readable_key"]

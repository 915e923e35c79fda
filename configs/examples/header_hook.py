"""Example hook: add headers telling the client which deployment answered.

Attach with `[hooks] callbacks = ["header_hook:ServedByHeaders"]`.  It runs on every LLM
route, on success and on failure (where `response` is None), streaming or not.
"""

from __future__ import annotations

from typing import Any

from gateway_trio.hooks import CustomLogger


class ServedByHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        call_info: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        info = call_info or {}
        headers = {"x-served-by": f"{info.get('provider')}/{info.get('model_id')}"}
        if response is None:
            headers["x-served-outcome"] = "failure"
        else:
            headers["x-served-outcome"] = "success"
        request_id = (request_headers or {}).get("x-request-id")
        if request_id:
            headers["x-echo-request-id"] = request_id
        return headers

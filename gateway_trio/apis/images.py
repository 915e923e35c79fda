"""The Images API (`/v1/images/generations`): a prompt in, generated images out; never streamed.

Guardrails see its `prompt` and, in the answer, each image's `revised_prompt`.  Its usage
counts images and pixels beside tokens, because images are priced per image or per pixel
(`output_cost_per_image`, `input_cost_per_pixel` in `[models.info]`, LiteLLM's names).
"""

from __future__ import annotations

import re
from typing import Any

from gateway_trio.apis.base import Api
from gateway_trio.apis.checks import require_field
from gateway_trio.apis.slots import Slot
from gateway_trio.calls import Call
from gateway_trio.errors import BadRequest
from gateway_trio.spend.costs import IMAGE_COUNT, PIXEL_COUNT

MAX_IMAGES = 10  # OpenAI's bound on `n`; a larger one is refused here, before it is priced
RESPONSE_FORMATS = ("url", "b64_json")
SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")


class ImagesApi(Api):
    def parse(self, content: Any) -> Call:
        require_field(content, "prompt", (str,), "a string")
        n = content.get("n")
        if n is not None and (type(n) is not int or not 1 <= n <= MAX_IMAGES):
            raise BadRequest(f"'n' must be an integer from 1 to {MAX_IMAGES}", param="n")
        for name in ("size", "quality", "style", "user"):
            if content.get(name) is not None and not isinstance(content[name], str):
                raise BadRequest(f"'{name}' must be a string", param=name)
        response_format = content.get("response_format")
        if response_format is not None and response_format not in RESPONSE_FORMATS:
            raise BadRequest(f"'response_format' must be one of {', '.join(RESPONSE_FORMATS)}", param="response_format")
        return super().parse(content)

    def reply_usage(self, call: Call, body: Any, usage: dict[str, Any] | None) -> dict[str, Any] | None:
        """The images the answer holds, and their pixels when the size asked for says."""
        data = body.get("data") if isinstance(body, dict) else None
        images = len(data) if isinstance(data, list) else 0
        counted = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, **(usage or {}), IMAGE_COUNT: images}
        size = SIZE.fullmatch(call.body.get("size") or "")
        if size is not None:
            counted[PIXEL_COUNT] = images * int(size[1]) * int(size[2])
        return counted

    def response_slots(self, body: Any) -> list[Slot]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return []
        return [
            (image, "revised_prompt")
            for image in data
            if isinstance(image, dict) and isinstance(image.get("revised_prompt"), str)
        ]


IMAGES = ImagesApi(
    "images",
    "image_generation",
    ("/v1/images/generations", "/images/generations"),
    adapter_method="image_generation",
    streams=False,
    text_fields=("prompt",),
)

"""Image generation in the OpenAI and Azure adapters: OpenAI's body with the upstream model,
at `/images/generations` (Azure: under the deployment, with its api-version and api-key)."""

from __future__ import annotations

import orjson
import pytest

from gateway_trio.adapters import PROVIDERS
from gateway_trio.config import ModelConfig
from gateway_trio.deployment import Deployment
from gateway_trio.errors import BadRequest, UpstreamError

BODY = {"prompt": "a red kite", "n": 2, "size": "1024x1024", "response_format": "b64_json"}


def deployment(model: str, api_base: str, **extra: object) -> Deployment:
    return Deployment.from_config(ModelConfig(name="paint", model=model, api_base=api_base, **extra))  # type: ignore[arg-type]


def test_openai_sends_the_body_with_the_upstream_model_and_its_bearer_key():
    dep = deployment("openai/dall-e-3", "https://api.openai.com/v1/", api_key="sk-openai-0123456789")
    request = PROVIDERS["openai"].request("image_generation", dep, BODY, "dall-e-3", False)
    assert request.url == "https://api.openai.com/v1/images/generations"
    assert request.headers["authorization"] == "Bearer sk-openai-0123456789"
    assert orjson.loads(request.content) == {**BODY, "model": "dall-e-3"}


def test_azure_sends_it_to_the_deployment_with_api_version_and_api_key():
    dep = deployment(
        "azure/dalle-eu",
        "https://contoso.openai.azure.com",
        api_key="0123456789abcdef0123456789abcdef",
        api_version="2024-10-21",
    )
    request = PROVIDERS["azure"].request("image_generation", dep, BODY, "dalle-eu", False)
    assert request.url == (
        "https://contoso.openai.azure.com/openai/deployments/dalle-eu/images/generations?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "0123456789abcdef0123456789abcdef"
    assert "authorization" not in request.headers


def test_answers_must_hold_a_list_of_images_and_streams_are_refused():
    adapter = PROVIDERS["openai"]
    answer = {"created": 1, "data": [{"url": "https://x.invalid/1.png", "revised_prompt": "a kite"}]}
    assert adapter.response("image_generation", orjson.dumps(answer), "dall-e-3") == answer
    for bad in (b'{"created": 1}', b'{"data": null}', b'{"data": ["x"]}', b"not json"):
        with pytest.raises(UpstreamError, match="malformed"):
            adapter.response("image_generation", bad, "dall-e-3")
    dep = deployment("openai/dall-e-3", "https://api.openai.com/v1")
    with pytest.raises(BadRequest, match="stream"):
        adapter.request("image_generation", dep, BODY, "dall-e-3", True)
    with pytest.raises(BadRequest, match="image generation"):
        PROVIDERS["anthropic"].request("image_generation", dep, BODY, "claude", False)

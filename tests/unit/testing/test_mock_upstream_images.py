"""The mock upstream's Images API: what OpenAI checks it checks, and it answers in OpenAI's shape."""

from __future__ import annotations

import base64

from gateway_trio.testing import Behavior


async def test_images_as_urls_or_base64_at_openai_and_azure_paths(mock, client):
    urls = await client.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "a kite", "n": 2})
    assert urls.status_code == 200
    body = urls.json()
    assert isinstance(body["created"], int) and "usage" not in body
    assert [image["revised_prompt"] for image in body["data"]] == ["a kite", "a kite"]
    assert all(image["url"].endswith(".png") for image in body["data"])
    azure = await client.post(
        "/openai/deployments/paint/images/generations?api-version=2024-10-21",
        json={"prompt": "a kite", "response_format": "b64_json"},
    )
    assert azure.status_code == 200
    assert base64.b64decode(azure.json()["data"][0]["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert mock.received[-1].model == "paint"
    tokens = await client.post("/images/generations", json={"model": "gpt-image-1", "prompt": "a red kite"})
    assert tokens.json()["usage"]["input_tokens"] == 3


async def test_bad_requests_and_faults(mock, client):
    for body, param in (
        ({"model": "m"}, "prompt"),
        ({"model": "m", "prompt": "x", "n": 11}, "n"),
        ({"model": "m", "prompt": "x", "response_format": "png"}, "response_format"),
    ):
        response = await client.post("/v1/images/generations", json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    mock.behaviors["m"] = Behavior(content="revised by the mock")
    revised = await client.post("/v1/images/generations", json={"model": "m", "prompt": "x"})
    assert revised.json()["data"][0]["revised_prompt"] == "revised by the mock"
    mock.behaviors["m"] = Behavior(status=503)
    assert (await client.post("/v1/images/generations", json={"model": "m", "prompt": "x"})).status_code == 503

"""`/v1/images/generations` through the one pipeline, against OpenAI and Azure deployments (and
the built-in mock): the OpenAI wire both ways, hooks and guardrails, the gateway's headers, one
spend record per call priced per image / per pixel / per token, and the failure path."""

from __future__ import annotations

from typing import ClassVar

import pytest
from harness import client_and_gateway, eventually, make_config

from gateway_trio.guardrails import CustomGuardrail, GuardrailBlocked
from gateway_trio.hooks import CustomLogger
from gateway_trio.testing import Behavior

MASTER = "sk-master-images-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
PROMPT = "a lighthouse at dusk"


class ImageHooks(CustomLogger):
    """Rewrites the prompt before the call, adds a header, and keeps what it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.call_types: list[str] = []
        self.successes: list[tuple[dict, dict]] = []
        self.failures: list[dict] = []

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        self.call_types.append(call_type)
        return {**data, "prompt": data["prompt"] + " (in oils)"}

    async def async_post_call_response_headers_hook(
        self, data, user_api_key_dict, response, request_headers=None, call_info=None
    ):
        images = "none" if response is None else str(len(response["data"]))
        return {"x-images-seen": images, "x-images-provider": str(call_info["provider"])}

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.successes.append((kwargs, {"data": [dict(image) for image in response_obj["data"]]}))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.failures.append(kwargs)


class PromptWatch(CustomGuardrail):
    """Blocks prompts that ask for a forbidden subject; notes every text it is shown."""

    seen: ClassVar[list[tuple[str, list[str]]]] = []

    async def apply_guardrail(self, inputs, request_data, input_type):
        PromptWatch.seen.append((input_type, list(inputs["texts"])))
        if any("forbidden" in text for text in inputs["texts"]):
            raise GuardrailBlocked("no forbidden subjects")
        return inputs


def config_for(upstream, **info):
    models = [
        {
            "name": "paint",
            "model": "openai/dall-e-3",
            "api_base": f"{upstream.base_url}/v1",
            "api_key": "sk-openai-img",
            "info": {"mode": "image_generation", "output_cost_per_image": 0.04, **info},
        },
        {
            "name": "azure-paint",
            "model": "azure/dalle-eu",
            "api_base": upstream.base_url,
            "api_key": "azure-img-key",
            "api_version": "2024-10-21",
            "info": {"mode": "image_generation", "output_cost_per_image": 0.08},
        },
        {
            "name": "tokens-paint",
            "model": "openai/gpt-image-1",
            "api_base": f"{upstream.base_url}/v1",
            "info": {
                "mode": "image_generation",
                "input_cost_per_token": 5e-6,
                "output_cost_per_token": 4e-5,
                "output_cost_per_image": 0.01,
            },
        },
        {
            "name": "pixels-paint",
            "model": "openai/dall-e-2",
            "api_base": f"{upstream.base_url}/v1",
            "info": {"mode": "image_generation", "input_cost_per_pixel": 2e-8},
        },
        {"name": "unpriced", "model": "openai/dall-e-2", "api_base": f"{upstream.base_url}/v1"},
        {"name": "local", "model": "mock/painter", "info": {"mode": "image_generation", "output_cost_per_image": 0.5}},
        {"name": "claude", "model": "anthropic/claude-img", "api_base": upstream.base_url, "api_key": "sk-ant-img"},
    ]
    guardrails = [
        {"name": "watch", "guardrail": f"{__name__}:PromptWatch", "mode": ["pre_call", "post_call"], "default_on": True}
    ]
    return make_config(models=models, guardrails=guardrails, server={"master_key": MASTER}, router={"num_retries": 0})


async def records(client, gateway, count):
    await eventually(lambda: gateway.spend._accepted >= count)
    await gateway.spend.flush()
    return (await client.get("/spend/logs", headers=AUTH)).json()


PATH = "/v1/images/generations"


def generate(model="paint", **extra):
    """The keyword arguments of a client's POST asking `model` for images of PROMPT."""
    return {"json": {"model": model, "prompt": PROMPT, **extra}, "headers": AUTH}


async def test_openai_images_go_through_hooks_guardrails_headers_and_one_priced_record(upstream):
    PromptWatch.seen = []
    hooks = ImageHooks()
    async with client_and_gateway(config_for(upstream), hooks=[hooks]) as (client, gateway):
        response = await client.post(
            PATH, **generate(n=2, size="1024x1024", quality="hd", style="vivid", user="u-1", metadata={"tags": ["art"]})
        )
        (record,) = await records(client, gateway, 1)
        await eventually(lambda: hooks.successes)

    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["created"], int) and len(body["data"]) == 2
    assert all(image["url"].startswith("https://images.mock.invalid/") for image in body["data"])
    assert body["data"][0]["revised_prompt"] == PROMPT + " (in oils)"
    # The upstream got OpenAI's wire: the upstream model, the hook's prompt, every option,
    # none of the gateway's own fields, the deployment's key.
    (sent,) = upstream.received
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer sk-openai-img"
    assert sent.json == {
        "model": "dall-e-3",
        "prompt": PROMPT + " (in oils)",
        "n": 2,
        "size": "1024x1024",
        "quality": "hd",
        "style": "vivid",
        "user": "u-1",
    }
    # Headers like every route's, the hook's own among them, and the cost: 2 images at 0.04.
    headers = response.headers
    assert headers["x-gateway-model-group"] == "paint" and headers["x-gateway-provider"] == "openai"
    assert headers["x-gateway-model-api-base"] == f"{upstream.base_url}/v1"
    assert headers["x-gateway-call-id"] == record["call_id"]
    assert headers["x-gateway-model-id"] and headers["x-gateway-attempted-retries"] == "0"
    assert float(headers["x-gateway-response-cost"]) == pytest.approx(0.08)
    assert headers["x-gateway-applied-guardrails"] == "watch"
    assert headers["x-images-seen"] == "2" and headers["x-images-provider"] == "openai"
    # Guardrails saw the prompt going out and the revised prompts coming back.
    assert PromptWatch.seen == [
        ("request", [PROMPT + " (in oils)"]),
        ("response", [PROMPT + " (in oils)", PROMPT + " (in oils)"]),
    ]
    # One record, of LiteLLM's call type, priced; the hooks saw the same.
    assert hooks.call_types == ["image_generation"]
    assert record["call_type"] == "image_generation" and record["status"] == "success"
    assert record["cost"] == pytest.approx(0.08) and record["model_group"] == "paint"
    assert record["tags"] == ["art"] and record["stream"] is False
    kwargs, logged = hooks.successes[0]
    assert kwargs["call_type"] == "image_generation" and kwargs["response_cost"] == pytest.approx(0.08)
    assert kwargs["standard_logging_object"]["call_type"] == "image_generation"
    assert logged == {"data": body["data"]}


async def test_azure_deployments_are_called_at_their_deployment_url_with_their_key(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        response = await client.post("/images/generations", **generate(model="azure-paint", response_format="b64_json"))
        (record,) = await records(client, gateway, 1)
    assert response.status_code == 200, response.text
    (image,) = response.json()["data"]
    assert image["b64_json"].startswith("iVBORw0KGgo")  # a PNG, base64
    (sent,) = upstream.received
    assert sent.path == "/openai/deployments/dalle-eu/images/generations"
    assert sent.params == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "azure-img-key" and "authorization" not in sent.headers
    assert response.headers["x-gateway-provider"] == "azure"
    assert record["provider"] == "azure" and record["cost"] == pytest.approx(0.08)


async def test_images_are_priced_by_token_and_by_pixel_or_not_at_all(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        tokens = await client.post(PATH, **generate(model="tokens-paint", n=2))
        pixels = await client.post(PATH, **generate(model="pixels-paint", n=3, size="512x512"))
        auto = await client.post(PATH, **generate(model="pixels-paint", size="auto"))
        unpriced = await client.post(PATH, **generate(model="unpriced"))
        logged = {r["call_id"]: r for r in await records(client, gateway, 4)}
    for response in (tokens, pixels, auto, unpriced):
        assert response.status_code == 200, response.text
    # gpt-image-1 reports tokens (the mock: 4 prompt words, 1056 per image) on top of 0.01 an image.
    token_cost = 4 * 5e-6 + 2 * 1056 * 4e-5 + 2 * 0.01
    assert float(tokens.headers["x-gateway-response-cost"]) == pytest.approx(token_cost)
    token_record = logged[tokens.headers["x-gateway-call-id"]]
    assert token_record["prompt_tokens"] == 4 and token_record["completion_tokens"] == 2112
    assert token_record["cost"] == pytest.approx(token_cost)
    assert logged[pixels.headers["x-gateway-call-id"]]["cost"] == pytest.approx(3 * 512 * 512 * 2e-8)
    # A size the gateway cannot count in pixels, or no price at all: the cost is unknown, not 0.
    for response in (auto, unpriced):
        assert "x-gateway-response-cost" not in response.headers
        assert logged[response.headers["x-gateway-call-id"]]["cost"] is None


async def test_the_mock_provider_draws_without_a_network(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post(PATH, **generate(model="local", n=3, response_format="b64_json"))
    assert response.status_code == 200, response.text
    assert [image["revised_prompt"] for image in response.json()["data"]] == [PROMPT] * 3
    assert float(response.headers["x-gateway-response-cost"]) == pytest.approx(1.5)
    assert upstream.received == []


async def test_a_failing_upstream_is_a_502_with_headers_hooks_and_one_failure_record(upstream):
    hooks = ImageHooks()
    upstream.default = Behavior(status=500, content="the painter is out")
    async with client_and_gateway(config_for(upstream), hooks=[hooks]) as (client, gateway):
        response = await client.post(PATH, **generate())
        (record,) = await records(client, gateway, 1)
        await eventually(lambda: hooks.failures)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "the painter is out"
    assert response.headers["x-gateway-model-group"] == "paint" and response.headers["x-gateway-provider"] == "openai"
    assert response.headers["x-images-seen"] == "none"
    assert "x-gateway-response-cost" not in response.headers
    assert record["status"] == "failure" and record["call_type"] == "image_generation"
    assert record["call_id"] == response.headers["x-gateway-call-id"] and record["cost"] is None
    assert hooks.failures[0]["call_type"] == "image_generation"


async def test_a_guardrail_blocks_a_prompt_before_any_image_is_made(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, gateway):
        options = generate()
        options["json"]["prompt"] = "a forbidden subject"
        response = await client.post(PATH, **options)
        (record,) = await records(client, gateway, 1)
    assert response.status_code == 400
    assert "no forbidden subjects" in response.json()["error"]["message"]
    assert upstream.received == []
    assert record["status"] == "failure" and record["call_type"] == "image_generation"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": ["a", "list"]}, "prompt"),
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"n": "2"}, "n"),
        ({"size": 1024}, "size"),
        ({"response_format": "png"}, "response_format"),
        ({"stream": True}, "stream"),
        ({"model": None}, "model"),
    ],
)
async def test_bad_requests_are_refused_naming_the_field(upstream, change, param):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        body = {k: v for k, v in {"model": "paint", "prompt": PROMPT, **change}.items() if v is not None}
        response = await client.post(PATH, json=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert upstream.received == []


async def test_providers_that_draw_no_images_refuse_clearly(upstream):
    async with client_and_gateway(config_for(upstream)) as (client, _):
        response = await client.post(PATH, **generate(model="claude"))
    assert response.status_code == 400
    assert "image generation" in response.json()["error"]["message"]
    assert upstream.received == []


async def test_a_key_budget_reserves_every_image_a_call_asks_for(upstream):
    key = "sk-images-budget-0123456789abcdef"
    models = [
        {
            "name": "paint",
            "model": "openai/dall-e-3",
            "api_base": f"{upstream.base_url}/v1",
            "info": {"mode": "image_generation", "output_cost_per_image": 0.04},
        },
    ]
    config = make_config(models=models, server={"master_key": MASTER}, keys=[{"key": key, "max_budget": 0.1}])
    headers = {"authorization": f"Bearer {key}"}
    async with client_and_gateway(config) as (client, gateway):
        too_many = await client.post(PATH, json={"model": "paint", "prompt": PROMPT, "n": 3}, headers=headers)
        assert not upstream.received  # 3 x 0.04 is over the budget before any image is made
        two = await client.post(PATH, json={"model": "paint", "prompt": PROMPT, "n": 2}, headers=headers)
        logged = await records(client, gateway, 2)
        third = await client.post(PATH, json={"model": "paint", "prompt": PROMPT}, headers=headers)
    assert too_many.status_code == 429, too_many.text
    assert two.status_code == 200, two.text
    assert sorted((r["status"], r["cost"]) for r in logged)[1] == ("success", pytest.approx(0.08))
    assert third.status_code == 429  # 0.08 spent: one more image (0.04) would pass 0.1

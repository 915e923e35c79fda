"""The hostile upstream itself: it serves what it is scripted to, to the real gateway."""

from harness import chat, gateway_client, make_config

from hostile.hostile_upstream import always, chat_completion, gunzip, gzip_bomb, json_reply


def config_for(upstream):
    return make_config(models=[{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": f"{upstream.base_url}/v1"}])


async def test_a_scripted_reply_reaches_the_client(hostile):
    upstream = await hostile(always(json_reply(chat_completion({"prompt_tokens": 1, "completion_tokens": 2}))))
    async with gateway_client(config_for(upstream)) as client:
        response = await client.post("/v1/chat/completions", json=chat("gpt"))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hello"
    assert upstream.requests[0].target == "/v1/chat/completions"
    assert upstream.requests[0].json()["model"] == "gpt-4o-mini"


def test_a_gzip_bomb_inflates_to_its_size():
    bomb = gzip_bomb(4)
    assert len(bomb) < 10_000
    assert len(gunzip(bomb)) == 4 << 20

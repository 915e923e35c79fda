"""The official `openai` and `anthropic` SDKs as clients of the gateway, on every route they
support, streaming and not.  The SDKs' sync clients run in worker threads (they are not
trio-native); the gateway and the mock upstream run on trio as usual."""

import io

import anthropic
import openai
import trio
from harness import make_config, running_gateway

MASTER = "sk-master-sdk-0123456789"


def config_for(upstream):
    models = [{"name": "gpt", "model": "openai/sdk-model", "api_base": f"{upstream.base_url}/v1"},
              {"name": "claude", "model": "anthropic/claude-sdk", "api_base": upstream.base_url, "api_key": "sk-ant-sdk"}]
    return make_config(models=models, server={"master_key": MASTER})


async def in_thread(fn):
    return await trio.to_thread.run_sync(fn)


async def test_openai_sdk_on_every_route(upstream):
    async with running_gateway(config_for(upstream)) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=MASTER, max_retries=0)
        messages = [{"role": "user", "content": "sdk says hi"}]

        chat = await in_thread(lambda: client.chat.completions.create(model="gpt", messages=messages))
        assert chat.choices[0].message.content == "sdk says hi"

        def stream_chat():
            parts = []
            for chunk in client.chat.completions.create(model="gpt", messages=messages, stream=True,
                                                        stream_options={"include_usage": True}):
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    parts.append(f"|{chunk.usage.completion_tokens}")
            return "".join(parts)

        assert await in_thread(stream_chat) == "sdk says hi|3"

        claude_chat = await in_thread(lambda: client.chat.completions.create(model="claude", messages=messages))
        assert claude_chat.choices[0].message.content == "sdk says hi"

        completion = await in_thread(lambda: client.completions.create(model="gpt", prompt="complete me"))
        assert completion.choices[0].text

        def stream_completion():
            return "".join(c.choices[0].text for c in client.completions.create(
                model="gpt", prompt="complete me too", stream=True) if c.choices)

        assert await in_thread(stream_completion) == "complete me too"

        embedding = await in_thread(lambda: client.embeddings.create(model="gpt", input=["a", "b"]))
        assert len(embedding.data) == 2 and embedding.data[0].embedding

        moderation = await in_thread(lambda: client.moderations.create(model="gpt", input="fine text"))
        assert moderation.results[0].flagged is False

        response = await in_thread(lambda: client.responses.create(model="gpt", input="respond please"))
        assert response.output_text == "respond please" and response.id.startswith("resp_")

        def stream_response():
            with client.responses.stream(model="claude", input="stream a response") as events:
                return events.get_final_response()

        final = await in_thread(stream_response)
        assert final.output_text == "stream a response" and final.id.startswith("resp_")

        def stream_openai_response():
            with client.responses.stream(model="gpt", input="passed through") as events:
                return events.get_final_response()

        passed = await in_thread(stream_openai_response)
        assert passed.output_text == "passed through" and passed.id.startswith("resp_")

        transcript = await in_thread(lambda: client.audio.transcriptions.create(
            model="gpt", file=("clip.wav", io.BytesIO(b"RIFF" + b"\0" * 100), "audio/wav")))
        assert "clip.wav" in transcript.text

        def bad_key():
            try:
                openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
                    model="gpt", messages=messages)
            except openai.AuthenticationError as error:
                return error.status_code
            return None

        assert await in_thread(bad_key) == 401


async def test_anthropic_sdk_on_messages(upstream):
    async with running_gateway(config_for(upstream)) as base_url:
        client = anthropic.Anthropic(base_url=base_url, api_key=MASTER, max_retries=0)
        messages = [{"role": "user", "content": "claude sdk hello"}]
        for model in ("claude", "gpt"):
            message = await in_thread(lambda: client.messages.create(model=model, max_tokens=64, messages=messages))
            assert message.content[0].text == "claude sdk hello"
            assert message.usage.output_tokens == 3

            def stream_messages():
                with client.messages.stream(model=model, max_tokens=64, messages=messages) as stream:
                    text = "".join(stream.text_stream)
                    return text, stream.get_final_message()

            text, final = await in_thread(stream_messages)
            assert text == "claude sdk hello" and final.stop_reason == "end_turn"

        def not_found():
            try:
                client.messages.create(model="nope", max_tokens=5, messages=messages)
            except anthropic.NotFoundError as error:
                return error.status_code
            return None

        assert await in_thread(not_found) == 404

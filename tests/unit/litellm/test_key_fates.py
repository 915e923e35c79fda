"""`import-litellm` accounts for every key of a LiteLLM proxy config: each is converted,
reported on stderr as unsupported, or reported as dropped; none is lost silently."""

from __future__ import annotations

import textwrap

import tomli
import yaml
from harness import client_and_gateway

from gateway_trio.cli import main
from gateway_trio.config import parse_config
from gateway_trio.litellm.fates import leaf_paths
from gateway_trio.litellm.importer import convert
from gateway_trio.spend.costs import listed_price

# A seed-style proxy config: wildcards, every settings section, pass-through endpoints,
# environment variables, and the keys the issue found dropped silently.
SEED = textwrap.dedent("""\
    model_list:
      - model_name: "openai/*"
        litellm_params:
          model: "openai/*"
          api_key: os.environ/OPENAI_API_KEY
          organization: os.environ/OPENAI_ORG
          tags: ["free"]
      - model_name: gpt-4o
        litellm_params:
          model: azure/prod-4o
          api_base: os.environ/AZURE_API_BASE
          api_key: os.environ/AZURE_API_KEY
          api_version: "2024-10-21"
          region_name: eu
          temperature: 0.2
          rpm: 600
        model_info:
          id: azure-4o-eu
          base_model: azure/gpt-4o
          supports_vision: true
      - model_name: "legacy/*"
        litellm_params:
          model: "text-completion-openai/*"
          api_base: http://127.0.0.1:8000/v1
          max_retries: 1
      - model_name: claude
        litellm_params:
          model: claude-3-5-sonnet-latest
          api_key: os.environ/ANTHROPIC_API_KEY
      - model_name: bedrock-claude
        litellm_params:
          model: bedrock/anthropic.claude-v2
          aws_region_name: us-east-1
      - model_name: painter
        litellm_params:
          model: openai/dall-e-3
        model_info:
          mode: image_generation
          output_cost_per_image: 0.04
          base_model: some-unlisted-model

    router_settings:
      routing_strategy: usage-based-routing-v2
      num_retries: 3
      timeout: 90
      redis_host: os.environ/REDIS_HOST
      model_group_alias: {"fast": "gpt-4o"}
      enable_tag_filtering: true

    litellm_settings:
      callbacks: custom_callbacks.proxy_handler_instance
      success_callback: ["langfuse", "my_hooks.on_success", "prometheus"]
      drop_params: true
      num_retries: 5
      request_timeout: 600
      fallbacks: [{"gpt-4o": ["claude"]}]
      set_verbose: false
      cache: true
      cache_params:
        type: redis
        ttl: 600
      default_team_settings:
        - team_id: team-1
          success_callback: ["langfuse"]
      some_future_flag: 1

    general_settings:
      master_key: os.environ/LITELLM_MASTER_KEY
      database_url: os.environ/DATABASE_URL
      store_model_in_db: true
      proxy_batch_write_at: 5
      alerting: ["slack"]
      pass_through_endpoints:
        - path: "/v1/rerank"
          target: "https://api.cohere.com/v1/rerank"
          headers: {"Authorization": "bearer os.environ/COHERE_API_KEY"}
          forward_headers: true
          include_subpath: true

    environment_variables:
      REDIS_HOST: secret-redis.internal
      COHERE_API_KEY: co-very-secret-value
""")

FATES = {
    "model_list[0].model_name": "converted",
    "model_list[0].litellm_params.model": "converted",
    "model_list[0].litellm_params.api_key": "converted",
    "model_list[0].litellm_params.organization": "converted",
    "model_list[0].litellm_params.tags": "unsupported",
    "model_list[1].model_name": "converted",
    "model_list[1].litellm_params.model": "converted",
    "model_list[1].litellm_params.api_base": "converted",
    "model_list[1].litellm_params.api_key": "converted",
    "model_list[1].litellm_params.api_version": "converted",
    "model_list[1].litellm_params.region_name": "unsupported",
    "model_list[1].litellm_params.temperature": "unsupported",
    "model_list[1].litellm_params.rpm": "converted",
    "model_list[1].model_info.id": "converted",
    "model_list[1].model_info.base_model": "converted",
    "model_list[1].model_info.supports_vision": "dropped",
    "model_list[2].model_name": "converted",
    "model_list[2].litellm_params.model": "converted",
    "model_list[2].litellm_params.api_base": "converted",
    "model_list[2].litellm_params.max_retries": "converted",
    "model_list[3].model_name": "converted",
    "model_list[3].litellm_params.model": "converted",
    "model_list[3].litellm_params.api_key": "converted",
    "model_list[4]": "unsupported",
    "model_list[5].model_name": "converted",
    "model_list[5].litellm_params.model": "converted",
    "model_list[5].model_info.mode": "converted",
    "model_list[5].model_info.output_cost_per_image": "converted",
    "model_list[5].model_info.base_model": "unsupported",
    "router_settings.routing_strategy": "converted",
    "router_settings.num_retries": "converted",
    "router_settings.timeout": "converted",
    "router_settings.redis_host": "unsupported",
    "router_settings.model_group_alias": "converted",
    "router_settings.enable_tag_filtering": "unsupported",
    "litellm_settings.callbacks": "converted",
    "litellm_settings.success_callback[0]": "unsupported",
    "litellm_settings.success_callback[1]": "converted",
    "litellm_settings.success_callback[2]": "dropped",
    "litellm_settings.drop_params": "converted",
    "litellm_settings.num_retries": "dropped",
    "litellm_settings.request_timeout": "dropped",
    "litellm_settings.fallbacks[0]": "converted",
    "litellm_settings.set_verbose": "dropped",
    "litellm_settings.cache": "unsupported",
    "litellm_settings.cache_params": "unsupported",
    "litellm_settings.default_team_settings": "unsupported",
    "litellm_settings.some_future_flag": "unsupported",
    "general_settings.master_key": "converted",
    "general_settings.database_url": "converted",
    "general_settings.store_model_in_db": "unsupported",
    "general_settings.proxy_batch_write_at": "converted",
    "general_settings.alerting": "unsupported",
    "general_settings.pass_through_endpoints[0].path": "converted",
    "general_settings.pass_through_endpoints[0].target": "converted",
    "general_settings.pass_through_endpoints[0].headers": "converted",
    "general_settings.pass_through_endpoints[0].forward_headers": "converted",
    "general_settings.pass_through_endpoints[0].include_subpath": "unsupported",
    "environment_variables.REDIS_HOST": "dropped",
    "environment_variables.COHERE_API_KEY": "dropped",
}


def test_every_key_of_a_seed_config_has_its_fate():
    document = yaml.safe_load(SEED)
    conversion = convert(document)
    assert {path: fate for path, (fate, _) in conversion.fates.items()} == FATES
    # ... and no key of the input is without one.
    assert [path for path in leaf_paths(document) if conversion.fate_of(path) is None] == []


def test_the_seed_converts_to_a_valid_config_and_reports_what_it_left_out(tmp_path, capsys):
    source = tmp_path / "litellm.yaml"
    source.write_text(SEED)
    out = tmp_path / "gateway.toml"
    assert main(["import-litellm", str(source), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    raw = tomli.loads(out.read_text())
    config = parse_config(raw, str(out), resolve_env=False)

    wildcard, azure, legacy, claude, painter = config.models
    assert (wildcard.name, wildcard.model) == ("openai/*", "openai/*")
    assert raw["models"][0]["headers"] == {"OpenAI-Organization": "os.environ/OPENAI_ORG"}
    assert azure.info.id == "azure-4o-eu" and azure.rpm == 600
    assert (azure.info.input_cost_per_token, azure.info.output_cost_per_token) == listed_price("gpt-4o")
    assert legacy.model == "openai/*" and legacy.info.mode == "completion" and legacy.num_retries == 1
    assert claude.model == "anthropic/claude-3-5-sonnet-latest"
    assert painter.info.mode == "image_generation" and painter.info.output_cost_per_image == 0.04
    router = config.router
    assert router.strategy == "usage-based" and router.num_retries == 3 and router.timeout_s == 90
    assert router.drop_params is True and router.aliases == {"fast": "gpt-4o"}
    assert router.fallbacks == {"gpt-4o": ["claude"]}
    assert config.hooks.callbacks == ["custom_callbacks:proxy_handler_instance"]  # one name, not letters
    assert config.hooks.success_callback == ["my_hooks:on_success"]
    assert config.database.flush_interval_s == 5
    assert config.pass_through[0].path == "/v1/rerank" and config.pass_through[0].forward_headers

    # Every key not converted is on stderr, by path, with why; values never are.
    reported = {line.split(": ")[1]: line.split(": ")[0] for line in err.splitlines() if ": " in line}
    for path, fate in FATES.items():
        if fate != "converted":
            assert reported.get(path) == fate, path
    for needle in ("region", "tag-based", "cache", "bedrock", "langfuse", "text-completion-openai/*"):
        assert needle in err, needle
    assert "secret-redis.internal" not in err and "co-very-secret-value" not in err
    assert "secret-redis.internal" not in out.read_text()


async def test_a_text_completion_openai_deployment_serves_v1_completions(tmp_path, upstream):
    source = tmp_path / "litellm.yaml"
    source.write_text(
        textwrap.dedent(f"""\
        model_list:
          - model_name: "legacy/*"
            litellm_params:
              model: "text-completion-openai/*"
              api_base: {upstream.base_url}/v1
    """)
    )
    out = tmp_path / "gateway.toml"
    assert main(["import-litellm", str(source), "-o", str(out)]) == 0
    config = parse_config({**tomli.loads(out.read_text()), "database": {"url": "sqlite:///:memory:"}})
    async with client_and_gateway(config) as (client, _):
        response = await client.post("/v1/completions", json={"model": "legacy/davinci-002", "prompt": "once upon"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"] == "once upon"
    (sent,) = upstream.received
    assert sent.path == "/v1/completions" and sent.json["model"] == "davinci-002"

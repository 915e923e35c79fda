"""`gateway-trio import-litellm`: a LiteLLM proxy config becomes a config that validates."""

from pathlib import Path

import tomli

from gateway_trio.cli import main
from gateway_trio.config import parse_config

SOURCE = Path(__file__).resolve().parent / "data" / "litellm_config.yaml"


def test_litellm_config_converts_to_a_valid_toml(tmp_path, capsys):
    out = tmp_path / "gateway.toml"
    assert main(["import-litellm", str(SOURCE), "-o", str(out)]) == 0
    skipped = capsys.readouterr().err
    raw = tomli.loads(out.read_text())
    config = parse_config(raw, str(out), resolve_env=False)

    assert [m.name for m in config.models] == ["gpt-4o", "gpt-4o", "claude", "local"]
    azure = config.models[0]
    assert azure.model == "azure/gpt-4o-eu" and azure.api_version == "2024-10-21"
    assert azure.rpm == 600 and azure.timeout_s == 45 and azure.guardrails == ["no-secrets"]
    assert azure.info.id == "gpt-4o-eu" and azure.info.input_cost_per_token == 2.5e-6
    assert raw["models"][0]["api_key"] == "os.environ/AZURE_API_KEY"  # secrets stay references
    assert config.models[1].weight == 2
    assert config.models[3].model == "openai/llama"
    router = config.router
    assert router.strategy == "latency-based" and router.num_retries == 3 and router.timeout_s == 120
    assert router.allowed_fails == 2 and router.cooldown_s == 45 and router.pre_call_checks
    assert router.aliases == {"fast": "gpt-4o", "smart": "claude"}
    assert router.fallbacks == {"gpt-4o": ["claude"]}
    assert config.hooks.callbacks == ["custom_callbacks:proxy_handler_instance"]
    assert config.hooks.success_callback == ["my_hooks:on_success"]
    assert raw["server"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config.database.url == "sqlite:///litellm.db"
    assert config.pass_through[0].path == "/v1/rerank" and config.pass_through[0].forward_headers
    assert [g.name for g in config.guardrails] == ["no-secrets", "custom-check"]
    assert config.guardrails[0].params == {"patterns": ["sk-[A-Za-z0-9]{20,}"]}
    assert config.guardrails[1].guardrail == "my_guardrails:Checker" and config.guardrails[1].default_on
    for reason in ("vertex_ai", "langfuse", "lakera"):
        assert reason in skipped


def test_unreadable_or_odd_yaml_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [unclosed")
    assert main(["import-litellm", str(bad)]) == 1
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    assert main(["import-litellm", str(listy)]) == 1
    assert "error" in capsys.readouterr().err


def test_yaml_tags_are_never_constructed(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text("model_list: !!python/object/apply:os.system ['echo hacked']\n")
    assert main(["import-litellm", str(evil)]) == 1
    assert "hacked" not in capsys.readouterr().out

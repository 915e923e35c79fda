import pytest

from gateway_trio.cli import main
from gateway_trio.config import ConfigError, load_config, parse_config


def write(tmp_path, text: str):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_default_config_loads_and_uses_only_the_mock_provider():
    config = load_config()
    assert config.models
    assert {m.model.split("/")[0] for m in config.models} == {"mock"}


def test_env_references_are_resolved(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "sk-from-env")
    path = write(tmp_path, '[[models]]\nname = "a"\nmodel = "openai/gpt-4o"\napi_key = "os.environ/TEST_UPSTREAM_KEY"\n')
    config = load_config(path)
    assert config.models[0].api_key.get_secret_value() == "sk-from-env"
    assert "sk-from-env" not in repr(config)


def test_missing_env_variable_names_the_key_and_file(monkeypatch, tmp_path):
    monkeypatch.delenv("NOT_THERE_AT_ALL", raising=False)
    path = write(tmp_path, '[server]\nmaster_key = "os.environ/NOT_THERE_AT_ALL"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "server.master_key" in str(info.value)
    assert "NOT_THERE_AT_ALL" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_key_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, '[router]\nfallback = { "a" = ["b"] }\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "router.fallback" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_key_in_a_model_names_its_index(tmp_path):
    path = write(tmp_path, '[[models]]\nname = "a"\nmodel = "openai/x"\napi_bsae = "http://x"\n')
    with pytest.raises(ConfigError, match=r"models\[0\]\.api_bsae"):
        load_config(path)


def test_wrong_type_is_an_error_naming_the_key(tmp_path):
    path = write(tmp_path, '[router]\nnum_retries = "many"\n')
    with pytest.raises(ConfigError, match="router.num_retries"):
        load_config(path)


def test_unknown_provider_is_refused():
    with pytest.raises(ConfigError, match=r"models\[0\]\.model.*unknown provider 'nope'"):
        parse_config({"models": [{"name": "a", "model": "nope/x"}]})


def test_later_sections_are_validated_now():
    raw = {
        "guardrails": [{"name": "g", "guardrail": "regex", "mode": ["pre_call", "post_call"], "params": {"patterns": ["x"]}}],
        "hooks": {"callbacks": ["my_hooks:handler"], "actors": ["my_actors:audit"]},
        "pass_through": [{"path": "/v1/rerank", "target": "http://127.0.0.1:9/v1/rerank", "forward_headers": True}],
        "database": {"url": "sqlite:///x.db"},
        "models": [{"name": "a", "model": "mock/a", "guardrails": ["g"]}],
    }
    config = parse_config(raw)
    assert config.guardrails[0].mode == ["pre_call", "post_call"]
    with pytest.raises(ConfigError, match="hooks.callbacks"):
        parse_config({"hooks": {"callbacks": ["no_colon"]}})
    with pytest.raises(ConfigError, match="guardrails.*mode"):
        parse_config({"guardrails": [{"name": "g", "guardrail": "regex", "mode": "sometimes"}]})
    with pytest.raises(ConfigError, match="unknown guardrail 'missing'"):
        parse_config({"models": [{"name": "a", "model": "mock/a", "guardrails": ["missing"]}]})


def test_check_config_prints_groups_and_exits_zero(tmp_path, capsys):
    path = write(tmp_path, '[[models]]\nname = "gpt"\nmodel = "openai/gpt-4o"\napi_base = "https://user:pw@example.test/v1?key=1"\napi_key = "sk-secret-value"\n'
                 '[[models]]\nname = "gpt"\nmodel = "azure/gpt-4o"\napi_base = "https://az.example.test"\n')
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gpt" in out and "openai/gpt-4o" in out and "azure/gpt-4o" in out
    assert "sk-secret-value" not in out and "pw" not in out and "key=1" not in out


def test_check_config_exits_one_naming_the_bad_key(tmp_path, capsys):
    path = write(tmp_path, '[server]\nprot = 4000\n')
    assert main(["check-config", str(path)]) == 1
    assert "server.prot" in capsys.readouterr().err


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    path = write(tmp_path, "[server\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)


def test_every_provider_a_config_may_name_has_an_adapter_and_no_other():
    from gateway_trio.adapters import PROVIDERS as ADAPTERS
    from gateway_trio.config import PROVIDERS

    assert set(ADAPTERS) - {"pass_through"} == PROVIDERS

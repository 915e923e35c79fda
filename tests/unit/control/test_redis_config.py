"""`[redis]` (SPEC §3): its keys, the moved `router.redis_url`, the importer, and a
`check-config` that connects to nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import tomli

from gateway_trio.cli import main
from gateway_trio.config import ConfigError, parse_config
from gateway_trio.litellm.importer import convert


def test_redis_section_keys_and_defaults():
    config = parse_config({"redis": {"url": "redis://:pw@127.0.0.1:6379/0"}})
    redis = config.redis
    assert redis is not None and redis.key_prefix == "gw:" and redis.on_failure == "local"
    assert redis.timeout_s > 0 and redis.connect_timeout_s > 0
    assert "pw" not in repr(redis)  # the url may hold a password: it is a secret
    closed = parse_config({"redis": {"url": "redis://h", "on_failure": "closed", "key_prefix": "x:"}}).redis
    assert closed is not None and closed.on_failure == "closed" and closed.key_prefix == "x:"
    assert parse_config({}).redis is None


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"url": "redis://h", "on_failure": "open"}, "redis.on_failure"),
        ({"url": "http://h"}, "redis.url"),
        ({"url": "redis://h:notaport/0"}, "redis.url"),
        ({"url": "redis:///0"}, "redis.url"),
        ({"url": "redis://h", "key_prefix": "{x}"}, "redis.key_prefix"),
        ({"url": "redis://h", "timeout": 1}, "redis.timeout"),
        ({}, "redis.url"),
    ],
)
def test_bad_redis_keys_are_named(section, named):
    with pytest.raises(ConfigError, match=named):
        parse_config({"redis": section})


def test_bad_url_error_never_repeats_it():
    with pytest.raises(ConfigError) as error:
        parse_config({"redis": {"url": "http://:hunter2@h"}})
    assert "hunter2" not in str(error.value)


def test_router_redis_url_is_gone_and_says_where_it_went():
    with pytest.raises(ConfigError, match=r"router\.redis_url.*\[redis\] url"):
        parse_config({"router": {"redis_url": "redis://h"}})


def test_importer_emits_the_redis_section():
    out = convert({"router_settings": {"redis_url": "os.environ/REDIS_URL"}})
    assert out.config["redis"] == {"url": "os.environ/REDIS_URL"}
    assert "redis_url" not in out.config.get("router", {})
    parse_config(out.config, resolve_env=False)
    parts = convert({"router_settings": {"redis_host": "cache", "redis_port": 6380, "redis_password": "p@ss"}})
    assert parts.config["redis"] == {"url": "redis://:p%40ss@cache:6380/0"}
    from_env = convert({"router_settings": {"redis_host": "os.environ/REDIS_HOST"}})
    assert "redis" not in from_env.config
    assert from_env.fates["router_settings.redis_host"][0] == "unsupported"


def test_check_config_connects_to_no_redis(tmp_path: Path, capsys):
    # A port nothing listens on: connecting would fail; check-config must not try.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/g.db"\n[redis]\nurl = "redis://127.0.0.1:{port}/0"\n'
        '[[models]]\nname = "a"\nmodel = "mock/a"\n'
    )
    assert main(["check-config", str(path)]) == 0
    assert tomli.loads(path.read_text())["redis"]["url"].endswith(f":{port}/0")

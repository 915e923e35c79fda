"""An empty master key is an error, never "no auth"; no key at all is warned about at every start (point 3).

`master_key = "os.environ/VAR"` with VAR set but empty used to load as `SecretStr("")`, which
is falsy: the gateway then admitted every caller, and logged nothing.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from harness import chat, make_config, serving

from gateway_trio.auth import Authenticator
from gateway_trio.cli import main
from gateway_trio.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]
MODEL = {"name": "m", "model": "mock/m"}
NO_KEY_WARNING = "no server.master_key configured: every caller is admitted"


@pytest.mark.parametrize("value", ["", "   ", "\n", "\t \r\n"])
def test_an_empty_master_key_is_a_load_error_naming_it(value):
    with pytest.raises(ConfigError, match=r"server\.master_key: is empty"):
        parse_config({"server": {"master_key": value}, "models": [MODEL]})


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_master_key_from_the_environment_is_a_load_error_naming_it(value, monkeypatch):
    monkeypatch.setenv("GW_TEST_MASTER_KEY", value)
    with pytest.raises(ConfigError, match=r"server\.master_key: is empty"):
        parse_config({"server": {"master_key": "os.environ/GW_TEST_MASTER_KEY"}, "models": [MODEL]})


@pytest.mark.parametrize(("value", "problem"), [
    ("sk-master-from-a-file\n", "leading or trailing whitespace"),
    (" sk-master", "leading or trailing whitespace"),
    ("sk-mas\x00ter", "control characters"),
])
def test_a_master_key_that_can_never_match_is_a_load_error(value, problem):
    with pytest.raises(ConfigError, match=rf"server\.master_key: .*{problem}") as info:
        parse_config({"server": {"master_key": value}})
    assert value.strip() not in str(info.value)


@pytest.mark.parametrize("value", ["", " ", "sk-upstream\n"])
def test_an_empty_or_broken_upstream_key_is_a_load_error_naming_it(value, monkeypatch):
    """An explicitly empty api_key used to send no credentials at all, silently."""
    monkeypatch.setenv("GW_TEST_UPSTREAM_KEY", value)
    models = [MODEL, {"name": "gpt", "model": "openai/gpt-4o", "api_key": "os.environ/GW_TEST_UPSTREAM_KEY"}]
    with pytest.raises(ConfigError, match=r"models\[1\]\.api_key: ") as info:
        parse_config({"models": models})
    assert "sk-upstream" not in str(info.value)


def test_the_authenticator_never_reads_an_empty_key_as_no_auth():
    with pytest.raises(ValueError):
        Authenticator("")
    with pytest.raises(ValueError):
        Authenticator("  ")
    assert Authenticator(None).master_key is None


def test_an_empty_litellm_master_key_is_refused_not_dropped(tmp_path, capsys):
    """Dropping it would have converted a proxy config into one without auth."""
    source = tmp_path / "litellm.yaml"
    source.write_text('general_settings:\n  master_key: ""\nmodel_list:\n'
                      '  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n')
    out = tmp_path / "gateway.toml"
    assert main(["import-litellm", str(source), "-o", str(out)]) == 1
    assert "server.master_key" in capsys.readouterr().err
    assert not out.exists()


def run_cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway_trio", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **env})


def test_serve_with_an_empty_master_key_from_the_environment_refuses_to_start(tmp_path):
    """End to end: the command that used to serve everyone now serves no one."""
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nmaster_key = "os.environ/GW_TEST_MASTER_KEY"\n'
                    f'[database]\nurl = "sqlite:///{tmp_path}/spend.db"\n[[models]]\nname = "m"\nmodel = "mock/m"\n')
    served = run_cli("serve", "--config", str(path), "--port", "0", env={"GW_TEST_MASTER_KEY": ""})
    assert served.returncode == 1
    lines = served.stderr.splitlines()
    assert len(lines) == 1 and "server.master_key" in lines[0] and "Traceback" not in served.stderr


async def test_auth_stays_on_with_a_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("GW_TEST_MASTER_KEY", "sk-from-the-environment")
    config = make_config(server={"master_key": "os.environ/GW_TEST_MASTER_KEY"}, models=[MODEL])
    async with serving(config) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            anonymous = await client.post("/v1/chat/completions", json=chat("m"))
            wrong = await client.post("/v1/chat/completions", json=chat("m"), headers={"authorization": "Bearer"})
            right = await client.post("/v1/chat/completions", json=chat("m"),
                                      headers={"authorization": "Bearer sk-from-the-environment"})
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert right.status_code == 200


async def test_no_master_key_is_warned_about_when_serving_starts(caplog):
    caplog.set_level(logging.WARNING, logger="gateway_trio")
    async with serving(make_config(models=[MODEL])):
        pass
    assert [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == NO_KEY_WARNING]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def stop_left_over(pids: list[int]) -> None:
    """The workers end with their parent; should one not, it must not outlive the test."""
    deadline = time.monotonic() + 10
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def test_no_master_key_is_warned_about_by_every_worker(tmp_path):
    """Two workers, two warnings: each worker process is a start of the gateway."""
    path = tmp_path / "gateway.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/spend.db"\n[[models]]\nname = "m"\nmodel = "mock/m"\n')
    process = subprocess.Popen([sys.executable, "-m", "gateway_trio", "serve", "--config", str(path), "--port", "0",
                                "--workers", "2"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stderr is not None
    seen: list[str] = []
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while sum(NO_KEY_WARNING in line for line in seen) < 2 and time.monotonic() < deadline:
                if selector.select(timeout=0.5):
                    line = process.stderr.readline()
                    if not line:
                        break
                    seen.append(line)
    finally:
        workers = children_of(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stop_left_over(workers)
    warnings = [line for line in seen if NO_KEY_WARNING in line]
    assert len(warnings) == 2, seen
    assert all("WARNING" in line for line in warnings)  # through the configured logging, in each worker


@pytest.mark.parametrize("public", [False, True])
async def test_metrics_need_the_master_key_unless_made_public(public):
    config = make_config(server={"master_key": "sk-master-metrics-0123456789", "metrics_public": public}, models=[MODEL])
    async with serving(config) as (base_url, _), httpx.AsyncClient(base_url=base_url) as client:
        anonymous = await client.get("/metrics")
        with_master = await client.get("/metrics", headers={"Authorization": "Bearer sk-master-metrics-0123456789"})
    assert with_master.status_code == 200 and "gateway_calls_total" in with_master.text
    if public:
        assert anonymous.status_code == 200
    else:
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["message"]

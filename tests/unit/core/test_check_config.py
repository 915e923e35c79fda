"""`check-config` builds everything `serve` would, and both fail with one line naming the key (point 11).

Each bad config below loaded fine before (only the TOML was validated), so `check-config`
said it was good and `serve` crashed with a traceback, or served with the mistake in place.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gateway_trio.cli import main

ROOT = Path(__file__).resolve().parents[3]
MODEL = '[[models]]\nname = "a"\nmodel = "mock/a"\n'


def unique(prefix: str) -> str:
    """A module name no other test imports (check-config runs in this process and imports it)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def config_file(tmp_path: Path, text: str, modules: dict[str, str] | None = None) -> Path:
    """`gateway.toml` with `text` (a sqlite file in tmp_path unless it says otherwise), and modules beside it."""
    if "[database]" not in text:
        text = f'[database]\nurl = "sqlite:///{tmp_path}/spend.db"\n' + text
    for name, source in (modules or {}).items():
        (tmp_path / f"{name}.py").write_text(source)
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check-config", str(path)])
    return code, capsys.readouterr().err.splitlines()


def assert_one_line_naming(code: int, lines: list[str], key: str) -> None:
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and key in lines[0], lines[0]
    assert "Traceback" not in lines[0]


def bad_configs(tmp_path: Path) -> dict[str, tuple[str, dict[str, str], str]]:
    """name -> (config text, modules beside it, the key the error must name)."""
    m = {k: unique(k) for k in ("missing", "syntax", "raising", "ctor", "actor", "const", "attr", "guard")}
    return {
        "hook module missing": (MODEL + f'[hooks]\ncallbacks = ["{m["missing"]}:handler"]\n', {}, "hooks.callbacks[0]"),
        "hook module with a syntax error": (
            MODEL + f'[hooks]\ncallbacks = ["{m["syntax"]}:handler"]\n', {m["syntax"]: "def broken(:\n"}, "hooks.callbacks[0]"),
        "hook module raising at import": (
            MODEL + f'[hooks]\ncallbacks = ["{m["raising"]}:handler"]\n',
            {m["raising"]: "raise RuntimeError('no config for\\nthis hook')\n"}, "hooks.callbacks[0]"),
        "hook constructor raising": (
            MODEL + f'[hooks]\ncallbacks = ["{m["ctor"]}:Handler"]\n',
            {m["ctor"]: "class Handler:\n    def __init__(self):\n        raise ValueError('needs a token')\n"},
            "hooks.callbacks[0]"),
        "actor that is not async": (
            MODEL + f'[hooks]\nactors = ["{m["actor"]}:audit"]\n', {m["actor"]: "def audit(events):\n    pass\n"},
            "hooks.actors[0]"),
        "success callback that is not callable": (
            MODEL + f'[hooks]\nsuccess_callback = ["{m["const"]}:LIMIT"]\n', {m["const"]: "LIMIT = 3\n"},
            "hooks.success_callback[0]"),
        "input callback attribute missing": (
            MODEL + f'[hooks]\ninput_callback = ["{m["attr"]}:nope"]\n', {m["attr"]: "x = 1\n"}, "hooks.input_callback[0]"),
        "guardrail class missing": (
            MODEL + f'[[guardrails]]\nname = "g"\nguardrail = "{m["guard"]}:Missing"\n', {m["guard"]: "x = 1\n"},
            "guardrails[0]"),
        "guardrail regex invalid": (
            MODEL + '[[guardrails]]\nname = "g"\nguardrail = "regex"\n[guardrails.params]\npatterns = ["sk-(["]\n', {},
            "guardrails[0]"),
        "guardrail unknown param": (
            MODEL + '[[guardrails]]\nname = "g"\nguardrail = "regex"\n[guardrails.params]\npatterns = ["x"]\npatern = "y"\n',
            {}, "guardrails[0]"),
        "guardrail stream param of the wrong type": (
            MODEL + '[[guardrails]]\nname = "g"\nguardrail = "regex"\n[guardrails.params]\npatterns = ["x"]\n'
            'stream_mode = "sample"\nsample_every = "often"\n', {}, "guardrails[0]"),
        "database url of a driver this build has not": (
            '[database]\nurl = "postgresql+asyncpg://gw:hunter2@db/spend"\n' + MODEL, {}, "database.url"),
        "database folder missing": (f'[database]\nurl = "sqlite:///{tmp_path}/no/such/dir/spend.db"\n' + MODEL, {},
                                    "database.url"),
        "database path is a folder": (f'[database]\nurl = "sqlite:///{tmp_path}"\n' + MODEL, {}, "database.url"),
        "duplicate deployment id": (
            '[[models]]\nname = "a"\nmodel = "mock/a"\ninfo = { id = "one" }\n'
            '[[models]]\nname = "b"\nmodel = "mock/b"\ninfo = { id = "one" }\n', {}, "models[1].info.id"),
        "the same deployment twice": (MODEL + MODEL, {}, "models[1]"),
        "alias of an unknown group": (MODEL + '[router]\naliases = { "fast" = "gpt-5-typo" }\n', {}, "router.aliases.fast"),
        "fallback to an unknown group": (MODEL + '[router]\nfallbacks = { "a" = ["gpt-5-typo"] }\n', {},
                                         "router.fallbacks.a[0]"),
        "fallback from an unknown group": (MODEL + '[router]\nfallbacks = { "b" = ["a"] }\n', {}, "router.fallbacks.b"),
        "context window fallback to an unknown group": (
            MODEL + '[router]\ncontext_window_fallbacks = { "a" = ["big"] }\n', {}, "router.context_window_fallbacks.a[0]"),
        "pass-through on the chat route": (
            MODEL + '[[pass_through]]\npath = "/v1/chat/completions"\ntarget = "http://127.0.0.1:9/x"\n', {},
            "pass_through[0].path"),
        "pass-through on the chat route without /v1": (
            MODEL + '[[pass_through]]\npath = "/chat/completions"\ntarget = "http://127.0.0.1:9/x"\n', {},
            "pass_through[0].path"),
        "pass-through on the health route": (
            MODEL + '[[pass_through]]\npath = "/health"\ntarget = "http://127.0.0.1:9/x"\n', {}, "pass_through[0].path"),
        "pass-through path twice": (
            MODEL + '[[pass_through]]\npath = "/v1/rerank"\ntarget = "http://127.0.0.1:9/x"\n'
            '[[pass_through]]\npath = "/v1/rerank"\ntarget = "http://127.0.0.1:9/y"\n', {}, "pass_through[1].path"),
    }


CASES = list(bad_configs(Path("/tmp")))


@pytest.mark.parametrize("case", CASES)
def test_check_config_fails_with_one_line_naming_the_key(case, tmp_path, capsys):
    text, modules, key = bad_configs(tmp_path)[case]
    code, lines = check(config_file(tmp_path, text, modules), capsys)
    assert_one_line_naming(code, lines, key)
    assert "hunter2" not in lines[0]


def test_an_unreadable_sqlite_file_names_database_url(tmp_path, capsys):
    (tmp_path / "spend.db").write_bytes(b"not a database, just bytes" * 200)
    code, lines = check(config_file(tmp_path, MODEL), capsys)
    assert_one_line_naming(code, lines, "database.url")
    assert "not a database" in lines[0]


def test_check_config_builds_hooks_but_starts_nothing_connects_nowhere_and_creates_no_database(tmp_path, capsys):
    hooks, actors = unique("built_hooks"), unique("idle_actors")
    marker = tmp_path / "actor-ran"
    modules = {
        hooks: f"from pathlib import Path\nclass Handler:\n    def __init__(self):\n"
               f"        Path({str(tmp_path / 'hook-built')!r}).write_text('yes')\n",
        actors: f"from pathlib import Path\nasync def audit(events):\n    Path({str(marker)!r}).write_text('ran')\n",
    }
    with socket.create_server(("127.0.0.1", 0)) as listener:  # every upstream, guardrail and route points here
        far = "http://127.0.0.1:%d" % listener.getsockname()[1]
        text = (
            MODEL
            + f'[[models]]\nname = "far"\nmodel = "openai/gpt-4o"\napi_base = "{far}/v1"\n'
            + f'[[guardrails]]\nname = "remote"\nguardrail = "http"\n[guardrails.params]\nurl = "{far}/check"\n'
            + f'[hooks]\ncallbacks = ["{hooks}:Handler"]\nactors = ["{actors}:audit"]\n'
            + '[router]\nfallbacks = { "a" = ["far"] }\n'
            + f'[[pass_through]]\npath = "/v1/rerank"\ntarget = "{far}/v1/rerank"\n'
        )
        code, lines = check(config_file(tmp_path, text, modules), capsys)
        nobody_called = not select.select([listener], [], [], 0.2)[0]
    assert code == 0, lines
    assert (tmp_path / "hook-built").read_text() == "yes"  # built, as serve would
    assert not marker.exists()  # but no actor started
    assert nobody_called  # no upstream, guardrail service or route target was connected to
    assert not (tmp_path / "spend.db").exists()  # and no database created


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway_trio", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, env={**os.environ, **(env or {})})


SERVE_CASES = ["hook module with a syntax error", "database folder missing", "fallback to an unknown group",
               "pass-through on the chat route", "duplicate deployment id"]


@pytest.mark.parametrize("case", SERVE_CASES)
def test_serve_fails_the_same_way_without_a_traceback(case, tmp_path):
    text, modules, key = bad_configs(tmp_path)[case]
    path = config_file(tmp_path, text, modules)
    served = run_cli("serve", "--config", str(path), "--port", "0")
    lines = served.stderr.splitlines()
    assert_one_line_naming(served.returncode, lines, key)
    checked = run_cli("check-config", str(path))
    assert checked.returncode == 1 and checked.stderr == served.stderr  # the very same line


def test_serve_with_several_workers_checks_the_config_before_starting_any(tmp_path):
    text, modules, key = bad_configs(tmp_path)["pass-through on the chat route"]
    served = run_cli("serve", "--config", str(config_file(tmp_path, text, modules)), "--port", "0", "--workers", "2")
    assert_one_line_naming(served.returncode, served.stderr.splitlines(), key)

"""scripts/bench: what it reads from wrk, the rates it reports, its virtual-key rows, and a short run end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from harness import chat, client_and_gateway

from gateway_trio.auth import hash_key
from gateway_trio.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def load_script(path: Path) -> ModuleType:
    """A script of scripts/ as a module: it is run by path, never installed or put on sys.path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = load_script(ROOT / "scripts" / "bench.py")

WRK_OUTPUT = """\
Running 41s test @ http://127.0.0.1:8080/v1/chat/completions
  2 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10s    80.00ms   3.20s    90.00%
    Req/Sec   240.00    100.00   500.00     70.00%
  Latency Distribution
     50%    2.09s
     75%    2.12s
     90%  850.00ms
     99%    3.07s
  18519 requests in 41.10s, 10.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 3
Requests/sec:    450.58
Transfer/sec:    249.00KB
"""


def test_wrk_output_is_read_with_its_units_and_errors():
    result = bench.parse_wrk(WRK_OUTPUT)
    assert result.requests == 18519 and result.duration_s == pytest.approx(41.1)
    assert result.rps == pytest.approx(450.58)
    assert result.p50_ms == pytest.approx(2090.0) and result.p99_ms == pytest.approx(3070.0)
    assert (result.non_2xx, result.socket_errors, result.timeouts) == (3, 3, 5)
    assert result.errors == 11


def test_wrk_output_it_cannot_read_is_an_error():
    with pytest.raises(RuntimeError, match="cannot parse wrk output"):
        bench.parse_wrk("wrk: connection refused\n")


def cell(target: str, stream: bool, rps: float) -> bench.Cell:
    return bench.Cell(target=target, stream=stream, conns=1000, rps=rps, p50_ms=2000.0, p99_ms=2100.0,
                      requests=int(rps * 41), non_2xx=0, socket_errors=0, timeouts=0)


def test_the_concurrency_rates_are_measured_against_the_ideal_and_the_direct_mock(capsys):
    rows = bench.report_concurrency(
        [cell("direct", False, 480.0), cell("gateway", False, 450.0),
         cell("direct", True, 460.0), cell("gateway", True, 441.0)], 41.0)
    by = {(row["target"], row["stream"]): row for row in rows}
    stream_ideal = 1000 / (bench.WAIT_DELAY_S + (bench.WAIT_CHUNKS - 1) * bench.WAIT_CHUNK_DELAY_S)
    assert by["gateway", False]["ideal_rps"] == pytest.approx(500.0)
    assert by["gateway", False]["percent_of_ideal"] == pytest.approx(90.0)
    assert by["gateway", False]["percent_of_direct"] == pytest.approx(93.75)
    assert by["gateway", True]["ideal_rps"] == pytest.approx(stream_ideal)
    assert by["gateway", True]["percent_of_ideal"] == pytest.approx(100 * 441.0 / stream_ideal)
    assert "gateway  stream" in capsys.readouterr().out


def matrix_cell(target: str, cpu_ms: float, conns: int = 32) -> bench.Cell:
    return bench.Cell(target=target, stream=False, conns=conns, rps=1000.0, p50_ms=1.0, p99_ms=2.0, requests=5000,
                      non_2xx=0, socket_errors=0, timeouts=0, cpu_ms_per_request=cpu_ms)


def test_the_key_rows_report_their_cpu_over_the_master_key_rows_of_the_same_cell(capsys):
    cells = [matrix_cell("direct", 0.0), matrix_cell("floor", 0.5), matrix_cell("gateway", 1.0),
             matrix_cell(bench.KEY_TARGET, 1.1), matrix_cell("gateway", 2.0, conns=1),
             matrix_cell(bench.KEY_TARGET, 2.5, conns=1)]
    rows = bench.report_matrix(cells, 5.0)
    by = {(row["target"], row["conns"]): row for row in rows}
    assert by[bench.KEY_TARGET, 32]["cpu_ratio_key_over_master"] == pytest.approx(1.1)
    assert by[bench.KEY_TARGET, 32]["cpu_ratio_gateway_over_floor"] == pytest.approx(2.2)
    assert by[bench.KEY_TARGET, 1]["cpu_ratio_key_over_master"] == pytest.approx(1.25)
    assert by["gateway", 32]["cpu_ratio_key_over_master"] is None
    assert by["gateway", 32]["cpu_ratio_gateway_over_floor"] == pytest.approx(2.0)
    summary = bench.key_scenario_summary(rows)
    assert summary["cpu_ratio_key_over_master"] == {"json c=1": pytest.approx(1.25), "json c=32": pytest.approx(1.1)}
    assert summary["worst_cpu_ratio"] == pytest.approx(1.25)
    assert summary["mean_cpu_ratio"] == pytest.approx(1.175)
    out = capsys.readouterr().out
    assert "gw-key" in out and "1.18× over the 2 cells (worst cell 1.25×; OVER the 1.15× goal)" in out


def test_runs_of_a_cell_pool_into_one_with_cpu_per_request_over_all_of_them():
    runs = [matrix_cell("gateway", 1.0), matrix_cell("gateway", 4.0)]
    runs[1].requests = 1000
    one = bench.pooled(runs)
    assert one.requests == 6000 and one.cpu_ms_per_request == pytest.approx((5000 * 1.0 + 1000 * 4.0) / 6000)
    assert one.rps == pytest.approx(1000.0) and one.errors == 0


def test_refused_key_calls_count_only_the_key_rows():
    refused = matrix_cell(bench.KEY_TARGET, 1.0)
    refused.non_2xx = 7
    master = matrix_cell("gateway", 1.0)
    master.non_2xx = 3
    assert bench.refused_key_calls([master, refused]) == 7
    assert bench.refused_key_calls([master]) == 0


def test_wrk_reads_the_key_from_its_environment_never_from_its_script():
    secret = "sk-" + "x" * 40
    script, env = bench.wrk_script(b'{"model":"bench"}', {"authorization": f"Bearer {secret}"})
    assert secret not in script and env == {"GATEWAY_BENCH_HEADER_0": f"Bearer {secret}"}
    assert 'wrk.headers["authorization"] = os.getenv("GATEWAY_BENCH_HEADER_0")' in script
    assert bench.wrk_script(b"{}", {})[1] == {}


async def test_the_bench_key_is_admitted_through_every_level_and_its_secrets_stay_out_of_the_config(
    upstream, tmp_path, monkeypatch
):
    tenancy = bench.Tenancy.generate()
    text = bench.gateway_config(tmp_path, upstream.port, tenancy)
    assert tenancy.master_key not in text and tenancy.virtual_key not in text
    assert tenancy.master_key not in repr(tenancy) and tenancy.virtual_key not in repr(tenancy)
    for name, value in tenancy.env.items():
        monkeypatch.setenv(name, value)
    config = parse_config(tomllib.loads(text), "<bench>")
    (key,) = config.keys
    assert key.team_id == config.teams[0].team_id and config.teams[0].max_budget
    assert key.max_budget and key.rpm_limit and key.tpm_limit
    async with client_and_gateway(config) as (client, gateway):
        for stream in (False, True):
            answer = await client.post("/v1/chat/completions", json=chat("bench", stream=stream),
                                       headers=tenancy.key_headers())
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-ratelimit-limit-requests"] == str(bench.KEY_LIMITS["rpm_limit"])
            assert "x-gateway-key-budget-remaining" in answer.headers
        master = await client.post("/v1/chat/completions", json=chat("bench"), headers=tenancy.master_headers())
        assert master.status_code == 200, master.text
        team = gateway.control.ledger.get("team", "bench-team")
        assert gateway.control.ledger.get("key", hash_key(tenancy.virtual_key)).spend > 0
    assert team is not None and team.spend > 0  # the team's budget was checked and charged too


@pytest.mark.slow  # about 40 s of real load: run by .ci/run, not by a plain scripts/test
def test_a_quick_run_measures_every_matrix_cell(tmp_path):
    figures = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--duration", "1", "--loadgen", "python",
         "--json", str(figures)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    matrix = json.loads(figures.read_text())["matrix"]
    assert {(row["target"], row["stream"], row["conns"]) for row in matrix} == {
        (target, stream, conns) for target in (*bench.TARGETS, bench.KEY_TARGET, bench.REDIS_KEY_TARGET)
        for stream in (False, True) for conns in (1, 32)
    }  # redis-server is there: scripts/test installs it, and the Redis rows need it
    for row in matrix:
        assert row["rps"] > 0 and row["errors"] == 0, row
        if row["target"] in ("gateway", bench.KEY_TARGET):
            assert row["cpu_ms_per_request"] > 0 and row["cpu_ratio_gateway_over_floor"] > 0, row
        if row["target"] == bench.KEY_TARGET:
            assert row["cpu_ratio_key_over_master"] > 0, row
        if row["target"] == bench.REDIS_KEY_TARGET:
            assert row["cpu_ms_per_request"] > 0, row
    assert "gw-key" in run.stdout and "virtual key vs master key" in run.stdout


@pytest.mark.slow  # real gateways and a real Redis for a few seconds
def test_the_instances_scenario_spreads_the_load_over_gateways_sharing_one_redis(tmp_path):
    figures = tmp_path / "fleet.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--instances", "1,2", "--duration", "1",
         "--loadgen", "python", "--json", str(figures)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(figures.read_text())["instances"]
    assert {(row["instances"], row["stream"]) for row in rows} == {(n, s) for n in (1, 2) for s in (False, True)}
    for row in rows:
        assert row["rps"] > 0 and row["errors"] == 0, row
        assert len(row["cpu_ms_per_instance"]) == row["instances"]
        assert all(used > 0 for used in row["cpu_ms_per_instance"]), row  # every instance took calls

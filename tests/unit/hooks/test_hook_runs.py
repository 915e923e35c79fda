"""In-line hook runs are counted by outcome and timed, for `/metrics`."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from gateway_trio.hooks import CustomLogger, UserAPIKeyAuth
from gateway_trio.hooks.inline import HookSet


class Slow(CustomLogger):
    async def async_post_call_failure_hook(
        self, request_data, original_exception, user_api_key_dict, traceback_str=None
    ):
        await trio.sleep(2)


class Raising(CustomLogger):
    async def async_post_call_failure_hook(
        self, request_data, original_exception, user_api_key_dict, traceback_str=None
    ):
        raise RuntimeError("boom")


class Hanging(CustomLogger):
    async def async_post_call_failure_hook(
        self, request_data, original_exception, user_api_key_dict, traceback_str=None
    ):
        await trio.sleep_forever()


class Rejecting(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        raise PermissionError("no")


async def test_runs_by_outcome_and_their_durations(autojump_clock: Any) -> None:
    hooks = HookSet([Slow(), Raising(), Hanging(), Rejecting()], timeout_s=5)
    await hooks.run_post_failure({}, RuntimeError("upstream"), UserAPIKeyAuth(), None)
    with pytest.raises(PermissionError):
        await hooks.run_pre_call(UserAPIKeyAuth(), {"model": "m"}, "completion")
    method = "async_post_call_failure_hook"
    assert dict(hooks.runs) == {
        (f"Slow.{method}", "ran"): 1,
        (f"Raising.{method}", "failed"): 1,
        (f"Hanging.{method}", "timed_out"): 1,
        ("Rejecting.async_pre_call_hook", "raised"): 1,
    }
    assert abs(hooks.durations[f"Slow.{method}"].sum - 2.0) < 1e-6
    assert abs(hooks.durations[f"Hanging.{method}"].sum - 5.0) < 1e-6
    assert hooks.failures[f"Raising.{method}"] == 1 and hooks.failures[f"Hanging.{method}"] == 1

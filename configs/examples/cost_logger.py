"""Example hook: log what every call cost, and keep running totals per model group.

Attach with `[hooks] callbacks = ["cost_logger:CostLogger"]` (this folder is importable
because it holds the config that names it).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from gateway_trio.hooks import CustomLogger

log = logging.getLogger("gateway.examples.cost")


class CostLogger(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.total_by_group: dict[str, float] = defaultdict(float)
        self.calls = 0

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        cost = kwargs.get("response_cost") or 0.0
        group = kwargs.get("model_group") or kwargs["model"]
        self.total_by_group[group] += cost
        self.calls += 1
        log.info("call %s on %s cost $%.6f (total $%.6f)", kwargs["litellm_call_id"], group, cost, self.total_by_group[group])

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        log.info("call %s failed: %s", kwargs["litellm_call_id"], kwargs.get("exception"))

"""`gateway-trio import-litellm`: a LiteLLM proxy config (YAML) turned into our TOML.

What has an equivalent is converted (models, router and litellm settings, the master key and
database, callbacks named as `module.object`, guardrails, pass-through endpoints); what does
not (providers we do not speak, LiteLLM's built-in integrations) is left out and reported.
`os.environ/NAME` references are kept as they are.  The YAML is read with `safe_load`, so
nothing in it is ever constructed or run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gateway_trio.adapters import PROVIDERS
from gateway_trio.guardrails.builtin import BUILTINS

STRATEGIES = {
    "simple-shuffle": "simple-shuffle",
    "least-busy": "least-busy",
    "usage-based-routing": "usage-based",
    "usage-based-routing-v2": "usage-based",
    "latency-based-routing": "latency-based",
    "cost-based-routing": "cost-based",
}
PROVIDER_ALIASES = {"text-completion-openai": "openai", "openai_like": "openai", "custom_openai": "openai"}
MODEL_PARAMS = {
    "api_base": "api_base", "api_key": "api_key", "api_version": "api_version", "rpm": "rpm", "tpm": "tpm",
    "weight": "weight", "timeout": "timeout_s", "stream_timeout": "stream_timeout_s",
    "num_retries": "num_retries", "max_retries": "num_retries", "max_parallel_requests": "max_parallel_requests",
    "mock_response": "mock_response", "extra_headers": "headers", "headers": "headers", "guardrails": "guardrails",
}
INFO_KEYS = ("id", "mode", "input_cost_per_token", "output_cost_per_token", "max_input_tokens", "max_output_tokens")
MODES = {"chat", "completion", "embedding", "responses", "audio_transcription", "moderation"}


@dataclass
class Conversion:
    config: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def skip(self, what: str) -> None:
        self.skipped.append(what)


def object_name(dotted: str) -> str | None:
    """LiteLLM's `module.object` as our `module:object`; None for built-in integration names."""
    if not isinstance(dotted, str) or "." not in dotted:
        return None
    module, _, attribute = dotted.rpartition(".")
    return f"{module}:{attribute}"


def convert(document: dict[str, Any]) -> Conversion:
    out = Conversion()
    general = document.get("general_settings") or {}
    router_settings = document.get("router_settings") or {}
    litellm_settings = document.get("litellm_settings") or {}

    server: dict[str, Any] = {}
    if general.get("master_key") is not None:  # an empty one is refused by validation, not dropped (no auth)
        server["master_key"] = general["master_key"]
    if general.get("max_request_size_mb"):
        server["max_request_mb"] = general["max_request_size_mb"]
    if server:
        out.config["server"] = server
    if general.get("database_url"):
        out.config["database"] = {"url": general["database_url"]}

    redis = _redis(router_settings, out)
    if redis:
        out.config["redis"] = redis
    router = _router(router_settings, litellm_settings, out)
    if router:
        out.config["router"] = router
    hooks = _hooks(litellm_settings, out)
    if hooks:
        out.config["hooks"] = hooks

    guardrail_names: set[str] = set()
    guardrails = [g for g in (_guardrail(item, out) for item in document.get("guardrails") or []) if g]
    guardrail_names.update(g["name"] for g in guardrails)
    models = [m for m in (_model(item, guardrail_names, out) for item in document.get("model_list") or []) if m]
    if models:
        out.config["models"] = models
    if guardrails:
        out.config["guardrails"] = guardrails
    routes = [_pass_through(item) for item in general.get("pass_through_endpoints") or [] if isinstance(item, dict)]
    if routes:
        out.config["pass_through"] = routes
    return out


def _router(router: dict[str, Any], settings: dict[str, Any], out: Conversion) -> dict[str, Any]:
    result: dict[str, Any] = {}
    strategy = router.get("routing_strategy")
    if strategy:
        if strategy in STRATEGIES:
            result["strategy"] = STRATEGIES[strategy]
        else:
            out.skip(f"router_settings.routing_strategy {strategy!r} (kept simple-shuffle)")
    for source, name in (("num_retries", "num_retries"), ("timeout", "timeout_s"), ("allowed_fails", "allowed_fails"),
                         ("cooldown_time", "cooldown_s"), ("stream_timeout", "stream_timeout_s")):
        for section in (settings, router):  # router_settings win, as in LiteLLM
            if section.get(source) is not None:
                result[name] = section[source]
    if settings.get("request_timeout") is not None and "timeout_s" not in result:
        result["timeout_s"] = settings["request_timeout"]
    for name in ("fallbacks", "context_window_fallbacks"):
        merged: dict[str, list[str]] = {}
        for section in (settings, router):
            for entry in section.get(name) or []:
                if isinstance(entry, dict):
                    merged.update({k: list(v) if isinstance(v, list) else [v] for k, v in entry.items()})
        if merged:
            result[name] = merged
    aliases = router.get("model_group_alias") or {}
    if aliases:
        result["aliases"] = {k: v["model"] if isinstance(v, dict) else v for k, v in aliases.items()}
    if router.get("enable_pre_call_checks") is not None:
        result["pre_call_checks"] = bool(router["enable_pre_call_checks"])
    return result


def _redis(router: dict[str, Any], out: Conversion) -> dict[str, Any]:
    """LiteLLM's `router_settings.redis_url` (or host/port/password) as `[redis] url`."""
    if router.get("redis_url"):
        return {"url": router["redis_url"]}
    host = router.get("redis_host")
    if not host:
        return {}
    port, password = router.get("redis_port") or 6379, router.get("redis_password")
    parts = [str(host), str(port), str(password or "")]
    if any(part.startswith("os.environ/") for part in parts):
        out.skip("router_settings.redis_host/port/password from the environment (set [redis] url = "
                 "\"os.environ/REDIS_URL\" instead)")
        return {}
    auth = f":{quote(str(password), safe='')}@" if password else ""
    return {"url": f"redis://{auth}{host}:{port}/0"}


def _hooks(settings: dict[str, Any], out: Conversion) -> dict[str, Any]:
    hooks: dict[str, Any] = {}
    for source, name in (("callbacks", "callbacks"), ("success_callback", "success_callback"),
                         ("failure_callback", "failure_callback"), ("input_callback", "input_callback")):
        names = []
        for entry in settings.get(source) or []:
            converted = object_name(entry)
            if converted is None:
                out.skip(f"litellm_settings.{source}: built-in integration {entry!r}")
            else:
                names.append(converted)
        if names:
            hooks[name] = names
    return hooks


def _model(item: dict[str, Any], guardrails: set[str], out: Conversion) -> dict[str, Any] | None:
    name = item.get("model_name")
    params = item.get("litellm_params") or {}
    model = params.get("model")
    if not name or not isinstance(model, str):
        out.skip(f"model_list entry without model_name/litellm_params.model: {name!r}")
        return None
    provider, sep, rest = model.partition("/")
    if sep and provider in PROVIDER_ALIASES:
        model = f"{PROVIDER_ALIASES[provider]}/{rest}"
    elif sep and (provider not in PROVIDERS or provider == "pass_through"):
        out.skip(f"model {name!r}: provider {provider!r} is not supported")
        return None
    result: dict[str, Any] = {"name": name, "model": model}
    for source, target in MODEL_PARAMS.items():
        if params.get(source) is not None and target not in result:
            result[target] = params[source]
    if "guardrails" in result:
        unknown = [g for g in result["guardrails"] if g not in guardrails]
        if unknown:
            out.skip(f"model {name!r}: unknown guardrails {unknown}")
            result["guardrails"] = [g for g in result["guardrails"] if g in guardrails]
    info = {k: v for k, v in (item.get("model_info") or {}).items() if k in INFO_KEYS and v is not None}
    if info.get("mode") not in (None, *MODES):
        out.skip(f"model {name!r}: model_info.mode {info['mode']!r}")
        info.pop("mode")
    if info:
        result["info"] = info
    return result


def _guardrail(item: dict[str, Any], out: Conversion) -> dict[str, Any] | None:
    name = item.get("guardrail_name")
    params = dict(item.get("litellm_params") or {})
    kind = params.pop("guardrail", None)
    if not name or not kind:
        out.skip(f"guardrail without guardrail_name/litellm_params.guardrail: {name!r}")
        return None
    if kind not in BUILTINS:
        converted = object_name(kind)
        if converted is None:
            out.skip(f"guardrail {name!r}: LiteLLM integration {kind!r} has no equivalent here")
            return None
        kind = converted
    result: dict[str, Any] = {"name": name, "guardrail": kind}
    for source in ("mode", "default_on"):
        if source in params:
            result[source] = params.pop(source)
    if params:
        result["params"] = params
    return result


def _pass_through(item: dict[str, Any]) -> dict[str, Any]:
    route = {"path": item.get("path"), "target": item.get("target")}
    if item.get("headers"):
        route["headers"] = item["headers"]
    if item.get("forward_headers") is not None:
        route["forward_headers"] = bool(item["forward_headers"])
    return route

"""`gateway-trio import-litellm`: a LiteLLM proxy config (YAML) turned into our TOML.

Every key of the input gets a fate (see `fates`): converted where this gateway has the
feature (models, router and litellm settings, the master key and database, callbacks named
as `module.object`, guardrails, pass-through endpoints, `drop_params`, `model_info.base_model`
as prices), reported as unsupported where it has none (caching, tag and region routing,
LiteLLM's integrations, providers we do not speak), or reported as dropped where it is not
needed here.  `os.environ/NAME` references are kept as they are.  The YAML is read with
`safe_load`, so nothing in it is ever constructed or run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway_trio.config import PROVIDERS
from gateway_trio.guardrails.builtin import BUILTINS
from gateway_trio.litellm.fates import Conversion, join
from gateway_trio.spend.costs import listed_price

STRATEGIES = {
    "simple-shuffle": "simple-shuffle",
    "least-busy": "least-busy",
    "usage-based-routing": "usage-based",
    "usage-based-routing-v2": "usage-based",
    "latency-based-routing": "latency-based",
    "cost-based-routing": "cost-based",
}
# LiteLLM providers that are OpenAI's API under another name: (our provider, deployment mode).
# `text-completion-openai` serves the legacy /v1/completions: its deployments keep that mode.
PROVIDER_ALIASES = {
    "text-completion-openai": ("openai", "completion"),
    "openai_like": ("openai", None),
    "custom_openai": ("openai", None),
}
# litellm_params -> our deployment key
MODEL_PARAMS = {
    "api_base": "api_base",
    "api_key": "api_key",
    "api_version": "api_version",
    "rpm": "rpm",
    "tpm": "tpm",
    "weight": "weight",
    "timeout": "timeout_s",
    "stream_timeout": "stream_timeout_s",
    "num_retries": "num_retries",
    "max_retries": "num_retries",
    "max_parallel_requests": "max_parallel_requests",
    "mock_response": "mock_response",
}
PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token", "output_cost_per_image", "input_cost_per_pixel")
INFO_KEYS = ("id", "mode", "max_input_tokens", "max_output_tokens", *PRICE_KEYS)
MODES = {"chat", "completion", "embedding", "responses", "audio_transcription", "moderation", "image_generation"}
# What LiteLLM adds to every call of a deployment; this gateway sends the client's body as it is.
DEFAULT_CALL_PARAMS = {
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "n",
    "logprobs",
    "user",
    "reasoning_effort",
}
# (litellm_settings / router_settings key, our [router] key)
ROUTER_KEYS = (
    ("num_retries", "num_retries"),
    ("timeout", "timeout_s"),
    ("allowed_fails", "allowed_fails"),
    ("cooldown_time", "cooldown_s"),
    ("stream_timeout", "stream_timeout_s"),
    ("retry_after", "retry_backoff_s"),
)

# Keys this gateway has no counterpart for, with the reason the operator is told.
UNSUPPORTED = {
    "include": "the importer reads one file: merge the included files into it first",
    "litellm_settings.cache": "no response cache yet ([cache] comes with SPEC §12)",
    "litellm_settings.cache_params": "no response cache yet ([cache] comes with SPEC §12)",
    "litellm_settings.default_team_settings": "per-team settings go on [[teams]] or the /team routes; "
    "per-team callbacks have no equivalent",
    "litellm_settings.json_logs": "no JSON log format on this branch; logs are text",
    "litellm_settings.max_parallel_requests": "no proxy-wide parallel limit: set it per deployment or key",
    "litellm_settings.turn_off_message_logging": "hooks always see the messages",
    "litellm_settings.modify_params": "requests are sent as the client made them",
    "litellm_settings.max_budget": "no proxy-wide budget: budgets are per key, team, user or end-user",
    "litellm_settings.budget_duration": "no proxy-wide budget: budgets are per key, team, user or end-user",
    "litellm_settings.guardrails": "LiteLLM's old guardrail form: declare them under the top-level `guardrails`",
    "general_settings.store_model_in_db": "models come from the config file only (reload to change them)",
    "general_settings.alerting": "no alerting integrations",
    "general_settings.alerting_threshold": "no alerting integrations",
    "general_settings.database_connection_pool_limit": "the pool is sized by the gateway",
    "general_settings.disable_spend_logs": "every call leaves its spend record",
    "general_settings.background_health_checks": "no background health checks: GET /health probes on demand",
    "general_settings.health_check_interval": "no background health checks: GET /health probes on demand",
    "general_settings.custom_auth": "no custom auth hook: keys are the gateway's own",
    "general_settings.allowed_routes": "route permissions are per key (allowed_routes on [[keys]])",
    "general_settings.key_management_settings": "keys live in the gateway's database",
    "general_settings.global_max_parallel_requests": "no proxy-wide parallel limit: set it per deployment or key",
    "general_settings.max_parallel_requests": "no proxy-wide parallel limit: set it per deployment or key",
    "router_settings.enable_tag_filtering": "no tag-based routing here",
    "router_settings.routing_strategy_args": "strategies take no arguments here",
    "router_settings.default_fallbacks": "fallbacks are per model group here",
}
DROPPED = {
    "litellm_settings.set_verbose": "logging detail is `gateway-trio serve --log-level DEBUG`",
    "litellm_settings.redact_user_api_key_info": "always so here: hooks and logs see key hashes only",
    "general_settings.allow_requests_on_db_unavailable": "always so here: known keys keep working from the cache",
}
PASS_THROUGH_UNSUPPORTED = {
    "include_subpath": "a pass-through route here matches its exact path only",
    "auth": "no per-route auth setting",
    "cost_per_request": "pass-through calls are not priced",
}
BUILTIN_CALLBACKS_DROPPED = {"prometheus": "the gateway always serves /metrics (Prometheus)"}


def object_name(dotted: Any) -> str | None:
    """LiteLLM's `module.object` as our `module:object`; None for built-in integration names."""
    if not isinstance(dotted, str) or "." not in dotted:
        return None
    module, _, attribute = dotted.rpartition(".")
    return f"{module}:{attribute}" if module and attribute else None


def _section(document: dict[str, Any], name: str, out: Conversion) -> dict[str, Any]:
    value = document.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        out.unsupported(name, "is not a mapping")
        return {}
    return value


def convert(document: dict[str, Any]) -> Conversion:
    out = Conversion()
    general = _section(document, "general_settings", out)
    router_settings = _section(document, "router_settings", out)
    litellm_settings = _section(document, "litellm_settings", out)
    for path, reason in UNSUPPORTED.items():
        if _has(document, path):
            out.unsupported(path, reason)
    for path, reason in DROPPED.items():
        if _has(document, path):
            out.dropped(path, reason)

    _server(general, out)
    redis = _redis(router_settings, out)
    if redis:
        out.config["redis"] = redis
    router = _router(router_settings, litellm_settings, out)
    if router:
        out.config["router"] = router
    hooks = _hooks(litellm_settings, out)
    if hooks:
        out.config["hooks"] = hooks

    guardrails = [
        g for g in (_guardrail(i, item, out) for i, item in enumerate(_list(document, "guardrails", out))) if g
    ]
    names = {g["name"] for g in guardrails}
    models = [
        m for m in (_model(i, item, names, out) for i, item in enumerate(_list(document, "model_list", out))) if m
    ]
    if models:
        out.config["models"] = models
    if guardrails:
        out.config["guardrails"] = guardrails
    routes = [
        r
        for r in (
            _pass_through(i, item, out)
            for i, item in enumerate(_list(general, "pass_through_endpoints", out, "general_settings"))
        )
        if r
    ]
    if routes:
        out.config["pass_through"] = routes
    variables = document.get("environment_variables")
    for name in variables if isinstance(variables, dict) else ():
        out.dropped(
            join("environment_variables", str(name)),
            f"set {name} in the gateway's environment (values are not carried over: they may be secrets)",
        )
    out.account_for_the_rest(document)
    return out


def _has(document: dict[str, Any], path: str) -> bool:
    """Whether `path` (`key` or `section.key`) is in `document`."""
    section, _, key = path.rpartition(".")
    table = document.get(section) if section else document
    return isinstance(table, dict) and key in table


def _list(section: dict[str, Any], name: str, out: Conversion, at: str = "") -> list[Any]:
    value = section.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        out.unsupported(join(at, name), "is not a list")
        return []
    return value


def _server(general: dict[str, Any], out: Conversion) -> None:
    server: dict[str, Any] = {}
    if general.get("master_key") is not None:  # an empty one is refused by validation, not dropped (no auth)
        server["master_key"] = general["master_key"]
        out.converted("general_settings.master_key")
    if general.get("max_request_size_mb") is not None:
        server["max_request_mb"] = general["max_request_size_mb"]
        out.converted("general_settings.max_request_size_mb")
    if server:
        out.config["server"] = server
    database: dict[str, Any] = {}
    if general.get("database_url"):
        database["url"] = general["database_url"]
        out.converted("general_settings.database_url")
    if general.get("proxy_batch_write_at") is not None:  # seconds between spend writes, as ours
        database["flush_interval_s"] = general["proxy_batch_write_at"]
        out.converted("general_settings.proxy_batch_write_at")
    if database:
        out.config["database"] = database


def _router(router: dict[str, Any], settings: dict[str, Any], out: Conversion) -> dict[str, Any]:
    result: dict[str, Any] = {}
    strategy = router.get("routing_strategy")
    if strategy is not None:
        if strategy in STRATEGIES:
            result["strategy"] = STRATEGIES[strategy]
            out.converted("router_settings.routing_strategy")
        else:
            out.unsupported("router_settings.routing_strategy", f"strategy {strategy!r} (kept simple-shuffle)")
    for source, name in ROUTER_KEYS:
        if router.get(source) is not None:  # router_settings win, as in LiteLLM
            result[name] = router[source]
            out.converted(f"router_settings.{source}")
            if settings.get(source) is not None:
                out.dropped(f"litellm_settings.{source}", f"router_settings.{source} wins, as in LiteLLM")
        elif settings.get(source) is not None:
            result[name] = settings[source]
            out.converted(f"litellm_settings.{source}")
    if settings.get("request_timeout") is not None:
        if "timeout_s" in result:
            out.dropped("litellm_settings.request_timeout", "a `timeout` setting wins")
        else:
            result["timeout_s"] = settings["request_timeout"]
            out.converted("litellm_settings.request_timeout")
    if settings.get("drop_params") is not None:
        result["drop_params"] = bool(settings["drop_params"])
        out.converted("litellm_settings.drop_params")
    for name in ("fallbacks", "context_window_fallbacks"):
        merged: dict[str, list[str]] = {}
        for label, section in (("litellm_settings", settings), ("router_settings", router)):
            entries = section.get(name)
            if entries is None:
                continue
            for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                path = join(join(label, name), index) if isinstance(entries, list) else join(label, name)
                if isinstance(entry, dict):
                    merged.update({str(k): list(v) if isinstance(v, list) else [v] for k, v in entry.items()})
                    out.converted(path)
                else:
                    out.unsupported(path, "is not a {group: [fallbacks]} mapping")
        if merged:
            result[name] = merged
    aliases = router.get("model_group_alias")
    if isinstance(aliases, dict):
        result["aliases"] = {k: v["model"] if isinstance(v, dict) else v for k, v in aliases.items()}
        out.converted("router_settings.model_group_alias")
    if router.get("enable_pre_call_checks") is not None:
        result["pre_call_checks"] = bool(router["enable_pre_call_checks"])
        out.converted("router_settings.enable_pre_call_checks")
    return result


REDIS_PARTS = ("redis_host", "redis_port", "redis_password")


def _redis(router: dict[str, Any], out: Conversion) -> dict[str, Any]:
    """LiteLLM's `router_settings.redis_url` (or host/port/password) as `[redis] url`."""
    given = [name for name in REDIS_PARTS if router.get(name) is not None]
    if router.get("redis_url"):
        out.converted("router_settings.redis_url")
        for name in given:
            out.dropped(f"router_settings.{name}", "router_settings.redis_url wins")
        return {"url": router["redis_url"]}
    host = router.get("redis_host")
    if not host:
        for name in given:
            out.unsupported(f"router_settings.{name}", "no redis_host to go with it")
        return {}
    port, password = router.get("redis_port") or 6379, router.get("redis_password")
    parts = [str(host), str(port), str(password or "")]
    if any(part.startswith("os.environ/") for part in parts):
        for name in given:
            out.unsupported(f"router_settings.{name}", 'from the environment: set [redis] url = "os.environ/REDIS_URL"')
        return {}
    for name in given:
        out.converted(f"router_settings.{name}")
    auth = f":{quote(str(password), safe='')}@" if password else ""
    return {"url": f"redis://{auth}{host}:{port}/0"}


def _hooks(settings: dict[str, Any], out: Conversion) -> dict[str, Any]:
    """Callbacks named `module.object`, given as one string or a list of them."""
    hooks: dict[str, Any] = {}
    for name in ("callbacks", "success_callback", "failure_callback", "input_callback"):
        value = settings.get(name)
        if value is None:
            continue
        at = f"litellm_settings.{name}"
        entries = (
            [(at, value)]
            if isinstance(value, str)
            else ([(join(at, i), item) for i, item in enumerate(value)] if isinstance(value, list) else [])
        )
        if not entries:
            out.unsupported(at, "is neither a name nor a list of names")
        names = []
        for path, entry in entries:
            converted = object_name(entry)
            if converted is not None:
                names.append(converted)
                out.converted(path)
            elif entry in BUILTIN_CALLBACKS_DROPPED:
                out.dropped(path, BUILTIN_CALLBACKS_DROPPED[entry])
            else:
                out.unsupported(path, f"LiteLLM's built-in integration {entry!r} has no equivalent here")
        if names:
            hooks[name] = names
    return hooks


def _model(index: int, item: Any, guardrails: set[str], out: Conversion) -> dict[str, Any] | None:
    at = join("model_list", index)
    params = item.get("litellm_params") if isinstance(item, dict) else None
    params = params if isinstance(params, dict) else {}
    name = item.get("model_name") if isinstance(item, dict) else None
    model = params.get("model")
    if not isinstance(name, str) or not name or not isinstance(model, str) or not model:
        out.unsupported(at, f"entry without model_name and litellm_params.model: {name!r}")
        return None
    mode = None
    provider, sep, rest = model.partition("/")
    if sep and provider in PROVIDER_ALIASES:
        ours, mode = PROVIDER_ALIASES[provider]
        model = f"{ours}/{rest}"
        served = " (served on /v1/completions)" if mode == "completion" else ""
        out.converted(f"{at}.litellm_params.model", f"{provider}/{rest} -> {model}, mode {mode or 'chat'}{served}")
    elif not sep and model.startswith("claude"):  # LiteLLM infers anthropic; unprefixed means openai here
        model = f"anthropic/{model}"
        out.converted(f"{at}.litellm_params.model", f"-> {model}")
    elif sep and provider not in PROVIDERS:
        out.unsupported(at, f"model {name!r}: provider {provider!r} is not supported")
        return None
    else:
        out.converted(f"{at}.litellm_params.model")
    out.converted(f"{at}.model_name")
    result: dict[str, Any] = {"name": name, "model": model}
    info: dict[str, Any] = {"mode": mode} if mode else {}
    _model_params(at, params, result, info, guardrails, out)
    _model_info(at, item.get("model_info"), info, out)
    if info:
        result["info"] = info
    return result


def _model_params(
    at: str, params: dict[str, Any], result: dict[str, Any], info: dict[str, Any], guardrails: set[str], out: Conversion
) -> None:
    at = f"{at}.litellm_params"
    headers: dict[str, Any] = {}
    for key, value in params.items():
        path = join(at, str(key))
        if key == "model" or value is None:
            if value is None:
                out.dropped(path, "is null")
            continue
        if key in MODEL_PARAMS:
            target = MODEL_PARAMS[key]
            if target in result:
                out.dropped(path, f"another key already set {target}")
            else:
                result[target] = value
                out.converted(path)
        elif key in ("extra_headers", "headers") and isinstance(value, dict):
            headers.update(value)
            out.converted(path)
        elif key == "organization":
            headers["OpenAI-Organization"] = value
            out.converted(path, "as the OpenAI-Organization header")
        elif key in PRICE_KEYS:
            info[key] = value
            out.converted(path, f"as [models.info] {key}")
        elif key == "guardrails" and isinstance(value, list):
            known = []
            for i, guardrail in enumerate(value):
                if guardrail in guardrails:
                    known.append(guardrail)
                    out.converted(join(path, i))
                else:
                    out.unsupported(join(path, i), f"guardrail {guardrail!r} is not one the import converted")
            if known:
                result["guardrails"] = known
        elif key == "region_name":
            out.unsupported(path, "deployments are not routed by region here (no allowed_model_region routing)")
        elif key == "tags":
            out.unsupported(path, "no tag-based routing here: deployments carry no tags")
        elif key == "drop_params":
            out.unsupported(path, "drop_params is set for the whole router here ([router] drop_params)")
        elif key in DEFAULT_CALL_PARAMS:
            out.unsupported(path, "no default request parameters: calls carry what the client sent")
    if headers:
        result["headers"] = headers


def _model_info(at: str, raw: Any, info: dict[str, Any], out: Conversion) -> None:
    at = f"{at}.model_info"
    if raw is None:
        return
    if not isinstance(raw, dict):
        out.unsupported(at, "is not a mapping")
        return
    for key, value in raw.items():
        path = join(at, str(key))
        if key in INFO_KEYS and value is not None:
            if key == "mode" and value not in MODES:
                out.unsupported(path, f"mode {value!r} is not served here")
            elif key in PRICE_KEYS and key in info:
                out.dropped(path, f"litellm_params.{key} already set it")
            else:
                info[key] = value
                out.converted(path)
        elif key == "max_tokens" and value is not None:  # LiteLLM's older name for the output bound
            if "max_output_tokens" in raw:
                out.dropped(path, "max_output_tokens is given too")
            else:
                info["max_output_tokens"] = value
                out.converted(path, "as max_output_tokens")
        elif isinstance(key, str) and key.startswith("supports_"):
            out.dropped(path, "capability flags are informational; the upstream decides")
        elif key == "access_groups":
            out.unsupported(path, "no model access groups: list the models on the key or team")
    base = raw.get("base_model")
    if base is not None:
        _base_model(join(at, "base_model"), base, info, out)


def _base_model(path: str, base: Any, info: dict[str, Any], out: Conversion) -> None:
    """LiteLLM prices a deployment by its base model: here that is its token prices."""
    if "input_cost_per_token" in info or "output_cost_per_token" in info:
        out.dropped(path, "the deployment's own prices win")
        return
    prices = listed_price(base) if isinstance(base, str) else None
    if prices is None:
        out.unsupported(path, f"no listed price for {base!r}: set input_cost_per_token / output_cost_per_token")
        return
    info["input_cost_per_token"], info["output_cost_per_token"] = prices
    out.converted(path, f"as the listed prices of {base}")


def _guardrail(index: int, item: Any, out: Conversion) -> dict[str, Any] | None:
    at = join("guardrails", index)
    name = item.get("guardrail_name") if isinstance(item, dict) else None
    raw = item.get("litellm_params") if isinstance(item, dict) else None
    params = dict(raw) if isinstance(raw, dict) else {}
    kind = params.pop("guardrail", None)
    if not name or not kind:
        out.unsupported(at, f"guardrail without guardrail_name and litellm_params.guardrail: {name!r}")
        return None
    if kind not in BUILTINS:
        converted = object_name(kind)
        if converted is None:
            out.unsupported(at, f"guardrail {name!r}: LiteLLM integration {kind!r} has no equivalent here")
            return None
        kind = converted
    out.converted(f"{at}.guardrail_name")
    out.converted(f"{at}.litellm_params.guardrail")
    result: dict[str, Any] = {"name": name, "guardrail": kind}
    for source in ("mode", "default_on"):
        if source in params:
            result[source] = params.pop(source)
            out.converted(f"{at}.litellm_params.{source}")
    for key in params:
        out.converted(f"{at}.litellm_params.{key}")  # a param of the guardrail
    if params:
        result["params"] = params
    if "guardrail_info" in item:
        out.dropped(f"{at}.guardrail_info", "informational")
    return result


def _pass_through(index: int, item: Any, out: Conversion) -> dict[str, Any] | None:
    at = join("general_settings.pass_through_endpoints", index)
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not isinstance(item.get("target"), str):
        out.unsupported(at, "endpoint without a path and a target")
        return None
    route: dict[str, Any] = {"path": item["path"], "target": item["target"]}
    out.converted(f"{at}.path")
    out.converted(f"{at}.target")
    if isinstance(item.get("headers"), dict):
        route["headers"] = item["headers"]
        out.converted(f"{at}.headers")
    if item.get("forward_headers") is not None:
        route["forward_headers"] = bool(item["forward_headers"])
        out.converted(f"{at}.forward_headers")
    for key, reason in PASS_THROUGH_UNSUPPORTED.items():
        if key in item:
            out.unsupported(f"{at}.{key}", reason)
    return route

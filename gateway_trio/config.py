"""The TOML config, validated into typed objects (SPEC §3).

Loading is strict: unknown keys and wrong types are errors that name the key and the file,
because a typo in a gateway config (say `fallback` for `fallbacks`) must not pass silently.
Strings of the form `os.environ/NAME` are read from the environment at load time.
Secrets are kept as `SecretStr` so that no repr, log line or error can print them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import tomli as tomllib
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

ENV_PREFIX = "os.environ/"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "gateway.toml"


class ConfigError(Exception):
    """A config that cannot be loaded; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _usable_secret(value: SecretStr) -> SecretStr:
    """A secret that is given must be one that can work.

    An empty key is not "no key": `os.environ/VAR` with VAR set but empty once turned the
    master key's authentication off.  Whitespace around a key (a secret file's newline) can
    never match a header value, and control characters cannot be sent in one.  Only leaving
    the key out means "none".  The message never repeats the value.
    """
    secret = value.get_secret_value()
    if not secret.strip():
        raise ValueError("is empty (an os.environ/ variable set to nothing?); leave the key out to mean none")
    if secret != secret.strip():
        raise ValueError("has leading or trailing whitespace (a newline from a secret file?)")
    if any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise ValueError("contains control characters")
    return value


# Every secret in the config: a `SecretStr` (no repr, log line or error prints it) that works.
Secret = Annotated[SecretStr, AfterValidator(_usable_secret)]


class ServerConfig(_Strict):
    """`[server]`.

    `master_key`: absent means no auth (a warning is logged at every start); empty is an error.
    `request_header_timeout_s`: from the first byte of a request until its head (request line
    and headers) is complete; a client dripping its headers is disconnected after it.  An idle
    keep-alive connection (no byte sent yet) is not bound by it.
    `request_body_timeout_s`: from the end of the head until the last byte of the body; after
    it the request is answered 408.  A body declared larger than `max_request_mb` is answered
    413 before any of it is read.
    """

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    master_key: Secret | None = None
    max_request_mb: float = Field(16, gt=0)
    graceful_timeout_s: float = Field(30, ge=0)
    request_header_timeout_s: float = Field(10, gt=0)
    request_body_timeout_s: float = Field(60, gt=0)
    send_timeout_s: float = Field(60, gt=0)  # a client that takes none of its answer this long is dropped
    event_loop_stall_ms: float = Field(250, ge=0)  # a task holding the loop this long is logged; 0: off
    # Signs response ids (previous_response_id); every instance of a fleet needs the same one.
    response_id_secret: Secret | None = None
    # Also send every x-gateway-* answer header under its x-litellm-* name (LiteLLM's dashboards
    # and tests read those).
    litellm_headers: bool = False
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True  # one line per call (logger `gateway_trio.access`, INFO)
    metrics_public: bool = False  # true: /metrics without the master key (a scraper on a trusted network)

    @field_validator("response_id_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters: it keeps clients from forging response ids")
        return secret


class MetricsConfig(_Strict):
    """`[metrics]`: what `/metrics` may label its series by.

    `end_user_labels`: the request counter also by end-user id (the body's `user`): one series
    per customer, so only for a bounded set of them.  `max_key_series`: at most this many
    (key_alias, team) pairs in the per-key budget and rate-limit headroom gauges, the nearest
    their limits first.
    """

    end_user_labels: bool = False
    max_key_series: int = Field(100, ge=0)


class DatabaseConfig(_Strict):
    url: str = "sqlite:///gateway.db"
    flush_interval_s: float = Field(1.0, gt=0)
    # PostgreSQL only: connections per process (workers x instances x pool_size must fit the
    # server's max_connections), and how long a statement waits for one before failing.
    pool_size: int = Field(10, ge=1, le=1000)
    pool_timeout_s: float = Field(5.0, gt=0)
    # Where spend records go while the database is away and the in-memory queue is full (a
    # JSON-lines file per process, replayed once the database answers again).
    spool_dir: str = "spend-spool"
    queue_size: int = Field(10_000, ge=1)


class RedisConfig(_Strict):
    """`[redis]`: state shared by workers and instances (SPEC §10).  Absent: per-process state.

    `on_failure`: with Redis away, "local" serves with per-instance limits, "closed" answers 503
    to the calls that need a limit.  `timeout_s` bounds one round trip (a batch of admissions);
    `connect_timeout_s` one connection attempt.
    """

    url: Secret  # may hold a password: kept secret, never logged
    key_prefix: str = Field("gw:", max_length=64)
    on_failure: Literal["local", "closed"] = "local"
    timeout_s: float = Field(0.5, gt=0, le=30)
    connect_timeout_s: float = Field(1.0, gt=0, le=30)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value()
        if text.startswith(ENV_PREFIX):  # unresolved (import-litellm's check, resolve_env=False)
            return url
        if not text.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")  # never the value: it may hold a password
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises on a port that is not one
        except ValueError:
            raise ValueError("is not a valid URL (host, port)") from None
        if not parts.hostname:
            raise ValueError("names no host")
        return url

    @field_validator("key_prefix")
    @classmethod
    def _no_hash_tag(cls, prefix: str) -> str:
        if "{" in prefix or "}" in prefix:
            raise ValueError("may not contain '{' or '}': the gateway adds its own hash tags")
        return prefix


Strategy = Literal["simple-shuffle", "least-busy", "usage-based", "latency-based", "cost-based"]


class RouterConfig(_Strict):
    strategy: Strategy = "simple-shuffle"
    num_retries: int = Field(2, ge=0)
    timeout_s: float = Field(600, gt=0)
    stream_timeout_s: float = Field(60, gt=0)
    allowed_fails: int = Field(3, ge=1)
    cooldown_s: float = Field(30, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0)
    fallbacks: dict[str, list[str]] = {}
    context_window_fallbacks: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    pre_call_checks: bool = False
    # A parameter the chosen provider cannot honour (`seed` to Anthropic, say) is a 400 naming
    # it; true: it is dropped instead and named in the spend record.  A body's own
    # `drop_params` decides for its call.
    drop_params: bool = False
    # The largest upstream reply read whole, and the largest single event of a stream (a
    # Responses stream's last event carries the whole reply); past it the call is a 502.
    # It bounds the memory one hostile or broken upstream can make a call hold.
    max_response_mb: float = Field(64, gt=0)
    # `/health` gives each probe this long; the background check too (at most its interval).
    health_check_timeout_s: float = Field(10, gt=0)
    # Probe every deployment this often in the background, feeding the router (0: off).
    health_check_interval_s: float = Field(0, ge=0)

    @property
    def max_response_bytes(self) -> int:
        return int(self.max_response_mb * (1 << 20))


# The vendors a deployment's `model` may name (`anthropic/claude-...`); `adapters` serves each.
# OpenAI-compatible servers also answer to LiteLLM's names for them, so configs port as-is.
PROVIDERS = frozenset({"openai", "azure", "anthropic", "mock", "hosted_vllm", "lm_studio", "ollama_chat"})
THROUGH_CHAT_ONLY = frozenset({"anthropic", "mock"})  # no `/v1/responses` of their own

Mode = Literal["chat", "completion", "embedding", "responses", "audio_transcription", "moderation", "image_generation"]


class ModelInfo(_Strict):
    id: str | None = None
    mode: Mode = "chat"
    input_cost_per_token: float | None = Field(None, ge=0)
    output_cost_per_token: float | None = Field(None, ge=0)
    # Images are priced per image or per pixel (LiteLLM's names); token prices add to them.
    output_cost_per_image: float | None = Field(None, ge=0)
    input_cost_per_pixel: float | None = Field(None, ge=0)
    max_input_tokens: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    # false: an OpenAI-compatible server without `/v1/responses` (vLLM, Ollama...): the gateway
    # serves that route through its chat API and keeps the conversation for previous_response_id.
    responses_api: bool | None = None


class ModelConfig(_Strict):
    """One deployment. Entries sharing `name` form a model group."""

    name: str
    model: str
    api_base: str | None = None
    api_key: Secret | None = None
    api_version: str | None = None
    headers: dict[str, str] = {}
    mock_response: str | None = None
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    weight: float = Field(1, gt=0)
    timeout_s: float | None = Field(None, gt=0)
    stream_timeout_s: float | None = Field(None, gt=0)
    num_retries: int | None = Field(None, ge=0)
    max_parallel_requests: int = Field(100, ge=1)
    guardrails: list[str] = []
    info: ModelInfo = ModelInfo()

    @field_validator("model")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        provider = value.split("/", 1)[0] if "/" in value else "openai"
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r} (known: {', '.join(sorted(PROVIDERS))})")
        return value

    @field_validator("info")
    @classmethod
    def _responses_api_exists(cls, info: ModelInfo, context: ValidationInfo) -> ModelInfo:
        model = context.data.get("model") or ""
        provider = model.split("/", 1)[0] if "/" in model else "openai"
        if info.responses_api and provider in THROUGH_CHAT_ONLY:
            raise ValueError(f"responses_api: {provider} has no Responses API; /v1/responses is served through chat")
        return info


GuardrailMode = Literal["pre_call", "during_call", "post_call", "logging_only"]


class ResponsesConfig(_Strict):
    """`[responses]`: the conversation state the gateway keeps for deployments without a
    Responses API of their own, so `previous_response_id` works on every deployment.

    OpenAI keeps a stored response 30 days; so does the gateway by default.  A conversation
    whose stored items exceed `max_stored_kb` is not kept (its follow-up is told it is not
    found); past `max_stored` rows the oldest are pruned.
    """

    store: bool = True  # false: nothing is kept (a body's `store: false` does so per call)
    store_ttl_s: float = Field(30 * 24 * 3600, gt=0)
    max_stored_kb: float = Field(1024, gt=0)
    max_stored: int = Field(100_000, ge=1)

    @property
    def max_stored_bytes(self) -> int:
        return int(self.max_stored_kb * 1024)


class GuardrailConfig(_Strict):
    name: str
    guardrail: str
    mode: GuardrailMode | list[GuardrailMode] = "pre_call"
    default_on: bool = False
    fail_open: bool = False
    timeout_s: float = Field(10, gt=0)
    params: dict[str, Any] = {}


class HooksConfig(_Strict):
    callbacks: list[str] = []
    actors: list[str] = []
    input_callback: list[str] = []
    success_callback: list[str] = []
    failure_callback: list[str] = []
    timeout_s: float = Field(5, gt=0)

    @field_validator("callbacks", "actors", "input_callback", "success_callback", "failure_callback")
    @classmethod
    def _module_object(cls, names: list[str]) -> list[str]:
        for name in names:
            module, _, attr = name.partition(":")
            if not module or not attr:
                raise ValueError(f"{name!r} must be 'package.module:object'")
        return names


class PassThroughConfig(_Strict):
    path: str
    target: str
    headers: dict[str, str] = {}
    forward_headers: bool = False

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("must start with '/'")
        return path


# `budget_duration`'s grammar (SPEC §9): 30s, 10m, 1h, 1d, 7d, 30d, 1mo (calendar months).
DURATION = re.compile(r"[1-9][0-9]*(s|m|h|d|mo)")


def _duration(value: str | None) -> str | None:
    if value is not None and not DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration (30s, 10m, 1h, 1d, 7d, 30d, 1mo)")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Count = Annotated[int, Field(ge=0)]


class ModelBudgetConfig(_Strict):
    """One entry of a key's `model_max_budget` (LiteLLM's `BudgetConfig`)."""

    budget_limit: float = Field(ge=0)
    time_period: Duration | None = None


class TeamMemberConfig(_Strict):
    user_id: str | None = None
    user_email: str | None = None
    role: Literal["admin", "user"] = "user"

    def model_post_init(self, __context: Any) -> None:
        if self.user_id is None and self.user_email is None:
            raise ValueError("a team member needs user_id or user_email")


class KeyConfig(_Strict):
    """`[[keys]]`: a virtual key owned by the config (LiteLLM's `GenerateKeyRequest` field names).

    `key` is the secret, best as `os.environ/NAME`; only its sha256 is ever stored.  The admin
    routes refuse to change a config-owned key: change it here and reload.
    """

    key: Secret
    key_alias: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    models: list[str] = []
    aliases: dict[str, str] = {}
    max_budget: float | None = Field(None, ge=0)
    soft_budget: float | None = Field(None, ge=0)
    budget_duration: Duration | None = None
    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    model_max_budget: dict[str, ModelBudgetConfig] = {}
    model_rpm_limit: dict[str, Count] = {}
    model_tpm_limit: dict[str, Count] = {}
    metadata: dict[str, Any] = {}
    guardrails: list[str] = []
    tags: list[str] = []
    allowed_routes: list[str] = []
    blocked: bool = False

    @field_validator("key")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters: a short key can be guessed")
        return secret


class TeamConfig(_Strict):
    """`[[teams]]`: a team owned by the config (LiteLLM's `NewTeamRequest` field names)."""

    team_id: str = Field(min_length=1)
    team_alias: str | None = None
    models: list[str] = []
    max_budget: float | None = Field(None, ge=0)
    budget_duration: Duration | None = None
    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    max_parallel_requests: Count | None = None
    guardrails: list[str] = []
    metadata: dict[str, Any] = {}
    blocked: bool = False
    members_with_roles: list[TeamMemberConfig] = []


class OtelConfig(_Strict):
    """`[otel]`: OpenTelemetry traces over OTLP/HTTP (SPEC §11), off while `endpoint` is unset.

    Spans leave through a bounded queue to an exporting thread: a slow or absent collector
    costs dropped spans (counted in `/metrics`), never a wait on the event loop.
    """

    endpoint: str | None = None  # the collector's base URL (http://host:4318), or its full /v1/traces URL
    headers: dict[str, Secret] = {}  # sent with every export (a vendor's API key): secrets, never logged
    service_name: str = Field("gateway-trio", min_length=1)
    capture_content: bool = False  # true: prompts and answers go into span attributes
    sample_ratio: float = Field(1.0, ge=0, le=1)  # of the traces the gateway starts; a client's flag wins
    max_queue: int = Field(2048, ge=1)  # spans waiting for export; past it they are dropped and counted
    export_timeout_s: float = Field(10, gt=0)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s?#@]+(/[^\s?#@]*)?", value):
            # No user:password@ either: the exporter's log lines name the URL; credentials go in `headers`.
            raise ValueError("must be an http:// or https:// URL without credentials (put those in otel.headers)")
        return value


def _duplicates(values: list[Any]) -> list[str]:
    seen: set[Any] = set()
    return sorted({str(v) for v in values if v is not None and (v in seen or seen.add(v))})


class GatewayConfig(_Strict):
    server: ServerConfig = ServerConfig()
    metrics: MetricsConfig = MetricsConfig()
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig | None = None
    router: RouterConfig = RouterConfig()
    responses: ResponsesConfig = ResponsesConfig()
    models: list[ModelConfig] = []
    guardrails: list[GuardrailConfig] = []
    hooks: HooksConfig = HooksConfig()
    pass_through: list[PassThroughConfig] = []
    keys: list[KeyConfig] = []
    teams: list[TeamConfig] = []
    otel: OtelConfig = OtelConfig()
    source: str = Field("<memory>", exclude=True)

    @field_validator("guardrails")
    @classmethod
    def _unique_guardrails(cls, guardrails: list[GuardrailConfig]) -> list[GuardrailConfig]:
        names = [g.name for g in guardrails]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate guardrail names: {', '.join(duplicates)}")
        return guardrails

    def model_post_init(self, __context: Any) -> None:
        known = {g.name for g in self.guardrails}
        for index, model in enumerate(self.models):
            for name in model.guardrails:
                if name not in known:
                    raise ValueError(f"models[{index}].guardrails: unknown guardrail {name!r}")
        for section, entries in (("keys", self.keys), ("teams", self.teams)):
            for index, entry in enumerate(entries):
                for name in entry.guardrails:
                    if name not in known:
                        raise ValueError(f"{section}[{index}].guardrails: unknown guardrail {name!r}")
        for what, values in (
            ("keys: duplicate key_alias", [k.key_alias for k in self.keys]),
            ("teams: duplicate team_id", [t.team_id for t in self.teams]),
        ):
            if duplicates := _duplicates(values):
                raise ValueError(f"{what}: {', '.join(duplicates)}")
        secrets = [k.key.get_secret_value() for k in self.keys]
        if len(set(secrets)) != len(secrets):
            raise ValueError("keys: two entries have the same key")  # never which: that would show it
        if self.server.master_key is not None and self.server.master_key.get_secret_value() in secrets:
            raise ValueError("keys: a key is the same as server.master_key")
        groups = {m.name for m in self.models}
        for alias, target in self.router.aliases.items():
            if target not in groups:
                raise ValueError(f"router.aliases.{alias}: unknown model group {target!r}")


def _resolve_env(value: Any, path: str) -> Any:
    """Replace every `os.environ/NAME` string, naming the key when the variable is missing."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in os.environ:
            raise ConfigError(f"{path}: environment variable {name!r} is not set")
        return os.environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


# Keys that moved: a config that still has one is told where it went.
MOVED_KEYS = {"router.redis_url": "[redis] url"}


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in item["loc"]).replace(".[", "[")
        if item["type"] == "extra_forbidden" and key in MOVED_KEYS:
            lines.append(f"{source}: {key} is no longer a key: use {MOVED_KEYS[key]}")
        elif item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            # Checks across sections (model_post_init) name their own keys in the message.
            lines.append(f"{source}: {key}: {message}" if key else f"{source}: {message}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<memory>", *, resolve_env: bool = True) -> GatewayConfig:
    """Validate an already-parsed TOML document (`resolve_env=False` keeps `os.environ/` as is)."""
    try:
        resolved = _resolve_env(raw, "") if resolve_env else raw
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return GatewayConfig.model_validate({**resolved, "source": source})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> GatewayConfig:
    """Load the config at `path`, `$GATEWAY_CONFIG`, or the embedded default."""
    chosen = Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: invalid TOML: {exc}") from None
    return parse_config(raw, str(chosen))

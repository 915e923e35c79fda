"""A deployment: one upstream model behind one endpoint, as the router and the deployment actors see it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway_trio.config import ModelConfig, ModelInfo, PassThroughConfig

DEFAULT_API_BASES = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


def public_url(url: str | None) -> str | None:
    """`url` without credentials, query or fragment: safe for headers, logs and records."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class Deployment:
    """Immutable description of one deployment; runtime counters live in the actors that own them."""

    id: str
    group: str
    provider: str
    model: str  # upstream model name; may hold a `*` filled from the requested name
    api_base: str | None
    api_key: str | None = field(repr=False)
    api_version: str | None
    headers: dict[str, str] = field(repr=False)
    mock_response: str | None
    weight: float
    rpm: int | None
    tpm: int | None
    timeout_s: float | None
    stream_timeout_s: float | None
    num_retries: int | None
    max_parallel_requests: int
    guardrails: tuple[str, ...]
    info: ModelInfo
    # `api_base` without credentials: read into headers and records on every call, so made once
    public_api_base: str | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_api_base", public_url(self.api_base))

    @classmethod
    def from_config(cls, config: ModelConfig) -> Deployment:
        provider, _, model = config.model.partition("/")
        if not model:
            provider, model = "openai", config.model
        api_base = (config.api_base or DEFAULT_API_BASES.get(provider) or "").rstrip("/") or None
        return cls(
            id=config.info.id or _stable_id(config),
            group=config.name,
            provider=provider,
            model=model,
            api_base=api_base,
            api_key=config.api_key.get_secret_value() if config.api_key is not None else None,
            api_version=config.api_version,
            headers=dict(config.headers),
            mock_response=config.mock_response,
            weight=config.weight,
            rpm=config.rpm,
            tpm=config.tpm,
            timeout_s=config.timeout_s,
            stream_timeout_s=config.stream_timeout_s,
            num_retries=config.num_retries,
            max_parallel_requests=config.max_parallel_requests,
            guardrails=tuple(config.guardrails),
            info=config.info,
        )

    @classmethod
    def for_pass_through(cls, route: PassThroughConfig) -> Deployment:
        """A pass-through route as a deployment of its own: one router, one pipeline."""
        return cls(
            id="pass-through:" + hashlib.sha256(route.path.encode()).hexdigest()[:12],
            group=route.path, provider="pass_through", model=route.path, api_base=route.target,
            api_key=None, api_version=None, headers=dict(route.headers), mock_response=None, weight=1,
            rpm=None, tpm=None, timeout_s=None, stream_timeout_s=None, num_retries=0,
            max_parallel_requests=1000, guardrails=(), info=ModelInfo(),
        )

    def upstream_model(self, requested: str) -> str:
        """The model name to send upstream; wildcard groups pass on what the client matched."""
        if "*" not in self.model:
            return self.model
        prefix = self.group.split("*", 1)[0]
        return self.model.replace("*", requested[len(prefix):], 1)

    def model_info(self) -> dict[str, Any]:
        """What hooks and `/v1/models` may see: never the key."""
        return {"id": self.id, **self.info.model_dump(exclude={"id"}, exclude_none=True)}


def _stable_id(config: ModelConfig) -> str:
    identity = f"{config.name}|{config.model}|{config.api_base or ''}|{config.api_version or ''}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]

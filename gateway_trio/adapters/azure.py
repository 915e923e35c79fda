"""Azure OpenAI: OpenAI's wire format behind a per-deployment URL and an `api-key` header."""

from __future__ import annotations

from urllib.parse import quote

from gateway_trio.adapters.base import path_segment
from gateway_trio.adapters.openai import OpenAIAdapter
from gateway_trio.deployment import Deployment

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane version when this was written
# The Responses API arrived in 2025-03-01-preview; older versions (the chat default above
# included) answer 404 there, so a deployment configured for chat still reaches it.
RESPONSES_MIN_API_VERSION = "2025-03-01-preview"


class AzureAdapter(OpenAIAdapter):
    """Azure routes by deployment name in the path; the body's `model` is ignored there."""

    name = "azure"

    # Azure OpenAI has no moderation endpoint (content filtering is built into each
    # deployment), so these calls are refused with a 400 by the dispatcher.
    moderation_request = None  # type: ignore[assignment]
    moderation_response = None  # type: ignore[assignment]

    def endpoint_url(self, deployment: Deployment, model: str, endpoint: str) -> str:
        version = quote(deployment.api_version or DEFAULT_API_VERSION, safe="")
        return (
            f"{self.api_base(deployment)}/openai/deployments/{path_segment(model)}"
            f"/{endpoint}?api-version={version}"
        )

    def auth_headers(self, deployment: Deployment) -> dict[str, str]:
        return {"api-key": deployment.api_key} if deployment.api_key else {}

    # -- responses ----------------------------------------------------------------------------

    def responses_url(self, deployment: Deployment, model: str) -> str:
        """Azure serves Responses per resource, not per deployment: the body's `model` names
        the deployment (`{api_base}/openai/responses?api-version=...`)."""
        version = deployment.api_version or RESPONSES_MIN_API_VERSION
        # Versions are dates (`2025-04-01-preview`), so text order is date order.
        version = max(version, RESPONSES_MIN_API_VERSION)
        return f"{self.api_base(deployment)}/openai/responses?api-version={quote(version, safe='')}"

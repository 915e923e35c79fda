"""The Embeddings API (`/v1/embeddings`): texts in, vectors out; never streamed.

Guardrails see its `input`; its answer holds no text to check.
"""

from __future__ import annotations

from gateway_trio.apis.base import Api

EMBEDDINGS = Api(
    "embeddings", "embeddings", ("/v1/embeddings", "/embeddings"), adapter_method="embeddings",
    streams=False, text_fields=("input",), probe=("embedding", {"input": "ping"}),
)

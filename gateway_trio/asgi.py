"""The ASGI app built from `$GATEWAY_CONFIG`, for multi-worker serving and other ASGI servers."""

from gateway_trio.app import create_app
from gateway_trio.config import load_config

app = create_app(load_config())

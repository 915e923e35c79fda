"""The ASGI app built from `$GATEWAY_CONFIG`, for multi-worker serving and other ASGI servers."""

import os

from gateway_trio.config import load_config
from gateway_trio.frontend.app import create_app
from gateway_trio.frontend.serving import configure_logging, use_head_deadlines

configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"))
use_head_deadlines()
app = create_app(load_config())

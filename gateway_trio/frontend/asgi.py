"""The ASGI app built from `$GATEWAY_CONFIG`, for multi-worker serving and other ASGI servers."""

import os

from gateway_trio.config import load_config
from gateway_trio.frontend.app import create_app
from gateway_trio.frontend.serving import use_head_deadlines
from gateway_trio.runtime.logs import configure_logging
from gateway_trio.runtime.worker_samples import DIRECTORY_ENV, WORKERS_ENV

config = load_config()
configure_logging(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"), config.server.log_format)
use_head_deadlines()
app = create_app(config, metrics_dir=os.environ.get(DIRECTORY_ENV), workers=int(os.environ.get(WORKERS_ENV, "1")))

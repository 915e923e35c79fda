"""The hook API (SPEC §6): `from gateway_trio.hooks import CustomLogger`.

The public names live in `hooks.api`, LiteLLM's response classes (`views`) and exception classes
(`exceptions`) among them; the in-line runner, the kwargs and `standard_logging_object`
(`payload`) hooks receive and the loader of operator-named objects are this package's private
modules.
"""

from gateway_trio.hooks.api import *  # noqa: F401,F403
from gateway_trio.hooks.api import __all__  # noqa: F401

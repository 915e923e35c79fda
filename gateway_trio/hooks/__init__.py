"""The hook API (SPEC §6): `from gateway_trio.hooks import CustomLogger`.

The public names live in `hooks.api`; the in-line runner, the kwargs and views hooks receive and
the loader of operator-named objects are this package's private modules.
"""

from gateway_trio.hooks.api import *  # noqa: F401,F403
from gateway_trio.hooks.api import __all__  # noqa: F401

"""What differs between the dependency sets CI runs (ci/lowest.txt and the newest releases).

- ``sdk_httpx``: the httpx package the installed anthropic SDK is built on (``httpx``
  before anthropic 2, ``httpx2`` since), for tests that hand the SDK a request or response.
- ``fresh_base_url``: langchain-anthropic (1.5 at least) shares one cached httpx client per
  base URL and process, so an async test can inherit one left on an earlier test's closed
  event loop. A URL of its own (``/tN/../``, folded back to ``/`` by the URL parser) gets a
  fresh client through public means.
"""

from __future__ import annotations

import importlib
import itertools
from types import ModuleType

import anthropic

__all__ = ["fresh_base_url", "sdk_httpx"]

sdk_httpx: ModuleType = importlib.import_module(
    anthropic.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]
)
_ids = itertools.count()


def fresh_base_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/t{next(_ids)}/../"

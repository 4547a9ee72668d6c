"""The key-value store on etcd v3 (PipesHub's other ``KV_STORE_TYPE``), through etcd3gw.

etcd3gw speaks etcd's own JSON gateway (``/v3/kv/...`` on the client port) with
requests, so there is no gRPC stack to install. Compare-and-set is an etcd
transaction: the commit succeeds only if the marker's and the head's ``mod_revision``
are still the ones read (0 for a key that did not exist), otherwise the attempt starts
over. Every request is bounded by the store timeout.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

try:
    from etcd3gw.client import Etcd3Client
    from etcd3gw.exceptions import Etcd3Exception
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the etcd policy store needs etcd3gw: pip install 'llm-policy[etcd]'") from exc

from engine.store._errors import StoreUnavailableError
from engine.store._kv import KeyValueStore
from engine.store._url import EtcdLocation, redact

__all__ = ["EtcdStore"]


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def _range_end(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (ASCII keys)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdStore(KeyValueStore):
    driver_errors = (Etcd3Exception, requests.RequestException, OSError)

    def __init__(self, location: EtcdLocation, *, timeout: float) -> None:
        self.location = location
        self.url = location.masked
        self.prefix = location.prefix
        self._client = Etcd3Client(
            host=location.host,
            port=location.port,
            protocol="https" if location.tls else "http",
            timeout=timeout,
        )

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        detail = getattr(exc, "detail_text", None) or str(exc) or type(exc).__name__
        return StoreUnavailableError(f"policy store {self.url}: {type(exc).__name__}: {redact(str(detail))}")

    def close(self) -> None:
        self._client.session.close()

    def _get(self, key: str) -> bytes | None:
        found = self._client.get(key)
        return bytes(found[0]) if found else None

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        if len(keys) < 2:
            return [self._get(k) for k in keys]
        common = posixpath.commonpath(keys).rstrip("/") + "/"  # one range read for them all
        found = {
            bytes(meta["key"]).decode("utf-8"): bytes(value)
            for value, meta in self._client.get(common, metadata=True, range_end=_range_end(common))
        }
        return [found.get(k) for k in keys]

    def _keys(self, prefix: str) -> list[str]:
        rows = self._client.get(prefix, metadata=True, range_end=_range_end(prefix), keys_only=True)
        return [bytes(meta["key"]).decode("utf-8") for _, meta in rows]

    def _create(self, key: str, value: bytes) -> bool:
        return bool(self._client.create(key, value))

    @contextmanager
    def _session(self, watched: list[str]) -> Iterator[_EtcdSession]:
        yield _EtcdSession(self._client, watched)


class _EtcdSession:
    def __init__(self, client: Etcd3Client, watched: list[str]) -> None:
        self.client = client
        self.revisions: dict[str, int] = dict.fromkeys(watched, 0)

    def read(self, key: str) -> bytes | None:
        found = self.client.get(key, metadata=True)
        if not found:
            return None
        value, meta = found[0]
        if key in self.revisions:
            self.revisions[key] = int(meta["mod_revision"])
        return bytes(value)

    def write(self, values: dict[str, bytes]) -> bool:
        txn: dict[str, Any] = {
            "compare": [
                {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": str(rev)}
                for key, rev in self.revisions.items()
            ],
            "success": [{"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in values.items()],
            "failure": [],
        }
        return bool(self.client.transaction(txn).get("succeeded", False))

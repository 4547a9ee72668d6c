"""Reaching Redis from a URL: plain, TLS or cluster, and the key namespace.

URL forms (the same Redis PipesHub already runs)::

    redis://[user:password@]host:6379/0            one server (or a primary behind a proxy)
    rediss://[user:password@]host:6380/0           the same over TLS
    redis://host:7000/?cluster=true                a Redis Cluster (redis-py's RedisCluster;
    rediss://host:7000/?cluster=true                any node serves as the entry point)

Optional query arguments: ``namespace`` (key prefix, default ``llm-policy``),
``retention_s`` (how long the journal keeps answered rows; Redis holds them in memory),
``socket_timeout`` / ``socket_connect_timeout`` (seconds, defaults 2 and 1: a Redis
slower than that counts as unreachable, and calls go direct).

Every key lives under one hash tag, ``{namespace}``, so in a cluster all of a
namespace's keys share a slot: each Lua script sees every key it touches, and each
step (enqueue, hand-over to a flusher, result) is atomic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["RedisTarget", "RedisURLError", "parse_redis_url"]

SCHEMES = ("redis", "rediss")
DEFAULT_NAMESPACE = "llm-policy"
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_OURS = ("cluster", "namespace", "retention_s")
_DEFAULT_TIMEOUTS = {"socket_timeout": "2", "socket_connect_timeout": "1"}


class RedisURLError(ValueError):
    """A Redis URL this engine cannot use (wrong scheme, bad namespace, db in a cluster)."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis URL: what redis-py gets, whether it is a cluster, and the key prefix."""

    client_url: str
    cluster: bool
    namespace: str
    retention_s: float | None = None

    @property
    def prefix(self) -> str:
        """Every key starts with this: one hash tag, so one cluster slot."""
        return "{" + self.namespace + "}:"

    @property
    def masked(self) -> str:
        """The URL without its password (for logs)."""
        parts = urlsplit(self.client_url)
        if parts.password is None:
            return self.client_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def sync_client(self) -> Any:
        """A thread-safe blocking client (the journal runs in worker threads)."""
        if self.cluster:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(self.client_url)
        import redis

        return redis.Redis.from_url(self.client_url)

    def async_client(self) -> Any:
        """An asyncio client, bound to the event loop that first uses it."""
        if self.cluster:
            from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

            return AsyncRedisCluster.from_url(self.client_url)
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.client_url)


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_redis_url(url: str) -> RedisTarget:
    """Check ``url`` and split off this engine's own query arguments."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise RedisURLError(f"not a Redis URL: {url!r} (use redis:// or rediss://)")
    if not parts.hostname:
        raise RedisURLError(f"Redis URL without a host: {url!r}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    cluster = _truthy(query.get("cluster", ""))
    namespace = query.get("namespace") or DEFAULT_NAMESPACE
    if not _NAMESPACE.match(namespace):
        raise RedisURLError(f"bad namespace {namespace!r} in the Redis URL: use [A-Za-z0-9_.:-], 1-64 chars")
    path = parts.path.strip("/")
    if cluster and path not in ("", "0"):
        raise RedisURLError(f"a Redis Cluster has only database 0, the URL names {path!r}")
    retention = query.get("retention_s")
    try:
        retention_s = float(retention) if retention else None
    except ValueError:
        raise RedisURLError(f"retention_s must be a number of seconds, got {retention!r}") from None
    rest = {k: v for k, v in query.items() if k not in _OURS}
    for key, value in _DEFAULT_TIMEOUTS.items():
        rest.setdefault(key, value)
    client_url = urlunsplit(parts._replace(query=urlencode(rest)))
    return RedisTarget(client_url=client_url, cluster=cluster, namespace=namespace, retention_s=retention_s)

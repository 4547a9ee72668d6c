"""The key-value store on Redis (PipesHub's default ``KV_STORE_TYPE``), through redis-py.

Compare-and-set is Redis's optimistic transaction: ``WATCH`` the marker and the head,
read, then ``MULTI`` ... ``EXEC``; ``EXEC`` fails (``WatchError``) when another client
changed a watched key in between, and that attempt starts over. Every socket operation
is bounded by the store timeout and not retried here (the hot reload polls again), so a
server that accepts connections but never answers costs one timeout, not minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError, WatchError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis policy store needs redis-py: pip install redis") from exc

from engine.store._errors import StoreUnavailableError
from engine.store._kv import KeyValueStore
from engine.store._url import RedisLocation, redact

__all__ = ["RedisStore"]


class RedisStore(KeyValueStore):
    driver_errors = (RedisError, OSError)

    def __init__(self, location: RedisLocation, *, timeout: float) -> None:
        self.location = location
        self.url = location.masked
        self.prefix = location.prefix
        self._client = redis.Redis(
            host=location.host,
            port=location.port,
            db=location.db,
            username=location.username or None,
            password=location.password or None,
            ssl=location.tls,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        detail = redact(str(exc), self.location.password)
        return StoreUnavailableError(f"policy store {self.url}: {type(exc).__name__}: {detail}")

    def close(self) -> None:
        self._client.close()

    def _get(self, key: str) -> bytes | None:
        value = self._client.get(key)
        return value if isinstance(value, bytes) else None

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(self._client.mget(keys))  # type: ignore[arg-type]

    def _keys(self, prefix: str) -> list[str]:
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        return [bytes(k).decode("utf-8") for k in self._client.scan_iter(match=pattern, count=500)]

    def _create(self, key: str, value: bytes) -> bool:
        return bool(self._client.set(key, value, nx=True))

    @contextmanager
    def _session(self, watched: list[str]) -> Iterator[_RedisSession]:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.watch(*watched)  # type: ignore[no-untyped-call]
            yield _RedisSession(pipe)


class _RedisSession:
    def __init__(self, pipe: redis.client.Pipeline) -> None:
        self.pipe = pipe

    def read(self, key: str) -> bytes | None:
        value = self.pipe.get(key)  # immediate while watching
        return value if isinstance(value, bytes) else None

    def write(self, values: dict[str, bytes]) -> bool:
        self.pipe.multi()
        for key, value in values.items():
            self.pipe.set(key, value)
        try:
            self.pipe.execute()
        except WatchError:
            return False
        return True

"""Store URLs: which backend, where, and how to print them without the password.

Forms accepted::

    sqlite:///relative/path.db          (three slashes: relative to the working directory)
    sqlite:////absolute/path.db         (four slashes: absolute)
    arangodb://user:pass@host:8529/db   (http; arangodb+https:// for TLS;
                                         ?collection=NAME instead of aiconfigs)
    arangodb://                         (every part from ARANGO_URL, ARANGO_USERNAME,
                                         ARANGO_PASSWORD, ARANGO_DB)
    redis://[user:pass@]host:6379/0     (PipesHub's key-value store; rediss:// for TLS;
                                         ?prefix=/services/aiconfigs/llm-policy)
    etcd://host:2379                    (the same on etcd v3; etcd+https:// for TLS)

A password may hold any character (``/``, ``@``, ``:``): the last ``@`` before the
path ends it. Percent-encoding works too.

No URL at all means ``$LLM_POLICY_STORE``, else :data:`DEFAULT_STORE_URL`. The same
URLs serve the batch journal, so this module is shared, not store-private.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "DEFAULT_KV_PREFIX",
    "DEFAULT_STORE_URL",
    "ArangoLocation",
    "EtcdLocation",
    "RedisLocation",
    "SqliteLocation",
    "StoreURLError",
    "mask_url",
    "parse_store_url",
    "redact",
    "resolve_store_url",
]

DEFAULT_STORE_URL = "sqlite:///./.llm-policy/policies.db"
DEFAULT_ARANGO_DB = "es"  # PipesHub's database name
#: Where the policy keys live in PipesHub's key-value store: beside ``/services/aiModels``.
DEFAULT_KV_PREFIX = "/services/aiconfigs/llm-policy"
_MASK = "***"
# user:password@ up to the LAST "@" of the URL's first whitespace-free stretch, so a
# password holding "/" or "@" is masked whole (urlsplit would cut it at the "/").
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S*)@")


class StoreURLError(ValueError):
    """The store URL cannot be understood (a usage error: exit code 2)."""


@dataclass(frozen=True)
class SqliteLocation:
    path: Path
    url: str

    @property
    def masked(self) -> str:
        return self.url


@dataclass(frozen=True)
class ArangoLocation:
    """Where an ArangoDB store lives. ``password`` never appears in ``repr``."""

    endpoint: str  # http(s)://host:port, without credentials
    database: str
    username: str
    password: str = field(repr=False)
    collection: str = "aiconfigs"

    @property
    def masked(self) -> str:
        scheme = "arangodb+https" if self.endpoint.startswith("https://") else "arangodb"
        host = self.endpoint.split("://", 1)[1]
        auth = _auth(self.username, self.password)
        query = f"?collection={self.collection}" if self.collection != "aiconfigs" else ""
        return f"{scheme}://{auth}{host}/{self.database}{query}"


@dataclass(frozen=True)
class RedisLocation:
    """A Redis server and the key prefix under which the policies live."""

    host: str
    port: int
    db: int
    username: str
    password: str = field(repr=False)
    tls: bool = False
    prefix: str = DEFAULT_KV_PREFIX

    @property
    def masked(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = _auth(self.username, self.password)
        query = f"?prefix={self.prefix}" if self.prefix != DEFAULT_KV_PREFIX else ""
        return f"{scheme}://{auth}{_bracket(self.host)}:{self.port}/{self.db}{query}"


@dataclass(frozen=True)
class EtcdLocation:
    """An etcd v3 server (its JSON gateway, the client port) and the key prefix."""

    host: str
    port: int
    tls: bool = False
    prefix: str = DEFAULT_KV_PREFIX

    @property
    def masked(self) -> str:
        scheme = "etcd+https" if self.tls else "etcd"
        query = f"?prefix={self.prefix}" if self.prefix != DEFAULT_KV_PREFIX else ""
        return f"{scheme}://{_bracket(self.host)}:{self.port}{query}"


Location = SqliteLocation | ArangoLocation | RedisLocation | EtcdLocation


def _auth(username: str, password: str) -> str:
    if password:
        return f"{username}:{_MASK}@"
    return f"{username}@" if username else ""


def mask_url(url: str) -> str:
    """``arangodb://root:secret@h:8529/es`` -> ``arangodb://root:***@h:8529/es``, whatever
    characters the password holds."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{_MASK}@", url)


def _split_userinfo(url: str) -> tuple[str, str, str]:
    """``(user, password, url without them)``; the password ends at the last ``@`` before
    the query, so one holding ``/`` or ``@`` unencoded is still read whole."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url
    authority_end = len(rest.split("?", 1)[0])
    at = rest.rfind("@", 0, authority_end)
    if at < 0:
        return "", "", url
    userinfo, tail = rest[:at], rest[at + 1 :]
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password), f"{scheme}://{tail}"


def redact(text: str, *secrets: str) -> str:
    """Mask credentials in any text (a driver's error message, say) before it is shown."""
    text = mask_url(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, _MASK)
    return text


def resolve_store_url(url: str | None, env: Mapping[str, str] | None = None) -> str:
    """The URL to use: the one given, else ``$LLM_POLICY_STORE``, else the default file."""
    env = os.environ if env is None else env
    return url or env.get("LLM_POLICY_STORE") or DEFAULT_STORE_URL


def parse_store_url(url: str, env: Mapping[str, str] | None = None) -> Location:
    """Turn a store URL into a location; raise :class:`StoreURLError` naming the masked URL."""
    env = os.environ if env is None else env
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _parse_sqlite(url)
    if scheme in ("arangodb", "arangodb+http", "arangodb+https"):
        return _parse_arango(url, env)
    if scheme in ("redis", "rediss"):
        return _parse_redis(url)
    if scheme in ("etcd", "etcd+http", "etcd+https"):
        return _parse_etcd(url)
    raise StoreURLError(
        f"unsupported store URL {mask_url(url)!r}: use sqlite:///path/to/policies.db, "
        "arangodb://user:password@host:8529/database, redis://:password@host:6379/0 or etcd://host:2379"
    )


def _host_port(url: str, default_port: int) -> tuple[str, int, dict[str, list[str]]]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise StoreURLError(f"store URL {mask_url(url)!r} names no host")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise StoreURLError(f"bad port in store URL {mask_url(url)!r}") from exc
    return parts.hostname, port, parse_qs(parts.query)


def _prefix(url: str, query: dict[str, list[str]]) -> str:
    prefix = query.get("prefix", [DEFAULT_KV_PREFIX])[-1].rstrip("/")
    if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", prefix):
        raise StoreURLError(
            f"bad key prefix {prefix!r} in store URL {mask_url(url)!r}: "
            "write ?prefix=/services/aiconfigs/NAME"
        )
    return prefix


def _parse_redis(url: str) -> RedisLocation:
    username, password, bare = _split_userinfo(url)
    host, port, query = _host_port(bare, 6379)
    path = urlsplit(bare).path.strip("/") or "0"
    if not path.isdigit():
        raise StoreURLError(f"bad database number {path!r} in store URL {mask_url(url)!r}: write /0")
    tls = url.lower().startswith("rediss:")
    return RedisLocation(host, port, int(path), username, password, tls, _prefix(url, query))


def _parse_etcd(url: str) -> EtcdLocation:
    username, password, bare = _split_userinfo(url)
    if username or password:
        raise StoreURLError(
            f"store URL {mask_url(url)!r}: etcd authentication is not supported; "
            "reach etcd without a user (as PipesHub does) or over etcd+https:// with network policy"
        )
    host, port, query = _host_port(bare, 2379)
    if urlsplit(bare).path.strip("/"):
        raise StoreURLError(f"store URL {mask_url(url)!r}: etcd takes no path; use ?prefix=/keys/here")
    tls = url.lower().startswith("etcd+https:")
    return EtcdLocation(host, port, tls, _prefix(url, query))


def _parse_sqlite(url: str) -> SqliteLocation:
    if not url.lower().startswith("sqlite:///"):
        raise StoreURLError(
            f"bad SQLite store URL {url!r}: write sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    raw = unquote(url[len("sqlite:///") :])
    if not raw or raw.endswith("/") or raw == ":memory:":
        raise StoreURLError(
            f"bad SQLite store URL {url!r}: it needs a file path (an in-memory store would be lost)"
        )
    return SqliteLocation(path=Path(raw), url=url)


def _parse_arango(url: str, env: Mapping[str, str]) -> ArangoLocation:
    url_user, url_password, bare = _split_userinfo(url)
    parts = urlsplit(bare)
    base = urlsplit(env["ARANGO_URL"]) if env.get("ARANGO_URL") else None
    host = parts.hostname or (base.hostname if base else None)
    if not host:
        raise StoreURLError(f"store URL {mask_url(url)!r} names no host and ARANGO_URL is not set")
    tls = parts.scheme == "arangodb+https" or (
        not parts.hostname and base is not None and base.scheme == "https"
    )
    try:
        port = parts.port or (base.port if base and not parts.hostname else None) or 8529
    except ValueError as exc:
        raise StoreURLError(f"bad port in store URL {mask_url(url)!r}") from exc
    username = url_user or (base and unquote(base.username or "")) or env.get("ARANGO_USERNAME", "root")
    password = url_password or (base and unquote(base.password or "")) or env.get("ARANGO_PASSWORD", "")
    database = (
        unquote(parts.path.strip("/"))
        or env.get("ARANGO_DB")
        or env.get("ARANGO_DB_NAME")
        or DEFAULT_ARANGO_DB
    )
    if "/" in database:
        raise StoreURLError(f"bad database name {database!r} in store URL {mask_url(url)!r}")
    endpoint = f"{'https' if tls else 'http'}://{_bracket(host)}:{port}"
    collection = parse_qs(parts.query).get("collection", ["aiconfigs"])[-1]
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]{0,255}", collection):
        raise StoreURLError(f"bad collection name {collection!r} in store URL {mask_url(url)!r}")
    return ArangoLocation(endpoint, database, username, password, collection)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host

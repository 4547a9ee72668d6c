"""Store URLs: which backend, where, and how to print them without the password.

Forms accepted::

    sqlite:///relative/path.db          (three slashes: relative to the working directory)
    sqlite:////absolute/path.db         (four slashes: absolute)
    arangodb://user:pass@host:8529/db   (http; arangodb+https:// for TLS;
                                         ?collection=NAME instead of aiconfigs)
    arangodb://                         (every part from ARANGO_URL, ARANGO_USERNAME,
                                         ARANGO_PASSWORD, ARANGO_DB)

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
    "DEFAULT_STORE_URL",
    "ArangoLocation",
    "SqliteLocation",
    "StoreURLError",
    "mask_url",
    "parse_store_url",
    "redact",
    "resolve_store_url",
]

DEFAULT_STORE_URL = "sqlite:///./.llm-policy/policies.db"
DEFAULT_ARANGO_DB = "es"  # PipesHub's database name
_MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")


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
        auth = (
            f"{self.username}:{_MASK}@" if self.password else (f"{self.username}@" if self.username else "")
        )
        query = f"?collection={self.collection}" if self.collection != "aiconfigs" else ""
        return f"{scheme}://{auth}{host}/{self.database}{query}"


def mask_url(url: str) -> str:
    """``arangodb://root:secret@h:8529/es`` -> ``arangodb://root:***@h:8529/es``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{_MASK}@", url)


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


def parse_store_url(url: str, env: Mapping[str, str] | None = None) -> SqliteLocation | ArangoLocation:
    """Turn a store URL into a location; raise :class:`StoreURLError` naming the masked URL."""
    env = os.environ if env is None else env
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _parse_sqlite(url)
    if scheme in ("arangodb", "arangodb+http", "arangodb+https"):
        return _parse_arango(url, env)
    raise StoreURLError(
        f"unsupported store URL {mask_url(url)!r}: use sqlite:///path/to/policies.db "
        "or arangodb://user:password@host:8529/database"
    )


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
    parts = urlsplit(url)
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
    username = (
        unquote(parts.username or "")
        or (base and unquote(base.username or ""))
        or env.get("ARANGO_USERNAME", "root")
    )
    password = (
        unquote(parts.password or "")
        or (base and unquote(base.password or ""))
        or env.get("ARANGO_PASSWORD", "")
    )
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

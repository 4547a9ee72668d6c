"""Request identity: the hash that deduplicates, and the custom_id derived from it.

A request's hash covers what decides its answer and who pays for it: the
canonical params, the credential's fingerprint, the endpoint and the headers the
request carries beyond the SDK's own (an ``anthropic-beta`` changes the answer). So
one tenant is never answered with another's result, and a redelivered identical
request (same params, key, endpoint and headers) is recognised. Cache markers are
left out (they change the price, not the answer, and the allocator may place them
differently after a restart), and a string ``system`` / ``content`` counts as the
one text block it stands for.

A ``salt`` separates requests that are identical but distinct: the second copy of
a prompt in one ``abatch`` (salt ``#1``), or a caller's idempotency key.

The fingerprint is a truncated sha256 of the key: the key itself is never stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.providers.anthropic.tokens import canonical_json

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "canonical_params",
    "client_identity",
    "credential_fingerprint",
    "custom_id_for",
    "headers_fingerprint",
    "request_hash",
]

FINGERPRINT_HEX = 16
#: Headers the SDK sets itself (or that carry the credential, counted apart): not part of identity.
_SDK_HEADERS = frozenset(
    {"accept", "content-type", "user-agent", "anthropic-version", "x-api-key", "authorization"}
)


def credential_fingerprint(secret: str | None) -> str:
    """sha256 of the API key (or bearer token), truncated: identifies, never reveals."""
    return hashlib.sha256((secret or "").encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]


def client_identity(client: anthropic.AsyncAnthropic) -> tuple[str, str]:
    """(credential fingerprint, base URL) of an SDK client: where its batches live."""
    secret = client.api_key or client.auth_token
    return credential_fingerprint(secret), str(client.base_url).rstrip("/")


def headers_fingerprint(client: anthropic.AsyncAnthropic, extra: Mapping[str, str] | None = None) -> str:
    """The headers a request carries beyond the SDK's own (client defaults, then ``extra``),
    fingerprinted; empty when there are none."""
    merged = {
        k.lower(): str(v)
        for k, v in {**client.default_headers, **(extra or {})}.items()
        if isinstance(v, str) and k.lower() not in _SDK_HEADERS and not k.lower().startswith("x-stainless")
    }
    if not merged:
        return ""
    return hashlib.sha256(canonical_json(sorted(merged.items())).encode("utf-8")).hexdigest()[
        :FINGERPRINT_HEX
    ]


def canonical_params(value: Any) -> Any:
    """``value`` without ``cache_control`` anywhere, string forms written as one text block."""
    if isinstance(value, dict):
        out = {k: canonical_params(v) for k, v in value.items() if k != "cache_control"}
        for key in ("system", "content"):
            if isinstance(out.get(key), str) and out[key]:
                out[key] = [{"type": "text", "text": out[key]}]
        return out
    if isinstance(value, list):
        return [canonical_params(v) for v in value]
    return value


def request_hash(
    params: dict[str, Any], fingerprint: str, base_url: str, *, headers: str = "", salt: str = ""
) -> str:
    identity: dict[str, Any] = {
        "params": canonical_params(params),
        "credential": fingerprint,
        "endpoint": base_url,
    }
    if headers:
        identity["headers"] = headers
    if salt:
        identity["salt"] = salt
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def custom_id_for(hash_hex: str) -> str:
    """64 hex characters: matches ``^[a-zA-Z0-9_-]{1,64}$``; unique per request in a batch."""
    return hash_hex[:64]

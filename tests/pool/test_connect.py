"""Redis URLs: plain, TLS, cluster, namespace; bad ones refused with the reason."""

from __future__ import annotations

import pytest

from engine.pool.connect import RedisURLError, parse_redis_url


def test_plain_url_gets_default_namespace_and_timeouts() -> None:
    target = parse_redis_url("redis://:secret@cache:6379/2")
    assert not target.cluster
    assert target.namespace == "llm-policy"
    assert target.prefix == "{llm-policy}:"
    assert "socket_timeout=2" in target.client_url
    assert "secret" not in target.masked and "cache:6379/2" in target.masked


def test_tls_cluster_url_with_namespace() -> None:
    target = parse_redis_url("rediss://node-1:7000/?cluster=true&namespace=pipeshub.llm")
    assert target.cluster
    assert target.prefix == "{pipeshub.llm}:"
    assert target.client_url.startswith("rediss://node-1:7000/")
    assert "cluster" not in target.client_url and "namespace" not in target.client_url


def test_retention_is_ours_and_checked() -> None:
    target = parse_redis_url("redis://h/0?retention_s=86400")
    assert target.retention_s == 86400 and "retention" not in target.client_url
    with pytest.raises(RedisURLError, match="retention_s"):
        parse_redis_url("redis://h/0?retention_s=a-day")


def test_own_timeouts_are_kept() -> None:
    assert "socket_timeout=0.5" in parse_redis_url("redis://h/0?socket_timeout=0.5").client_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h:6379", "redis://"),
        ("redis:///0", "without a host"),
        ("redis://h/3?cluster=1", "database 0"),
        ("redis://h/0?namespace=a%20b", "bad namespace"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(RedisURLError, match=reason):
        parse_redis_url(url)

"""Helpers for the policy tests: build small policies without repeating the header."""

from __future__ import annotations

import textwrap

import pytest

HEADER = "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: t}\n"


def policy_text(spec: str) -> str:
    """A whole policy document whose ``spec:`` block is ``spec`` (YAML, any indentation)."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"{HEADER}spec:\n{body}\n"


@pytest.fixture
def make_policy() -> object:
    return policy_text

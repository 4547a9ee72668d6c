"""What the store commands share: the ``--store`` / ``--author`` / ``--format`` options,
which store a command used, which policy the engine loads, and one mapping from store
errors to exit codes.

Exit codes: 0 done, 1 invalid input or a refused change (also: a damaged record, a
policy that is not the one the engine loads), 2 usage (a bad store URL), 3 conflict
(someone else changed the policy first), 4 the store is unreachable or does not exist.

Every store command names the store it used (masked URL; for SQLite also the absolute
file) on stderr, or as ``"store"`` in its JSON. No command but ``migrate`` creates a
store: a command run from another directory than the store's, with the relative
default, fails with exit 4 and says where it looked, instead of acting on an empty new
store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from engine.cli import EXIT_CONFLICT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from engine.store import (
    DEFAULT_STORE_URL,
    ConflictError,
    InvalidPolicyError,
    NotFoundError,
    PolicyStore,
    StoreError,
    StoreUnavailableError,
    StoreURLError,
    open_store,
)

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "POLICY_NAME_ENV",
    "add_author",
    "add_format",
    "add_store",
    "check_engine_name",
    "emit",
    "engine_policy_name",
    "fail",
    "print_issues",
    "report_switch",
    "run_with_store",
    "safe",
    "store_label",
]

#: The policy the engine loads: ``PolicyEngine.from_store`` reads the same variable.
POLICY_NAME_ENV = "LLM_POLICY_NAME"
DEFAULT_POLICY_NAME = "pipeshub-default"


def engine_policy_name(env: Mapping[str, str] | None = None) -> str:
    """The name the engine is configured to load: ``$LLM_POLICY_NAME``, else ``pipeshub-default``."""
    return (os.environ if env is None else env).get(POLICY_NAME_ENV) or DEFAULT_POLICY_NAME


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="sqlite:///path.db, redis://:pass@host:6379/0, etcd://host:2379 or "
        f"arangodb://user:pass@host:8529/db (default: $LLM_POLICY_STORE, else {DEFAULT_STORE_URL})",
    )


def add_author(parser: argparse.ArgumentParser, *, comment: bool = True) -> None:
    parser.add_argument(
        "--author", metavar="NAME", required=True, help="who makes the change (kept in the history)"
    )
    if comment:
        parser.add_argument("--comment", metavar="TEXT", default="", help="why (kept in the history)")


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")


def safe(text: str) -> str:
    """Control characters and newlines escaped, so a value cannot forge lines in a log."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def print_issues(errors: Sequence[Any], warnings: Sequence[Any], out: TextIO | None = None) -> None:
    """Validation findings exactly as ``llm-policy validate`` prints them (stdout, errors
    first, each ``Issue.format()``: ``file:line:column: code: message``)."""
    out = out or sys.stdout
    for issue in [*errors, *warnings]:
        print(issue.format(), file=out)


def fail(command: str, message: str, code: int, args: argparse.Namespace | None = None) -> int:
    """Say why on stderr; with ``--format json`` also print ``{"error": ...}`` on stdout."""
    print(f"llm-policy {command}: {safe(message)}", file=sys.stderr)
    if args is not None and getattr(args, "format", "text") == "json":
        print(json.dumps({"error": {"exit": code, "message": message}}, ensure_ascii=False))
    return code


def store_label(store: PolicyStore) -> str:
    """The masked URL, and for a SQLite store the absolute file it resolved to."""
    path = getattr(store, "path", None)
    return f"{store.url} (file {path.absolute()})" if path is not None else store.url


def emit(args: argparse.Namespace, store: PolicyStore, data: dict[str, Any], text: str) -> None:
    """A command's answer: ``text`` on stdout, or ``data`` (with ``"store"``) as JSON."""
    if getattr(args, "format", "text") == "json":
        print(json.dumps({"store": store.url, **data}, indent=2, ensure_ascii=False))
    elif text:
        print(text)


def _exit_code(exc: StoreError) -> int:
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, StoreUnavailableError):
        return EXIT_UNAVAILABLE
    return EXIT_INVALID  # not found, invalid, damaged record


def run_with_store(
    args: argparse.Namespace, work: Callable[[PolicyStore], int], *, create: bool = False
) -> int:
    """Open the store ``args.store`` names (never creating one unless ``create``), name it
    on stderr, run ``work`` on it, and map store errors to exit codes."""
    command = str(args.command)
    try:
        store = open_store(args.store, create=create)
    except StoreURLError as exc:
        return fail(command, str(exc), EXIT_USAGE, args)
    except StoreError as exc:
        return fail(command, str(exc), _exit_code(exc), args)
    print(f"llm-policy {command}: store {store_label(store)}", file=sys.stderr)
    if args.store is None and not os.environ.get("LLM_POLICY_STORE"):
        print(
            f"llm-policy {command}: note: no --store and no $LLM_POLICY_STORE, so this is the default "
            "store under the current directory; a service started elsewhere does not read it",
            file=sys.stderr,
        )
    try:
        return work(store)
    except BrokenPipeError:  # `llm-policy history NAME | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except ConflictError as exc:
        return fail(command, f"conflict: {exc}", EXIT_CONFLICT, args)
    except InvalidPolicyError as exc:
        print_issues(exc.errors, exc.warnings, sys.stderr if getattr(args, "format", "") == "json" else None)
        return fail(command, "refused: the policy is invalid; nothing was stored", EXIT_INVALID, args)
    except NotFoundError as exc:
        return fail(command, f"{exc} ({store.url})", EXIT_INVALID, args)
    except StoreError as exc:
        return fail(command, str(exc), _exit_code(exc), args)
    finally:
        store.close()


def check_engine_name(args: argparse.Namespace, name: str) -> int:
    """Exit 1 (after the change is made) when ``name`` is not the policy the engine loads:
    the change is real, but it does not reach the engine, so the on-call must know."""
    loads = engine_policy_name()
    if name == loads:
        return EXIT_OK
    print(
        f"llm-policy {args.command}: warning: {name!r} is not the policy the engine loads ({loads!r}, "
        f"from ${POLICY_NAME_ENV} or the default): this change does not reach the engine",
        file=sys.stderr,
    )
    return EXIT_INVALID


def report_switch(args: argparse.Namespace, store: PolicyStore, name: str, changed: bool, said: str) -> int:
    """After ``disable`` / ``enable`` / ``rollback``: say what changed and which version is
    active now (read back from the store), then check the engine loads this policy."""
    active = store.get(name)
    spec = active.document.get("spec")
    enabled = bool(isinstance(spec, dict) and spec.get("enabled", False))
    loads = engine_policy_name()
    data = {
        "name": name,
        "changed": changed,
        "active": {"version": active.version, "revision": active.revision, "enabled": enabled},
        "engine_policy": loads,
        "engine_loads_it": name == loads,
    }
    state = "enabled: true" if enabled else "enabled: false"
    text = f"{said}\n{name}: active version {active.version} ({state}, revision {active.revision[:12]})"
    emit(args, store, data, text)
    return check_engine_name(args, name)

"""Validate: text -> data with line marks -> schema -> semantic checks -> typed Policy.

The tiers run in that order and every finding is collected, so one run shows the
author everything to fix. Only a document with no error becomes a :class:`Policy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from engine.policy._errors import IssueList, PolicyError, Report
from engine.policy._gc import paused_gc
from engine.policy._load import MAX_BYTES, SourceMap, load_yaml, position
from engine.policy._model import Policy
from engine.policy._schema import check_schema
from engine.policy._semantic import check_semantics
from engine.providers.anthropic.tokens import canonical_json

__all__ = ["POLICY_SUFFIXES", "check_paths", "check_text", "load_policy", "load_policy_text"]

POLICY_SUFFIXES = (".yaml", ".yml")


def check_text(text: str, *, source: str = "<string>") -> Report:
    """Every finding for one document; never raises for bad input."""
    with paused_gc():
        return _check_text(text, source)


def _check_text(text: str, source: str) -> Report:
    issues = IssueList(source)
    loaded = load_yaml(text, issues)
    policy: Policy | None = None
    if loaded.ok:
        schema_ok = check_schema(loaded.data, loaded.where, issues)
        check_semantics(loaded.data, loaded.where, issues)
        if schema_ok and not any(i.severity == "error" for i in issues.items):
            policy = _typed(loaded.data, loaded.where, issues)
    errors, warnings = issues.split()
    return Report(policy if not errors else None, errors, warnings, source)


def _typed(data: object, where: SourceMap, issues: IssueList) -> Policy | None:
    """The typed model of a schema-valid document; a refusal here means schema and model
    disagree, still reported where the value was written."""
    try:
        return Policy.model_validate_json(canonical_json(data), strict=True)
    except ValidationError as exc:
        for err in exc.errors():
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            issues.add(
                "schema.invalid", where.value(path), path, f"{path[2:] or 'the document'}: {err['msg']}"
            )
        return None


def check_file(path: Path) -> Report:
    """Like :func:`check_text` for a file; a missing or unreadable file is a finding too."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # checked before reading, so a huge file is never loaded
            message = f"the policy is {size} bytes; the cap is {MAX_BYTES}"
            return _file_report(source, "file.too-large", message)
        data = path.read_bytes()
    except FileNotFoundError:
        return _file_report(source, "file.not-found", "no such file")
    except OSError as exc:
        return _file_report(source, "file.unreadable", f"cannot read the file: {exc}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
        where = position(before, len(before))
        bad = data[exc.start : exc.end].hex(" ")
        message = f"the file is not UTF-8 text: byte 0x{bad} ({exc.reason}); save it as UTF-8"
        return _file_report(source, "file.unreadable", message, where)
    return check_text(text, source=source)


def _file_report(source: str, code: str, message: str, where: tuple[int, int] = (1, 1)) -> Report:
    issues = IssueList(source)
    issues.add(code, where, "$", message)
    return Report(None, issues.split()[0], (), source)


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; directories become their ``*.yaml`` / ``*.yml`` files, recursively, sorted."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in POLICY_SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def check_paths(paths: Iterable[str | Path]) -> list[Report]:
    """One report per policy file under ``paths`` (files or directories)."""
    return [check_file(path) for path in expand(paths)]


def load_policy_text(text: str, *, source: str = "<string>") -> Policy:
    """The policy in ``text``; raises :class:`PolicyError` with every finding if it is invalid."""
    report = check_text(text, source=source)
    if report.policy is None:
        raise PolicyError(list(report.errors), list(report.warnings))
    return report.policy


def load_policy(path: str | Path) -> Policy:
    """The policy in the file at ``path``; raises :class:`PolicyError` if it is missing or invalid."""
    report = check_file(Path(path))
    if report.policy is None:
        raise PolicyError(list(report.errors), list(report.warnings))
    return report.policy

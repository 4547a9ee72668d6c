"""What goes wrong with a policy, said so a person can fix it.

Exception tree::

    ValueError
    └── PolicyError        a policy document was refused; ``.errors`` / ``.warnings`` say why

Every finding is an :class:`Issue` with a stable ``code`` (listed in :data:`CODES`, documented
in ``docs/policy.md``), a place (file, 1-based line and column, JSON path) and a message.
Findings are collected, not raised one at a time, so an author fixes a file in one pass.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from engine.policy._model import Policy

__all__ = ["CODES", "MAX_ISSUES", "Issue", "PolicyError", "Report", "Severity", "printable"]

Severity = Literal["error", "warning"]

#: At most this many findings per file; past it one ``policy.too-many-errors`` closes the list.
MAX_ISSUES = 50

#: Every code the engine emits, with what it means. Stable: tools and tests match on them.
CODES: dict[str, str] = {
    "file.not-found": "the path does not exist",
    "file.unreadable": "the file cannot be read or is not UTF-8 text",
    "file.too-large": "the file exceeds the size cap",
    "yaml.syntax": "the text is not well-formed YAML",
    "yaml.multiple-documents": "the file holds more than one YAML document",
    "yaml.empty": "the file holds no document",
    "yaml.duplicate-key": "a mapping names the same key twice",
    "yaml.alias": "anchors and aliases (&name / *name) are not allowed",
    "yaml.tag": "an explicit YAML tag other than the plain JSON types",
    "yaml.key-type": "a mapping key is not a string",
    "yaml.too-deep": "the document nests deeper than the cap",
    "schema.unknown-key": "a key the language does not have",
    "schema.missing-key": "a required key is missing",
    "schema.type": "a value of the wrong type",
    "schema.value": "a value outside the allowed set",
    "schema.pattern": "a string of the wrong form (names, durations)",
    "schema.range": "a number outside its range",
    "schema.empty": "an empty string or list where something is needed",
    "schema.duplicate-item": "a list repeats an item",
    "schema.invalid": "any other schema violation",
    "rule.duplicate-name": "two rules share a name",
    "rule.unreachable": "(warning) an earlier rule catches every call this rule would",
    "rule.never-acts": "(warning) the rule matches only providers the engine leaves untouched",
    "cache.breakpoints-need-explicit": "breakpoints given while the cache mode is not explicit",
    "cache.explicit-needs-breakpoints": "cache mode explicit with no breakpoints",
    "cache.too-many-breakpoints": "more than 4 breakpoints",
    "batch.max-wait-exceeds-deadline": "maxWait is longer than deadline",
    "policy.too-many-errors": "the list of findings was cut short",
}


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Control, format (bidi overrides, zero-width), separator and surrogate characters.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every character that could forge or hide a line in a terminal or CI
    log written as an escape (``\\n``, ``\\x1b``, ``\\u202e``): a key or a file name from
    a policy must never start a line of its own in the output."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding. ``path`` is a JSON path such as ``$.spec.rules[0].cache.ttl``."""

    code: str
    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        """``file:line:column: code: message``, the form editors and CI logs link to."""
        return f"{self.file}:{self.line}:{self.column}: {self.code}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.path, self.code)


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of checking one document: the policy if it is valid, and every finding."""

    policy: Policy | None
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    source: str = "<string>"

    @property
    def valid(self) -> bool:
        return not self.errors and self.policy is not None


class PolicyError(ValueError):
    """A policy was refused. ``errors`` and ``warnings`` hold every finding, sorted by place."""

    def __init__(self, errors: list[Issue], warnings: list[Issue] | None = None) -> None:
        self.errors: list[Issue] = list(errors)
        self.warnings: list[Issue] = list(warnings or [])
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in policy"
        return "\n".join([head, *(f"  {issue.format()}" for issue in self.errors)])


@dataclass(slots=True)
class IssueList:
    """Collects findings for one file, capped, and hands them back sorted."""

    file: str
    items: list[Issue] = field(default_factory=list)

    def add(
        self,
        code: str,
        where: tuple[int, int],
        path: str,
        message: str,
        severity: Severity = "error",
    ) -> None:
        if code not in CODES:  # a programming error, caught by the tests
            raise KeyError(f"undeclared issue code {code!r}")
        file, path, message = printable(self.file), printable(path), printable(message)
        self.items.append(Issue(code, file, where[0], where[1], path, message, severity))

    def split(self) -> tuple[tuple[Issue, ...], tuple[Issue, ...]]:
        """(errors, warnings), each sorted by place, deduplicated and capped."""
        unique = sorted(set(self.items), key=Issue.sort_key)
        errors = [i for i in unique if i.severity == "error"]
        warnings = [i for i in unique if i.severity == "warning"]
        if len(errors) > MAX_ISSUES:
            last = errors[MAX_ISSUES - 1]
            cut = Issue(
                "policy.too-many-errors",
                printable(self.file),
                last.line,
                last.column,
                last.path,
                f"{len(errors) - MAX_ISSUES + 1} more errors not shown; fix these first",
            )
            errors = [*errors[: MAX_ISSUES - 1], cut]
        return tuple(errors), tuple(warnings[:MAX_ISSUES])

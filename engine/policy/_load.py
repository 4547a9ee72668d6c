"""Read policy YAML into plain JSON-like data plus a map of where each value was written.

Why not ``yaml.safe_load``: it silently keeps the last of two equal keys, reads
``mode: off`` as the boolean ``False`` (YAML 1.1), expands aliases without limit and
forgets where things were. Here a :class:`_Loader` resolves plain scalars by the
YAML 1.2 core schema only (``null``, ``true``/``false``, numbers; ``yes``/``no``/``on``/
``off`` stay strings, see ``docs/adr/0003-yaml-scalars-as-written.md``), refuses aliases
and deep nesting while composing, and the walk below builds the data itself so it can
report duplicate keys, foreign tags and non-string keys with their line and column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.policy._errors import IssueList
from engine.policy._paths import child_path

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Loaded", "SourceMap", "load_yaml"]

#: A policy is a page of YAML; a thousand rules fit in well under this.
MAX_BYTES = 1024 * 1024
#: Deeper nesting than any policy needs; guards the recursive composer.
MAX_DEPTH = 32

_CORE = "tag:yaml.org,2002:"
_COLLECTION_TAGS = frozenset({_CORE + "map", _CORE + "seq"})
_INT_DEC = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
_NULL = re.compile(r"^(~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")


_ALIAS_MESSAGE = "aliases (*name) are not allowed in a policy; write the value out in full"
_DEEP_MESSAGE = f"the document nests deeper than {MAX_DEPTH} levels"


class _Refused(yaml.MarkedYAMLError):
    """Raised while composing for input the loader will not take (aliases, deep nesting)."""

    def __init__(self, code: str, mark: Any, message: str) -> None:
        super().__init__(problem=message, problem_mark=mark)
        self.code = code


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalar resolution, no aliases and a depth cap."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused("yaml.alias", event.start_mark, _ALIAS_MESSAGE)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Refused("yaml.too-deep", mark, _DEEP_MESSAGE)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _core_resolvers(loader: type[yaml.resolver.BaseResolver]) -> None:
    """Drop YAML 1.1's implicit resolvers from ``loader``; install the YAML 1.2 core ones."""
    loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in (
        ("null", _NULL, ["~", "n", "N", ""]),
        ("bool", _BOOL, list("tTfF")),
        (
            "int",
            re.compile(f"{_INT_DEC.pattern}|{_INT_OCT.pattern}|{_INT_HEX.pattern}"),
            list("-+0123456789"),
        ),
        ("float", re.compile(f"{_FLOAT.pattern}|{_INF.pattern}|{_NAN.pattern}"), list("-+.0123456789")),
    ):
        loader.add_implicit_resolver(_CORE + tag, pattern, first)


_core_resolvers(_Loader)

if yaml.__with_libyaml__:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _FastLoader(CParser, yaml.resolver.BaseResolver):
        """libyaml's parser and composer (a 1 MiB policy in a third of a second, where the
        pure-Python :class:`_Loader` takes several), with the same core resolvers. It cannot
        refuse aliases or deep nesting while composing, so :func:`_screen` does first."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.resolver.BaseResolver.__init__(self)

    _core_resolvers(_FastLoader)


@dataclass(slots=True)
class SourceMap:
    """1-based (line, column) of each value and of each mapping key, by JSON path."""

    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)

    def value(self, path: str) -> tuple[int, int]:
        """Where the value at ``path`` was written, or its nearest written ancestor."""
        while path not in self.values and path != "$":
            path = _parent(path)
        return self.values.get(path, (1, 1))

    def key(self, path: str) -> tuple[int, int]:
        return self.keys.get(path) or self.value(path)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else "$"


@dataclass(slots=True)
class Loaded:
    data: Any
    where: SourceMap
    ok: bool


def _mark(node: Node | yaml.Mark | None) -> tuple[int, int]:
    mark = node.start_mark if isinstance(node, Node) else node
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def load_yaml(text: str, issues: IssueList) -> Loaded:
    """Parse ``text``; findings go to ``issues``. ``ok`` is False when nothing usable came out."""
    where = SourceMap()
    hidden = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if hidden is not None:  # lone surrogates included: checked before anything encodes the text
        ch = hidden.group()
        issues.add(
            "yaml.syntax",
            position(text, hidden.start()),
            "$",
            f"the character U+{ord(ch):04X} ({ch!a}) is not allowed in YAML text; "
            "remove it or write it escaped in a double-quoted string",
        )
        return Loaded(None, where, False)
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        issues.add("file.too-large", (1, 1), "$", f"the policy is {size} bytes; the cap is {MAX_BYTES}")
        return Loaded(None, where, False)
    try:
        node = _compose(text)
    except _Refused as refused:
        issues.add(refused.code, _mark(refused.problem_mark), "$", str(refused.problem))
        return Loaded(None, where, False)
    except yaml.MarkedYAMLError as exc:
        _syntax(exc, issues)
        return Loaded(None, where, False)
    except yaml.reader.ReaderError as exc:
        message = f"the character {exc.character!a} is not allowed in YAML text"
        issues.add("yaml.syntax", position(text, exc.position), "$", message)
        return Loaded(None, where, False)
    if node is None:
        message = "the file holds no YAML document; a policy starts with apiVersion"
        issues.add("yaml.empty", (1, 1), "$", message)
        return Loaded(None, where, False)
    return Loaded(_Walker(where, issues).build(node, "$"), where, True)


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _compose(text: str) -> Node | None:
    if not yaml.__with_libyaml__:
        slow = _Loader(text)
        try:
            return slow.get_single_node()
        finally:
            slow.dispose()
    _screen(text)
    loader = _FastLoader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


_OPEN = yaml.MappingStartEvent | yaml.SequenceStartEvent
_CLOSE = yaml.MappingEndEvent | yaml.SequenceEndEvent


def _screen(text: str) -> None:
    """Refuse aliases and nesting deeper than :data:`MAX_DEPTH` from libyaml's event stream
    (flat, so no recursion), before its recursive composer sees the document."""
    parser = _FastLoader(text)
    depth = 0
    try:
        while not isinstance(event := parser.get_event(), yaml.StreamEndEvent | None):
            if isinstance(event, yaml.AliasEvent):
                raise _Refused("yaml.alias", event.start_mark, _ALIAS_MESSAGE)
            if isinstance(event, _CLOSE):
                depth -= 1
            elif isinstance(event, _OPEN | yaml.ScalarEvent):
                if depth + 1 > MAX_DEPTH:
                    raise _Refused("yaml.too-deep", event.start_mark, _DEEP_MESSAGE)
                depth += isinstance(event, _OPEN)
    finally:
        parser.dispose()


def _syntax(exc: yaml.MarkedYAMLError, issues: IssueList) -> None:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "malformed YAML"
    if "expected a single document" in (exc.context or ""):
        issues.add(
            "yaml.multiple-documents",
            _mark(mark),
            "$",
            "the file holds more than one YAML document ('---'); put one policy per file",
        )
        return
    context = f" ({exc.context})" if exc.context else ""
    issues.add("yaml.syntax", _mark(mark), "$", f"YAML syntax error: {problem}{context}")


class _Walker:
    """Turns composed nodes into data, recording positions and reporting what YAML let through."""

    def __init__(self, where: SourceMap, issues: IssueList) -> None:
        self.where = where
        self.issues = issues

    def build(self, node: Node, path: str) -> Any:
        self.where.values[path] = _mark(node)
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            self._foreign_tag(node, path, "a " + ("mapping" if isinstance(node, MappingNode) else "list"))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            sub = child_path(path, key)
            if key in out:
                first = self.where.keys.get(sub, (0, 0))[0]
                self.issues.add(
                    "yaml.duplicate-key",
                    _mark(key_node),
                    sub,
                    f'duplicate key "{key}" (first written on line {first}); a key may appear once',
                )
            self.where.keys[sub] = self.where.keys.get(sub, _mark(key_node))
            out[key] = self.build(value_node, sub)
        return out

    def _key(self, node: Node, path: str) -> str:
        if isinstance(node, ScalarNode):
            value = self._scalar(node, path)
            if isinstance(value, str):
                return value
            shown = node.value or "(empty)"
        else:
            shown = "a " + ("list" if isinstance(node, SequenceNode) else "mapping")
        self.issues.add(
            "yaml.key-type",
            _mark(node),
            path,
            f"mapping keys must be strings, got {shown}; quote it if it is meant as text",
        )
        return str(getattr(node, "value", ""))

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        kind = node.tag[len(_CORE) :] if node.tag.startswith(_CORE) else None
        text: str = node.value
        try:
            if kind == "str":
                return text
            if kind == "null" and _NULL.match(text):
                return None
            if kind == "bool" and _BOOL.match(text):
                return text.lower() == "true"
            if kind == "int":
                return _to_int(text)
            if kind == "float":
                return _to_float(text)
        except ValueError:
            pass
        self._foreign_tag(node, path, repr(text))
        return text

    def _foreign_tag(self, node: Node, path: str, what: str) -> None:
        self.issues.add(
            "yaml.tag",
            _mark(node),
            path,
            f"the tag {node.tag} on {what} is not allowed; a policy holds only strings, "
            "numbers, true/false, null, lists and mappings",
        )


def _to_int(text: str) -> int:
    if _INT_DEC.match(text):
        return int(text, 10)
    if _INT_OCT.match(text):
        return int(text[2:], 8)
    if _INT_HEX.match(text):
        return int(text[2:], 16)
    raise ValueError(text)


def _to_float(text: str) -> float:
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    if _FLOAT.match(text) or _INT_DEC.match(text):
        return float(text)
    raise ValueError(text)

"""YAML parsed with positions, refusing what PyYAML would silently accept.

PyYAML's ``safe_load`` forgets where values came from and keeps the last of two duplicate keys.
Here the node tree (``yaml.compose``) is walked by hand: every value and every key keeps its line
and column, so every later check can point at the exact spot, and a duplicate key is a problem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stokline.config.problems import Problem, pointer_of

Path_ = tuple[str | int, ...]

# A real mapping file is a few kilobytes; this bounds the work a hostile file can cause.
MAX_CHARS = 1_000_000


@dataclass(frozen=True)
class Where:
    line: int
    column: int


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of the document is, by document path."""

    values: dict[Path_, Where] = field(default_factory=dict)
    keys: dict[Path_, Where] = field(default_factory=dict)
    # The source text of plain (unquoted) scalars, for hints such as "quote 02:00".
    plain: dict[Path_, str] = field(default_factory=dict)

    def value(self, path: Path_) -> Where:
        """The position of the value at ``path``, or of its nearest ancestor that has one."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Where(1, 1))

    def key(self, path: Path_) -> Where:
        """The position of the key naming ``path`` (falls back to the value, then ancestors)."""
        if path in self.keys:
            return self.keys[path]
        return self.value(path)


def _where(node: Node) -> Where:
    return Where(node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    def __init__(self, filename: str):
        self.filename = filename
        self.srcmap = SourceMap()
        self.problems: list[Problem] = []
        self._scalars = SafeConstructor()

    def problem(self, where: Where, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(
            Problem(self.filename, where.line, where.column, pointer_of(path), message, hint)
        )

    def walk(self, node: Node, path: Path_) -> object:
        self.srcmap.values[path] = _where(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _scalar(self, node: ScalarNode, path: Path_) -> object:
        if node.style is None:
            self.srcmap.plain[path] = node.value
        try:
            value = self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. an invalid !!int
            self.problem(_where(node), path, f"cannot read this value: {exc}")
            return node.value
        if isinstance(value, dt.date | dt.datetime):
            # Dates are strings in JSON; keep what was written.
            return node.value
        if isinstance(value, bytes):
            return node.value
        return value

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, object]:
        out: dict[str, object] = {}
        first_seen: dict[str, Where] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(
                    _where(key_node), path, "a key must be a plain name, not a list or mapping"
                )
                continue
            key = key_node.value
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(
                    _where(key_node),
                    path,
                    "YAML merge keys (<<) are not supported",
                    "write the keys out; anchors (&name) and aliases (*name) are fine",
                )
                continue
            child = (*path, key)
            if key in first_seen:
                self.problem(
                    _where(key_node),
                    child,
                    f"duplicate key '{key}' (first at line {first_seen[key].line})",
                    "YAML would silently keep only the last one; remove one of them",
                )
                continue
            first_seen[key] = _where(key_node)
            self.srcmap.keys[child] = _where(key_node)
            out[key] = self.walk(value_node, child)
        return out


def _syntax_problem(filename: str, exc: yaml.YAMLError) -> Problem:
    what = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if "end of stream" in what and getattr(exc, "context_mark", None):
        # The end of the file is not where the mistake is: the unclosed quote or bracket is.
        mark = exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {what}" + (f" ({context})" if context else "")
    hint = None
    if "\\t" in what or "'\\t'" in message or "\t" in what:
        hint = "indent with spaces, not tabs"
    elif "found unexpected end of stream" in what or "found unexpected end" in message:
        hint = "a quote or bracket is not closed"
    elif "mapping values are not allowed" in what:
        hint = "check the indentation, or quote a value that contains ': '"
    elif "expected <block end>" in message:
        hint = "check the indentation of this line against the one above"
    return Problem(filename, line, column, "/", message, hint)


def parse_yaml(text: str, filename: str) -> tuple[object, SourceMap, list[Problem]]:
    """Parse one YAML document; return its data, where everything is, and the problems."""
    if len(text) > MAX_CHARS:
        message = f"the file is too large for a mapping file ({len(text):,} characters; at most {MAX_CHARS:,})"
        return None, SourceMap(), [Problem(filename, 1, 1, "/", message)]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, SourceMap(), [Problem(filename, 1, 1, "/", "the file is empty")]
        walker = _Walker(filename)
        data = walker.walk(node, ())
    except yaml.YAMLError as exc:
        return None, SourceMap(), [_syntax_problem(filename, exc)]
    except RecursionError:
        return (
            None,
            SourceMap(),
            [Problem(filename, 1, 1, "/", "the file nests too deeply to be a mapping file")],
        )
    return data, walker.srcmap, walker.problems

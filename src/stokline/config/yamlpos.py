"""YAML parsed with positions, refusing what PyYAML would silently accept.

PyYAML's ``safe_load`` forgets where values came from and keeps the last of two duplicate keys.
Here the node tree (``yaml.compose``) is walked by hand: every value and every key keeps its line
and column, so every later check can point at the exact spot, and a duplicate key is a problem.
A value that cannot be read (an unknown tag such as ``!env X``) is one problem, and its path is
kept in ``SourceMap.unreadable`` so that later checks do not report it a second time.

Also here, at the bottom of the loader: `decode_text` (a file that is not UTF-8 says so, and what
it looks like instead) and `visible` (invisible and direction-changing characters in a problem
are shown as escapes such as ``\\u202e``, so a message never reads differently from its text).
"""

from __future__ import annotations

import codecs
import datetime as dt
import unicodedata
from dataclasses import dataclass, field

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stokline.config.problems import Problem, pointer_of

Path_ = tuple[str | int, ...]

# A real mapping file is a few kilobytes; this bounds the work a hostile file can cause.
MAX_CHARS = 1_000_000
# Values an alias (*name) may repeat, in all. Aliases of aliases multiply: nine levels of nine
# make a billion values out of a few lines ("billion laughs"), so expansion has a budget.
MAX_ALIAS_VALUES = 10_000


class _AliasBomb(Exception):
    def __init__(self, where: Where):
        self.where = where


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
    # Values already reported as unreadable (an unknown tag): no other check speaks of them.
    unreadable: set[Path_] = field(default_factory=set)

    def is_unreadable(self, path: Path_) -> bool:
        """True when ``path`` or one of its ancestors was reported as unreadable."""
        return any(path[: len(p)] == p for p in self.unreadable)

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
        self._seen: set[int] = set()  # nodes walked once; an alias walks its node again
        self._repeated = 0

    def problem(self, where: Where, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(
            Problem(
                self.filename,
                where.line,
                where.column,
                visible(pointer_of(path)),
                visible(message),
                visible(hint) if hint else hint,
            )
        )

    def walk(self, node: Node, path: Path_) -> object:
        if id(node) in self._seen:
            self._repeated += 1
            if self._repeated > MAX_ALIAS_VALUES:
                raise _AliasBomb(_where(node))
        else:
            self._seen.add(id(node))
        self.srcmap.values[path] = _where(node)
        if not isinstance(node, ScalarNode) and node.tag.startswith("!"):
            self._tagged(node, path)
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _tagged(self, node: Node, path: Path_) -> None:
        """A value with an application tag (``!env X``): YAML cannot read it, and we do not."""
        self.srcmap.unreadable.add(path)
        tag = node.tag
        if tag.lstrip("!") in ("env", "secret", "prefect_secret") and isinstance(node, ScalarNode):
            name = node.value or "NAME"
            hint = f"write {{{tag.lstrip('!')}: {name}}} — a mapping, not a tag"
        else:
            hint = "remove the tag; a mapping file uses plain YAML values only"
        self.problem(
            _where(node),
            path,
            f"cannot read this value: the YAML tag '{tag}' is not supported",
            hint,
        )

    def _scalar(self, node: ScalarNode, path: Path_) -> object:
        if node.style is None:
            self.srcmap.plain[path] = node.value
        if node.tag.startswith("!"):
            self._tagged(node, path)
            return None
        try:
            value = self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. an invalid !!int
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.srcmap.unreadable.add(path)
            self.problem(_where(node), path, f"cannot read this value: {what}")
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


# Characters a reader cannot see, or that reorder what is shown around them (bidi overrides, the
# byte-order mark, zero-width joiners, controls): a message shows them as escapes instead.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def visible(text: str) -> str:
    """``text`` with invisible and direction-changing characters written as ``\\uXXXX``."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        if unicodedata.category(char) in _HIDDEN_CATEGORIES:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian, with a byte-order mark)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian, with a byte-order mark)"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian, with a byte-order mark)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian, with a byte-order mark)"),
)
_RESAVE = "save it as UTF-8 (most editors: Save with Encoding → UTF-8; or iconv -t UTF-8)"


def _looks_like(raw: bytes) -> str | None:
    """What a file that is not UTF-8 seems to be, from its first bytes."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    head = raw[:200]
    if len(head) >= 4 and head.count(0) * 3 >= len(head):  # ASCII text with a NUL in every pair
        return "UTF-16 (no byte-order mark)"
    return None


def decode_text(raw: bytes, filename: str) -> tuple[str | None, Problem | None]:
    """The text of a mapping file's bytes, or the one problem saying why it is not UTF-8.

    UTF-16 and UTF-32 (what some Windows editors save) are named as such, at 1:1; any other
    byte that is not UTF-8 (Latin-1, Windows-1252, binary) is pointed at by line and column.
    """
    looks = _looks_like(raw)
    if looks is not None:
        message = f"cannot read the file: it is not UTF-8, it looks like {looks}"
        return None, Problem(filename, 1, 1, "/", message, _RESAVE)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        column = len(before[start:].decode("utf-8", errors="replace")) + 1
        byte = raw[exc.start]
        guess = "; saved as Latin-1 or Windows-1252?" if byte >= 0x80 else ""
        message = f"cannot read the file: it is not UTF-8 (byte 0x{byte:02x} here{guess})"
        return None, Problem(filename, line, column, "/", message, _RESAVE)


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


def _reader_problem(filename: str, text: str, exc: yaml.reader.ReaderError) -> Problem:
    """A character YAML refuses (NUL, other control characters), at its line and column."""
    at = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
    message = f"YAML syntax error: unacceptable character #x{code:04x}: {exc.reason}"
    hint = "remove it; a mapping file is plain UTF-8 text without control characters"
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
    except yaml.reader.ReaderError as exc:
        return None, SourceMap(), [_reader_problem(filename, text, exc)]
    except yaml.YAMLError as exc:
        return None, SourceMap(), [_syntax_problem(filename, exc)]
    except _AliasBomb as bomb:
        message = f"the file's aliases (*name) expand to more than {MAX_ALIAS_VALUES:,} values"
        hint = "aliases of aliases multiply; write the repeated values out"
        where = bomb.where
        return None, SourceMap(), [Problem(filename, where.line, where.column, "/", message, hint)]
    except RecursionError:
        return (
            None,
            SourceMap(),
            [Problem(filename, 1, 1, "/", "the file nests too deeply to be a mapping file")],
        )
    return data, walker.srcmap, walker.problems

"""The Stokly list filter language: a small recursive-descent parser and its evaluator.

Grammar (the subset seen in working client code)::

    expr       := and_expr ("||" and_expr)*
    and_expr   := primary ("&&" primary)*
    primary    := "(" expr ")" | comparison
    comparison := "[" field "]" op "{" literal "}"
    op         := "==" | "!=" | "=*" | "::" | ">=" | "<="
    literal    := "@null;" | "@string;" text | text        (for "=*": text ("," text)*)

`field` may be dotted (``salePrice.amount``). Inside a literal a backslash escapes the next
character, so ``\\}`` and ``\\,`` are literal. The record's value decides how a literal compares:
numbers and booleans numerically (``[default]=={1}`` matches ``true``) unless the literal is forced
with ``@string;``, strings as strings, and two ISO-8601 timestamps as moments. A list-valued field matches when
any element matches (``!=`` when none does). ``::`` (contains) is case-insensitive; every other
comparison is exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["FilterError", "Predicate", "compile_filter", "equality_terms", "lookup", "parse_filter"]

Predicate = Callable[[dict[str, Any]], bool]

_OPS = ("==", "!=", "=*", "::", ">=", "<=")
_NULL = object()
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}|$)")


class FilterError(ValueError):
    """A filter expression that cannot be parsed; the message names the position."""


@dataclass(frozen=True)
class Literal:
    """One value inside braces; `forced_string` disables numeric comparison."""

    value: Any  # str, or _NULL
    forced_string: bool = False


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "&&" or "||"
    operands: tuple[Node, ...]


Node = Comparison | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> FilterError:
        return FilterError(f"invalid filter at position {self.pos}: {message}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip_ws()
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.peek(token):
            found = self.text[self.pos : self.pos + 10] or "end of filter"
            raise self.error(f"expected '{token}', found '{found}'")
        self.pos += len(token)

    def parse(self) -> Node:
        self.skip_ws()
        if self.pos == len(self.text):
            raise self.error("empty expression")
        node = self.expr()
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error(f"unexpected '{self.text[self.pos : self.pos + 10]}'")
        return node

    def expr(self) -> Node:
        operands = [self.and_expr()]
        while self.peek("||"):
            self.pos += 2
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("||", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.primary()]
        while self.peek("&&"):
            self.pos += 2
            operands.append(self.primary())
        return operands[0] if len(operands) == 1 else BoolOp("&&", tuple(operands))

    def primary(self) -> Node:
        if self.peek("("):
            self.pos += 1
            node = self.expr()
            self.expect(")")
            return node
        if self.peek("["):
            return self.comparison()
        found = self.text[self.pos : self.pos + 10] or "end of filter"
        raise self.error(f"expected '[field]' or '(', found '{found}'")

    def comparison(self) -> Comparison:
        self.expect("[")
        end = self.text.find("]", self.pos)
        if end < 0:
            raise self.error("unterminated field name, missing ']'")
        field = self.text[self.pos : end].strip()
        if not field:
            raise self.error("empty field name")
        self.pos = end + 1
        self.skip_ws()
        op = next((o for o in _OPS if self.text.startswith(o, self.pos)), None)
        if op is None:
            raise self.error(
                f"expected an operator after [{field}] (one of {', '.join(_OPS)}), "
                f"found '{self.text[self.pos : self.pos + 5] or 'end of filter'}'"
            )
        self.pos += len(op)
        self.expect("{")
        values = self.literals(many=op == "=*")
        return Comparison(field, op, tuple(values))

    def literals(self, *, many: bool) -> list[Literal]:
        values: list[Literal] = []
        buf: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.error("unterminated value, missing '}'")
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                buf.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "}" or (ch == "," and many):
                values.append(_literal("".join(buf)))
                buf = []
                self.pos += 1
                if ch == "}":
                    return values
                continue
            buf.append(ch)
            self.pos += 1


def _literal(raw: str) -> Literal:
    if raw == "@null;":
        return Literal(_NULL)
    if raw.startswith("@string;"):
        return Literal(raw[len("@string;") :], forced_string=True)
    return Literal(raw.strip())


def parse_filter(text: str) -> Node:
    """Parse `text` into an expression tree, raising `FilterError` with the position."""
    return _Parser(text).parse()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def lookup(doc: dict[str, Any], field: str) -> Any:
    """The value at a dotted path of a record (None when any step is missing)."""
    value: Any = doc
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _as_moment(text: str) -> datetime | None:
    """An ISO-8601 date or timestamp as an aware datetime (naive means UTC), else None."""
    if not _ISO_DATE.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(value: Any, literal: Literal) -> int | None:
    """Three-way compare a record value with a literal; None when they are not comparable.

    The record's type decides: numbers and booleans compare numerically, strings as strings
    (so a SKU "0012" never equals "12"), except that two ISO-8601 timestamps compare as moments
    (``2025-05-28T11:46`` against a stored ``2025-05-28T11:46:00.000Z``).
    """
    if literal.value is _NULL or value is None:
        return None
    if not literal.forced_string and not isinstance(value, str):
        left, right = _number(value), _number(literal.value)
        if left is not None and right is not None:
            return (left > right) - (left < right)
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = value if isinstance(value, str) else str(value)
    if not literal.forced_string:
        left_moment, right_moment = _as_moment(text), _as_moment(literal.value)
        if left_moment is not None and right_moment is not None:
            return (left_moment > right_moment) - (left_moment < right_moment)
    return (text > literal.value) - (text < literal.value)


def _equals(value: Any, literal: Literal) -> bool:
    if literal.value is _NULL:
        return value is None
    return _compare(value, literal) == 0


def _match_scalar(value: Any, op: str, values: tuple[Literal, ...]) -> bool:
    if op == "==":
        return _equals(value, values[0])
    if op == "=*":
        return any(_equals(value, lit) for lit in values)
    if op == "::":
        lit = values[0]
        if value is None or lit.value is _NULL:
            return False
        return str(lit.value).lower() in str(value).lower()
    result = _compare(value, values[0])
    if result is None:
        return False
    return result >= 0 if op == ">=" else result <= 0


def _evaluate(node: Node, doc: dict[str, Any]) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "&&":
            return all(_evaluate(child, doc) for child in node.operands)
        return any(_evaluate(child, doc) for child in node.operands)
    value = lookup(doc, node.field)
    if node.op == "!=":
        if isinstance(value, list):
            return not any(_equals(v, node.values[0]) for v in value)
        return not _equals(value, node.values[0])
    if isinstance(value, list):
        return any(_match_scalar(v, node.op, node.values) for v in value)
    return _match_scalar(value, node.op, node.values)


def compile_filter(text: str | None) -> Predicate:
    """A predicate over records for `text`; an empty or missing filter matches everything."""
    if text is None or not text.strip():
        return lambda doc: True
    node = parse_filter(text)
    return lambda doc: _evaluate(node, doc)


def equality_terms(text: str | None) -> dict[str, set[str]]:
    """Top-level `==`/`=*` terms joined by `&&`: {field: allowed values}, for index look-ups.

    Only terms that every matching record must satisfy are returned, so a caller may narrow the
    candidate set by them and then apply the full predicate.
    """
    if text is None or not text.strip():
        return {}
    node = parse_filter(text)
    terms = node.operands if isinstance(node, BoolOp) and node.op == "&&" else (node,)
    found: dict[str, set[str]] = {}
    for term in terms:
        if isinstance(term, Comparison) and term.op in ("==", "=*"):
            if any(lit.value is _NULL for lit in term.values):
                continue
            found[term.field] = {str(lit.value) for lit in term.values}
    return found

"""Build Stokly list filters (``?filter=``) from values, escaped and validated.

Stokly's filter language, as seen in working client code::

    [sku]=={ACME-1}              equals            eq("sku", "ACME-1")
    [status]!={1}                not equal         ne("status", 1)
    [sku]=*{A,B,C}               one of            one_of("sku", ["A", "B", "C"])
    [email]::{@example.com}      contains          contains("email", "@example.com")
    [issueDate]>={2025-05-28}    at least / most   gte(...), lte(...)
    [deletedAt]=={@null;}        typed literals    is_null("deletedAt")
    a&&b, a||b, (…)              and, or, groups   and_(a, b), or_(a, b), a & b, a | b

Values are escaped, never pasted: a backslash escapes ``}``, ``,`` and itself inside a literal,
and a string that starts with ``@`` or has surrounding blanks is sent as ``{@string;…}`` so the
server cannot read it as a typed literal or trim it. The backslash escape is an assumption [I]
(no public reference documents an escape); the project's Stokly sandbox reads it the same way.
Compound operands are always parenthesised, so the result does not depend on the server's
precedence of ``&&`` over ``||``. Field names are checked against ``[A-Za-z_][A-Za-z0-9_.]*``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "Filter",
    "and_",
    "contains",
    "eq",
    "gte",
    "is_null",
    "literal",
    "lte",
    "ne",
    "not_null",
    "one_of",
    "or_",
]

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Filter:
    """An immutable filter expression; ``str(f)`` is the text for ``?filter=``.

    Combine with :func:`and_`/:func:`or_` or the ``&`` and ``|`` operators.
    """

    __slots__ = ("_compound", "_text")

    def __init__(self, text: str, *, compound: bool = False) -> None:
        self._text = text
        self._compound = compound

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Filter({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __and__(self, other: Filter) -> Filter:
        return and_(self, other)

    def __or__(self, other: Filter) -> Filter:
        return or_(self, other)

    def _operand(self) -> str:
        return f"({self._text})" if self._compound else self._text


def _field(name: str) -> str:
    if not isinstance(name, str) or not _FIELD.match(name):
        raise ValueError(
            f"invalid Stokly filter field {name!r}: use letters, digits, '_' and '.' only"
        )
    return name


def literal(value: Any) -> str:
    """The text of one value inside ``{…}``, escaped.

    Accepts str, int, Decimal, bool, date/datetime and None (``@null;``); floats only when finite.
    """
    if value is None:
        return "@null;"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot filter on a non-finite number: {value!r}")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"cannot filter on a non-finite number: {value!r}")
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError(f"filter values cannot contain control characters: {value!r}")
        escaped = value.replace("\\", "\\\\").replace("}", "\\}").replace(",", "\\,")
        if not value or value.startswith("@") or value != value.strip():
            return "@string;" + escaped
        return escaped
    raise TypeError(f"cannot use a {type(value).__name__} as a Stokly filter value")


def _compare(field: str, op: str, value: Any) -> Filter:
    return Filter(f"[{_field(field)}]{op}{{{literal(value)}}}")


def eq(field: str, value: Any) -> Filter:
    """``[field]=={value}``."""
    return _compare(field, "==", value)


def ne(field: str, value: Any) -> Filter:
    """``[field]!={value}``."""
    return _compare(field, "!=", value)


def gte(field: str, value: Any) -> Filter:
    """``[field]>={value}``."""
    return _compare(field, ">=", value)


def lte(field: str, value: Any) -> Filter:
    """``[field]<={value}``."""
    return _compare(field, "<=", value)


def contains(field: str, value: str) -> Filter:
    """``[field]::{value}`` (substring match)."""
    if not isinstance(value, str) or not value:
        raise ValueError("contains() needs a non-empty string")
    return _compare(field, "::", value)


def is_null(field: str) -> Filter:
    """``[field]=={@null;}``."""
    return eq(field, None)


def not_null(field: str) -> Filter:
    """``[field]!={@null;}``."""
    return ne(field, None)


def one_of(field: str, values: Iterable[Any]) -> Filter:
    """``[field]=*{a,b,c}``; duplicates dropped, order kept. An empty list is an error.

    An empty ``=*{}`` would match nothing (or everything, depending on the server): callers
    must decide that case themselves rather than send it.
    """
    unique = list(dict.fromkeys(literal(v) for v in values))
    if not unique:
        raise ValueError(f"one_of({field!r}, ...) needs at least one value")
    return Filter(f"[{_field(field)}]=*{{{','.join(unique)}}}")


def _join(op: str, filters: tuple[Filter, ...]) -> Filter:
    parts = [f for f in filters if f is not None]
    for part in parts:
        if not isinstance(part, Filter):
            raise TypeError(f"expected Filter operands, got {type(part).__name__}")
    if not parts:
        raise ValueError(f"'{op}' needs at least one filter")
    if len(parts) == 1:
        return parts[0]
    return Filter(op.join(p._operand() for p in parts), compound=True)


def and_(*filters: Filter) -> Filter:
    """All of ``filters`` (``a&&b``)."""
    return _join("&&", filters)


def or_(*filters: Filter) -> Filter:
    """Any of ``filters`` (``a||b``)."""
    return _join("||", filters)

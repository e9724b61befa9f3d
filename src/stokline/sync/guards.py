"""Per-record guards: one malformed record from an API never aborts a whole pass.

The clients refuse records that do not fit their models (and, given ``on_invalid=``, hand them
over one by one instead of failing the page). What a model cannot see is checked here before a
sync works on a record: text that is not valid Unicode (a lone surrogate is valid in Python and in
JSON text, but cannot be sent to an API or written to PostgreSQL) and amounts that are no number —
in the fields a model keeps without declaring them (``discount_allocations[].amount``) and in
webhook bodies, which no model has read. A record found unusable becomes an exception of its own
(``poison_message``) and the rest of the batch goes on; `BAD_DATA` names the failures a sync
still catches around one record's translation, as the last line of that defence.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["BAD_DATA", "describe_failure", "printable", "unusable"]

BAD_DATA: tuple[type[BaseException], ...] = (
    ArithmeticError,  # decimal.InvalidOperation from a "NaN" amount, overflow
    LookupError,
    TypeError,
    ValueError,  # UnicodeError included
    AttributeError,
    RecursionError,
)
"""What one record's bad data raises in code that assumed better; never a connector error."""

# Keys whose string values are amounts (SHOPLINE sends money as strings such as "8.00").
_AMOUNT_KEY = re.compile(
    r"(?:^|_)(?:price|amount|total|tax|discounts?|outstanding|cost|rate|subtotal)$"
)
_MAX_SHOWN = 60


def printable(text: object, limit: int = _MAX_SHOWN) -> str:
    """``text`` safe to show and store: lone surrogates escaped (``\\ud800``), cut to ``limit``."""
    value = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _where(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the record"


def _bad_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _not_an_amount(value: str) -> bool:
    if not value.strip():
        return False
    try:
        return not Decimal(value).is_finite()
    except InvalidOperation:
        return True


def unusable(record: Any) -> str | None:
    """Why ``record`` (a decoded JSON object, or a model's dump) cannot be worked on, or None.

    Finds the first key or text that is not valid Unicode, number that is not finite, and amount
    (by its key's name) that does not read as a finite number; says where it is and what it is,
    escaped. Walks iteratively, so a deeply nested body costs no recursion.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), record)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                if isinstance(key, str) and _bad_text(key):
                    return f"{_where(path)} has a key that is not valid Unicode: {printable(key)!r}"
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            if _bad_text(value):
                return f"{_where(path)} is not valid Unicode text: {printable(value)!r}"
            key = path[-1] if path and isinstance(path[-1], str) else ""
            if _AMOUNT_KEY.search(key) and _not_an_amount(value):
                return f"{_where(path)} is {printable(value)!r}, not an amount"
        elif (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, Decimal) and not value.is_finite()
        ):
            return f"{_where(path)} is {value}, not a number"
    return None


def describe_failure(exc: BaseException) -> str:
    """One line for an unexpected failure on one record's data (``InvalidOperation`` has none)."""
    text = printable(exc, 200) if str(exc) else ""
    if isinstance(exc, InvalidOperation) or text.startswith("[<class"):
        text = "an amount is not a number Decimal can compute with (NaN, or far too large)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

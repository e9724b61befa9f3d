"""The Stokly filter language: a table of expressions and the records they match."""

from __future__ import annotations

import pytest

from stokline.sandbox.stokly.filters import FilterError, compile_filter, equality_terms

RECORDS = [
    {"id": "a", "sku": "TENT-1", "status": 0, "format": 0, "qty": 5, "tags": ["tents", "sale"],
     "createdAt": "2025-05-28T10:00:00.000Z", "email": "ada@example.com", "default": True,
     "price": {"amount": 149.0}, "note": None, "code": "0012"},
    {"id": "b", "sku": "TENT-2", "status": 1, "format": 2, "qty": 0, "tags": ["tents"],
     "createdAt": "2025-05-28T12:30:00.000Z", "email": "bob@example.org", "default": False,
     "price": {"amount": 99.5}, "note": "fragile, {boxed}", "code": "12"},
    {"id": "c", "sku": "STOVE", "status": 0, "format": 0, "qty": 12, "tags": [],
     "createdAt": "2025-06-01T08:00:00.000Z", "email": None, "default": True,
     "price": {"amount": 39.99}, "note": "", "code": "12"},
]  # fmt: skip

CASES = [
    ("", ["a", "b", "c"]),
    ("[sku]=={TENT-1}", ["a"]),
    ("[sku]!={TENT-1}", ["b", "c"]),
    ("[status]=={0}", ["a", "c"]),
    ("[status]!={1}", ["a", "c"]),
    ("[sku]=*{TENT-1,STOVE,NOPE}", ["a", "c"]),
    ("[sku]::{tent}", ["a", "b"]),
    ("[email]::{EXAMPLE.COM}", ["a"]),
    ("[qty]>={5}", ["a", "c"]),
    ("[qty]<={5}", ["a", "b"]),
    ("[createdAt]>={2025-05-28T11:46}", ["b", "c"]),
    ("[createdAt]<={2025-05-28T11:46}", ["a"]),
    ("[createdAt]>={2025-05-28T12:30:00.000001+00:00}", ["c"]),
    ("[createdAt]>={2025-05-28T13:00:00+01:00}", ["b", "c"]),
    ("[createdAt]=={2025-05-28T12:30:00Z}", ["b"]),
    ("[createdAt]<={2025-05-28}", []),
    ("[createdAt]>={@string;2025-05-28T12:30:00Z}", ["c"]),  # lexical: ".000Z" < "Z"
    ("[status]=={0}&&[qty]>={10}", ["c"]),
    ("[sku]=={TENT-2}||[sku]=={STOVE}", ["b", "c"]),
    ("([sku]=={TENT-1}||[sku]=={TENT-2})&&[status]!={1}", ["a"]),
    ("[status]!={1}&&(([format]=={2})||([qty]<={5}))", ["a"]),
    ("[email]=={@null;}", ["c"]),
    ("[email]!={@null;}", ["a", "b"]),
    ("[code]=={12}", ["b", "c"]),
    ("[code]=={@string;0012}", ["a"]),
    ("[tags]=={sale}", ["a"]),
    ("[tags]!={tents}", ["c"]),
    ("[default]=={1}", ["a", "c"]),
    ("[price.amount]>={99.5}", ["a", "b"]),
    ("[note]=={fragile\\, \\{boxed\\}}", ["b"]),
    ("[missing]=={x}", []),
    (" [sku] == {TENT-1} && [status] == {0} ", ["a"]),
]


@pytest.mark.parametrize(("expression", "expected"), CASES)
def test_filter_matches(expression: str, expected: list[str]) -> None:
    predicate = compile_filter(expression)
    assert [r["id"] for r in RECORDS if predicate(r)] == expected


BAD = [
    ("[sku]", "expected an operator"),
    ("[sku]=={TENT", "unterminated value"),
    ("[sku=={x}", "missing ']'"),
    ("sku=={x}", "expected '[field]' or '('"),
    ("[sku]=={x}&&", "expected '[field]' or '('"),
    ("([sku]=={x}", "expected ')'"),
    ("[sku]=={x})", "unexpected ')'"),
    ("[sku]~={x}", "expected an operator"),
    ("[]=={x}", "empty field name"),
    ("[sku]==x", "expected '{'"),
    ("[sku", "missing ']'"),
]


@pytest.mark.parametrize(("expression", "message"), BAD)
def test_bad_filters_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(FilterError, match="invalid filter at position") as info:
        compile_filter(expression)
    assert message in str(info.value)


def test_equality_terms_for_index_lookups() -> None:
    terms = equality_terms("[sourceReferenceId]=*{1,2}&&[sourceId]=={ch}&&[qty]>={1}")
    assert terms == {"sourceReferenceId": {"1", "2"}, "sourceId": {"ch"}}
    assert equality_terms("[a]=={1}||[b]=={2}") == {}

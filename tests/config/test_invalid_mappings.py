"""A table of broken mapping files: each must give exactly the expected located problem.

Every case edits one spot of ``minimal.yaml`` (a small valid mapping) and states the JSON pointer,
line and a fragment of the message it must produce — and that nothing else is reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.config import check_text

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    assert MINIMAL.count(old) == 1, f"edit target must occur once: {old!r}"
    return MINIMAL.replace(old, new)


# (case id, text to replace, replacement, pointer, line, message fragment)
CASES = [
    ("unknown top-level key", "fields:\n", "feilds:\n", "/feilds", 53, "did you mean 'fields'?"),
    ("misspelt required key", "client:\n", "cleint:\n", "/cleint", 2, "did you mean 'client'?"),
    (
        "unknown nested key",
        "  currency: GBP",
        "  curency: GBP",
        "/client/curency",
        5,
        "unknown key 'curency'",
    ),
    (
        "unknown key in a list item",
        "    fulfil_from: Leeds DC",
        "    fulfill_from: Leeds DC",
        "/locations/0/fulfill_from",
        21,
        "did you mean 'fulfil_from'?",
    ),
    ("missing required key", "  name: acme\n", "", "/client", 2, "missing required key 'name'"),
    (
        "missing section",
        "customers:\n  identity: [email, phone]\n  phone_region: GB\n  on_conflict: link\n",
        "",
        "/",
        1,
        "missing required key 'customers'",
    ),
    (
        "wrong type: string for integer",
        "buffer: 2",
        "buffer: two",
        "/locations/0/stock/buffer",
        22,
        "expected a whole number, got a string",
    ),
    (
        "negative buffer",
        "buffer: 2",
        "buffer: -1",
        "/locations/0/stock/buffer",
        22,
        "must be at least 0",
    ),
    (
        "wrong type: list for mapping",
        "  stock: {every: 5m}",
        "  stock: [5m]",
        "/syncs/stock",
        58,
        "expected a mapping, got a list",
    ),
    (
        "number where a string id belongs",
        'shopline_location: "7002"',
        "shopline_location: 7002",
        "/locations/1/shopline_location",
        24,
        'quote it: "7002"',
    ),
    (
        "unquoted time read as base 60",
        'at: "02:00"',
        "at: 2:00",
        "/syncs/finance/at",
        61,
        "YAML reads an unquoted 2:00 as the number 120",
    ),
    (
        "unquoted NO read as false",
        "phone_region: GB",
        "phone_region: NO",
        "/customers/phone_region",
        51,
        "as false",
    ),
    (
        "enum misspelt",
        "match: case_insensitive",
        "match: case-insensitive",
        "/skus/match",
        27,
        "did you mean 'case_insensitive'?",
    ),
    (
        "enum unknown without a close match",
        "on_conflict: link",
        "on_conflict: shrug",
        "/customers/on_conflict",
        52,
        "allowed: link, create, exception",
    ),
    (
        "literal secret",
        "    client_secret: {env: STOKLY_CLIENT_SECRET}",
        "    client_secret: hunter2-value",
        "/connections/stokly/client_secret",
        11,
        "a secret must be a reference",
    ),
    (
        "secret with two sources",
        "access_token: {env: SHOPLINE_ACCESS_TOKEN}",
        "access_token: {env: A, prefect_secret: b}",
        "/connections/shopline/access_token",
        16,
        "exactly one source",
    ),
    (
        "secret env name invalid",
        "webhook_secret: {env: SHOPLINE_APP_SECRET}",
        "webhook_secret: {env: 9BAD}",
        "/connections/shopline/webhook_secret/env",
        17,
        "not in the expected form",
    ),
    (
        "bad api version",
        "api_version: v20251201",
        "api_version: 2025-12-01",
        "/connections/shopline/api_version",
        15,
        "not in the expected form",
    ),
    (
        "bad currency",
        "currency: GBP",
        "currency: pounds",
        "/client/currency",
        5,
        "not in the expected form",
    ),
    (
        "bad client name",
        "  name: acme",
        "  name: Acme Ltd",
        "/client/name",
        3,
        "not in the expected form",
    ),
    (
        "unknown timezone",
        "timezone: Europe/London",
        "timezone: Europe/Londn",
        "/client/timezone",
        4,
        "did you mean 'Europe/London'?",
    ),
    ("version", "version: 1", "version: 2", "/version", 1, "must be 1"),
    (
        "location mapped twice",
        'shopline_location: "7002"',
        'shopline_location: "7001"',
        "/locations/1/shopline_location",
        24,
        "mapped twice (first at line 19)",
    ),
    (
        "Stokly location feeding two",
        "stokly_locations: [Bristol DC]",
        "stokly_locations: [York Store]",
        "/locations/1/stokly_locations/0",
        25,
        "already feeds another SHOPLINE location",
    ),
    (
        "fulfil_from not among the location's",
        "fulfil_from: Leeds DC",
        "fulfil_from: Bristol DC",
        "/locations/0/fulfil_from",
        21,
        "not one of this location's stokly_locations",
    ),
    (
        "two default locations",
        "    stokly_locations: [Bristol DC]",
        "    stokly_locations: [Bristol DC]\n    default: true",
        "/locations/1/default",
        26,
        "a second default location",
    ),
    (
        "SKU overridden twice under the match rule",
        "shopline_sku: STOVE-MINI",
        "shopline_sku: tent-2p-grn",
        "/skus/overrides/1/shopline_sku",
        30,
        "overridden twice",
    ),
    (
        "default shipping missing",
        "  default: {stokly_option: RM48, carrier: royal-mail}\n",
        "",
        "/shipping/on_unmapped",
        38,
        "shipping.default is not given",
    ),
    (
        "default tax class missing",
        "  on_unmapped: exception\npayments:",
        "  on_unmapped: default\npayments:",
        "/tax/on_unmapped",
        44,
        "tax.default_tax_class is not given",
    ),
    (
        "undefined default gateway",
        "  on_unmapped: exception\ncustomers:",
        "  on_unmapped: default\n  default_gateway: shopline_payment\ncustomers:",
        "/payments/default_gateway",
        49,
        "did you mean 'shopline_payments'?",
    ),
    (
        "tax class without ledger account",
        'tax: {standard: "2200"}',
        'tax: {reduced: "2200"}',
        "/syncs/finance/accounts/tax",
        62,
        "tax class 'standard' has no ledger account",
    ),
    (
        "phone identity without region",
        "  phone_region: GB\n",
        "",
        "/customers/identity",
        50,
        "phone_region is not given",
    ),
    (
        "template does not compile",
        'customer_reference: "{{ order.name }}"',
        'customer_reference: "{{ order.name }"',
        "/fields/sale_order/customer_reference",
        55,
        "template does not parse",
    ),
    (
        "template unknown variable",
        'customer_reference: "{{ order.name }}"',
        'customer_reference: "{{ item.name }}"',
        "/fields/sale_order/customer_reference",
        55,
        "unknown variable 'item'",
    ),
    (
        "template reaching Python internals",
        'customer_reference: "{{ order.name }}"',
        'customer_reference: "{{ order.__class__.__mro__ }}"',
        "/fields/sale_order/customer_reference",
        55,
        "names starting with '_' are not allowed",
    ),
    (
        "tracking url template variable",
        "{{ tracking_number }}",
        "{{ tracking_no }}",
        "/shipping/methods/0/tracking_url",
        37,
        "did you mean 'tracking_number'?",
    ),
    (
        "duration without unit",
        "every: 2m, lookback: 2h",
        "every: 2m, lookback: 2",
        "/syncs/orders/lookback",
        59,
        "expected a string, got a number",
    ),
    (
        "duration unit unknown",
        "every: 2m, lookback: 2h",
        "every: 2m, lookback: 2w",
        "/syncs/orders/lookback",
        59,
        "not in the expected form",
    ),
    (
        "schedule too frequent",
        "stock: {every: 5m}",
        "stock: {every: 5s}",
        "/syncs/stock/every",
        58,
        "too frequent",
    ),
    (
        "cron does not parse",
        "stock: {every: 5m}",
        'stock: {cron: "*/5 * * *"}',
        "/syncs/stock/cron",
        58,
        "a cron expression has 5 fields",
    ),
    (
        "cron out of range",
        "stock: {every: 5m}",
        'stock: {cron: "0 24 * * *"}',
        "/syncs/stock/cron",
        58,
        "hour 24 is out of range 0-23",
    ),
    (
        "two schedules",
        "stock: {every: 5m}",
        'stock: {every: 5m, cron: "*/5 * * * *"}',
        "/syncs/stock/cron",
        58,
        "give one of every, cron or at",
    ),
    (
        "no schedule",
        "stock: {every: 5m}",
        "stock: {batch_size: 10}",
        "/syncs/stock",
        58,
        "has no schedule",
    ),
    (
        "bad daily time",
        'at: "02:00"',
        'at: "25:00"',
        "/syncs/finance/at",
        61,
        "not in the expected form",
    ),
    (
        "unknown exception type owner",
        "owners: {unmapped_sku: ecommerce}",
        "owners: {unmaped_sku: ecommerce}",
        "/operating_model/owners/unmaped_sku",
        65,
        "did you mean 'unmapped_sku'?",
    ),
    (
        "unknown team",
        "owners: {unmapped_sku: ecommerce}",
        "owners: {unmapped_sku: marketing}",
        "/operating_model/owners/unmapped_sku",
        65,
        "allowed: operations, finance, ecommerce",
    ),
    (
        "bad escalation email",
        "escalation: {email: ops@acme.example}",
        "escalation: {email: ops}",
        "/operating_model/escalation/email",
        66,
        "not in the expected form",
    ),
    (
        "duplicate item in a list",
        "identity: [email, phone]",
        "identity: [email, email]",
        "/customers/identity",
        50,
        "lists the same item twice",
    ),
    (
        "empty list",
        "stokly_locations: [Bristol DC]",
        "stokly_locations: []",
        "/locations/1/stokly_locations",
        25,
        "needs at least 1 item",
    ),
    (
        "tax rule with neither title nor rate",
        "{shopline_title: VAT 20%, rate: 0.20, stokly_tax_class: standard}",
        "{stokly_tax_class: standard}",
        "/tax/rules/0",
        42,
        "give shopline_title or rate",
    ),
    ("rate above one", "rate: 0.20", "rate: 20", "/tax/rules/0/rate", 42, "must be at most 1"),
    (
        "both base_url and store_handle",
        "    base_url: http://127.0.0.1:8801\n",
        "    base_url: http://127.0.0.1:8801\n    store_handle: acme\n",
        "/connections/shopline/store_handle",
        15,
        "not both",
    ),
    (
        "neither base_url nor store_handle",
        "    base_url: http://127.0.0.1:8801\n",
        "",
        "/connections/shopline",
        13,
        "give base_url or store_handle",
    ),
    (
        "merge key",
        "  currency: GBP\n",
        "  currency: GBP\n  <<: {timezone: Europe/London}\n",
        "/client",
        6,
        "merge keys (<<) are not supported",
    ),
    (
        "duplicate key",
        "  currency: GBP\n",
        "  currency: GBP\n  currency: EUR\n",
        "/client/currency",
        6,
        "duplicate key 'currency' (first at line 5)",
    ),
    (
        "duplicate section",
        "fields:\n",
        "customers: {identity: [email], on_conflict: link}\nfields:\n",
        "/customers",
        53,
        "duplicate key 'customers' (first at line 49)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "pointer", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_mapping_gives_one_precise_problem(old, new, pointer, line, fragment):
    result = check_text(edited(old, new), "acme.yaml")
    assert result.mapping is None
    formatted = [p.format() for p in result.problems]
    assert len(result.problems) == 1, formatted
    problem = result.problems[0]
    assert (problem.pointer, problem.line) == (pointer, line), formatted
    assert fragment in problem.format()
    assert problem.format().startswith(f"acme.yaml:{line}:{problem.column}: {pointer}: ")


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_minimal_mapping_is_valid():
    result = check_text(MINIMAL, "acme.yaml")
    assert result.problems == []
    assert result.mapping is not None and result.mapping.client.name == "acme"


def test_all_problems_are_collected_in_one_pass():
    text = (
        edited("  currency: GBP", "  currency: pounds")
        .replace("buffer: 2", "buffer: -3")
        .replace("match: case_insensitive", "match: fuzzy")
    )
    result = check_text(text, "acme.yaml")
    assert [p.pointer for p in result.problems] == [
        "/client/currency",
        "/locations/0/stock/buffer",
        "/skus/match",
    ]


def test_a_literal_secret_is_never_repeated_in_the_report():
    result = check_text(
        edited("{env: SHOPLINE_APP_SECRET}", "sk_live_do-not-print-me"), "acme.yaml"
    )
    assert len(result.problems) == 1
    assert "do-not-print-me" not in result.problems[0].format()

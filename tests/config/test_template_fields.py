"""Templates may read only fields their records have: refused by `stokline validate` otherwise.

Templates render with ``StrictUndefined``, so a field the record does not have fails on every
order. The records are the connectors' models (a SHOPLINE order dumped from `Order`: every
declared field is there, None when SHOPLINE omitted it), so a template naming a field no model
declares is refused at validation, with the file, line and key, like every other problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.cli import main
from stokline.cli.validate import template_fields
from stokline.config import check_file
from stokline.config.semantics import template_field_problems
from stokline.config.templates import check_template_fields
from stokline.connectors.shopline.models import Order

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings/demo.yaml"

# The order fields SHOPLINE documents (../shared reference, Orders section), and the ones the
# syncs read that it shows elsewhere (discounts, refunds).
DOCUMENTED = [
    "id",
    "name",
    "email",
    "phone",
    "user_id",
    "store_id",
    "currency",
    "presentment_currency",
    "created_at",
    "updated_at",
    "processed_at",
    "order_at",
    "cancelled_at",
    "cancel_reason",
    "status",
    "financial_status",
    "fulfillment_status",
    "total_tax",
    "subtotal_price",
    "total_discounts",
    "current_total_price",
    "total_outstanding",
    "total_tax_set",
    "subtotal_price_set",
    "total_discounts_set",
    "current_total_price_set",
    "taxes_included",
    "tax_lines",
    "tags",
    "note",
    "buyer_note",
    "note_attributes",
    "payment_gateway_names",
    "order_source",
    "pos_location_id",
    "locations",
    "customer",
    "line_items",
    "shipping_lines",
    "shipping_address",
    "billing_address",
    "payment_details",
    "discount_codes",
    "discount_applications",
    "refunds",
]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_order_model_declares_every_documented_field(name: str) -> None:
    assert name in Order.model_fields
    if name != "id":  # the one field an order always has
        assert Order.model_validate({"id": "1"}).model_dump()[name] in (None, [])


SALE_ORDER = template_fields()["sale_order"]

ACCEPTED = [
    "{{ order.buyer_note or '' }}",
    "{{ order.name | replace('#', '') }}",
    "{{ order.customer.addresses[0].city }}",
    "{{ order['order_source'] }}",
    "{{ order.note_attributes[0].name }}",
    "{{ order.shipping_address.district }}",
    "{% for li in order.line_items %}{{ li.sku }} {{ li.variant_title }}{% endfor %}",
    "{{ order.line_items | map(attribute='sku') | join(',') }}",
    "{% set ship = order.shipping_address %}{{ ship.zip }}",
    "{{ customer.email }} {{ client.name }}",
    "{{ order.anything_new if order.anything_new is defined else '' }}",
    "{{ order.name[1:] }}",
]


@pytest.mark.parametrize("source", ACCEPTED)
def test_templates_reading_declared_fields_are_accepted(source: str) -> None:
    assert check_template_fields(source, SALE_ORDER) == []


REFUSED = [
    ("{{ order.nonexistent.deeper }}", "order.nonexistent"),
    ("{{ order.name.deeper }}", "order.name.deeper"),
    ("{{ order.customer.nickname }}", "order.customer.nickname"),
    ("{{ order['nope'] }}", "order.nope"),
    ("{% for li in order.line_items %}{{ li.colour }}{% endfor %}", "li.colour"),
    ("{{ order.line_items | map(attribute='colour') | join }}", "colour"),
    ("{{ customer.nickname }}", "customer.nickname"),
    ("{{ client.nickname }}", "client.nickname"),
]


@pytest.mark.parametrize(("source", "named"), REFUSED)
def test_templates_naming_fields_no_record_has_are_refused(source: str, named: str) -> None:
    [unknown] = check_template_fields(source, SALE_ORDER)
    assert named in unknown.message and unknown.line == 1


def test_a_refused_field_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8").replace(
        "notes: \"{{ order.buyer_note or '' }}\"",
        'notes: "{{ order.nonexistent.deeper }}"',
    )
    path = tmp_path / "bad-field.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "order.nonexistent" in t)
    result = check_file(path)
    [problem] = template_field_problems(result.data, result.srcmap, str(path), template_fields())
    assert (problem.file, problem.line, problem.pointer) == (
        str(path),
        line,
        "/fields/sale_order/notes",
    )
    assert "order.nonexistent" in problem.message
    assert "did you mean" in (problem.hint or "") or "fields here" in (problem.hint or "")


def test_validate_refuses_a_template_naming_a_field_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO.read_text(encoding="utf-8").replace(
        "notes: \"{{ order.buyer_note or '' }}\"",
        'notes: "{{ order.buyer_nots }}"',
    )
    path = tmp_path / "typo.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "buyer_nots" in t)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{path}:{line}:")
    assert "/fields/sale_order/notes" in out and "order.buyer_nots" in out
    assert "did you mean 'buyer_note'" in out


def test_every_shipped_mapping_reads_only_declared_fields() -> None:
    for path in sorted((ROOT / "mappings").glob("*.yaml")):
        result = check_file(path)
        assert result.ok, result.problems
        found = template_field_problems(result.data, result.srcmap, str(path), template_fields())
        assert found == [], found

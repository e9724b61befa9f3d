"""Catalogue translation: Stokly items in, SHOPLINE product and variant fields out, under demo.yaml."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stokline.config import Mapping, load_mapping
from stokline.mapping.translate import Untranslatable
from stokline.sync.catalogue.translate import (
    changed_fields,
    content_hash,
    is_live,
    new_product_payload,
    translate_product,
    translate_variant,
)

ROOT = Path(__file__).resolve().parents[3]
MAPPING = load_mapping(ROOT / "mappings/demo.yaml")


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "itemId": "item-1",
        "sku": "ACME-STOVE-1B",
        "name": "Acme Stove",
        "format": 0,
        "status": 0,
        "barcodes": ["5060123400011"],
        "description": "A stove for British weather.",
        "salePrice": {"amount": Decimal("49.9"), "currency": "GBP"},
        "typeName": "camp",
        "weight": 415,
        "isSold": True,
    }
    return {**base, **fields}


def edited(tmp_path: Path, old: str, new: str) -> Mapping:
    text = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "demo-edited.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_mapping(path)


def test_a_simple_item_becomes_variant_fields_with_decimal_string_prices() -> None:
    assert translate_variant(item(rrp={"amount": Decimal("59"), "currency": "GBP"})) == {
        "price": "49.90",
        "compare_at_price": "59.00",
        "barcode": "5060123400011",
        "weight": 415,
        "weight_unit": "g",
    }


def test_fields_stokly_lacks_are_left_out_never_cleared() -> None:
    bare = item(salePrice=None, barcodes=[" "], weight=None)
    assert translate_variant(bare) == {}


def test_a_float_price_keeps_no_binary_tail() -> None:
    assert translate_variant(item(salePrice={"amount": 0.1 + 0.2}))["price"] == "0.30"
    assert translate_variant(item(weight=Decimal("415.50")))["weight"] == Decimal("415.5")


def test_product_fields_come_from_the_mapping_templates() -> None:
    assert translate_product(MAPPING, item()) == {
        "title": "Acme Stove",
        "body_html": "A stove for British weather.",
        "vendor": "Demo Outdoor",
        "tags": "camp",
        "status": "active",
    }
    # The tags template falls back when the item has no type; an empty description is "".
    fallback = translate_product(MAPPING, item(typeName=None, description=None))
    assert fallback["tags"] == "outdoor" and fallback["body_html"] == ""


def test_tags_are_deduplicated_and_empty_ones_dropped(tmp_path: Path) -> None:
    mapping = edited(
        tmp_path,
        """tags: ["{{ item.typeName or 'outdoor' }}"]""",
        """tags: ["{{ item.typeName }}", "", "{{ item.typeName }}", "{{ client.currency }}"]""",
    )
    assert translate_product(mapping, item())["tags"] == "camp, GBP"


def test_a_template_reading_a_missing_field_is_an_exception_not_an_empty_title(
    tmp_path: Path,
) -> None:
    mapping = edited(tmp_path, 'title: "{{ item.name }}"', 'title: "{{ item.brand.name }}"')
    with pytest.raises(Untranslatable) as caught:
        translate_product(mapping, item())
    assert caught.value.code == "template_failed" and "ACME-STOVE-1B" in caught.value.message


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("archive", {"status": "archived"}), ("unpublish", {"status": "draft"}), ("report", {})],
)
def test_a_removed_item_gets_only_the_status_its_policy_asks_for(
    tmp_path: Path, policy: str, expected: dict[str, str]
) -> None:
    mapping = edited(tmp_path, "on_removed: archive", f"on_removed: {policy}")
    assert translate_product(mapping, item(status=1), live=False) == expected


def test_deleted_and_deactivated_items_are_not_live() -> None:
    assert is_live(item())
    assert not is_live(item(status=1))
    assert not is_live(item(isSold=False))


def test_the_content_hash_is_stable_and_follows_every_value() -> None:
    fields = translate_variant(item())
    assert content_hash(fields) == content_hash(dict(reversed(list(fields.items()))))
    assert content_hash(fields) == content_hash(translate_variant(item()))
    assert content_hash(fields) != content_hash({**fields, "price": "49.91"})
    assert content_hash(fields) != content_hash({k: v for k, v in fields.items() if k != "barcode"})


def test_changed_fields_compares_values_not_spellings() -> None:
    current = {
        "price": "49.90",
        "barcode": "5060123400011",
        "weight": Decimal("415.0"),
        "weight_unit": "g",
        "tags": ["camp"],
        "title": None,
    }
    desired = {**translate_variant(item()), "tags": "camp", "title": ""}
    assert changed_fields(desired, current) == {}
    assert changed_fields({**desired, "price": "44.00"}, current) == {"price": "44.00"}
    assert changed_fields({"compare_at_price": "59.00"}, current) == {"compare_at_price": "59.00"}


def test_a_variable_item_becomes_one_product_with_options_and_variants() -> None:
    parent = item(
        itemId="parent",
        sku="ACME-TENT-2P",
        name="Acme Tent",
        format=2,
        barcodes=[],
        variableAttributes=[{"name": "Colour", "values": ["Green", "Orange"]}],
    )
    green = item(
        itemId="green",
        sku="ACME-TENT-2P-GREEN",
        attributes=[{"name": "Colour", "value": "Green"}],
        variableItemId="parent",
    )
    orange = item(
        itemId="orange",
        sku="ACME-TENT-2P-ORANGE",
        barcodes=["5060123400028"],
        attributes=[{"name": "Colour", "value": "Orange"}],
        variableItemId="parent",
    )
    body = new_product_payload(MAPPING, parent, [("TENT-2P-GRN", green), (orange["sku"], orange)])
    assert body["title"] == "Acme Tent" and body["status"] == "active"
    assert body["options"] == [{"name": "Colour", "values": ["Green", "Orange"]}]
    assert [(v["sku"], v["option1"], v["barcode"]) for v in body["variants"]] == [
        ("TENT-2P-GRN", "Green", "5060123400011"),
        ("ACME-TENT-2P-ORANGE", "Orange", "5060123400028"),
    ]
    assert body["variants"][0]["price"] == "49.90"

"""Stokly items as SHOPLINE products and variants: the fields the catalogue sync writes.

Pure: the caller passes Stokly items as plain dicts (``Item.model_dump()``, unknown fields
included) and gets back the SHOPLINE fields, or an `Untranslatable`. Two levels, because SHOPLINE
writes them with two endpoints: product fields (title, body_html, vendor, tags, status) come from
the item a SHOPLINE product stands for — the variable item, or a simple item on its own — and
variant fields (price, compare-at price, barcode, weight) from each simple item. A field Stokly
has no value for is left out, so it is never cleared in SHOPLINE by accident.

`content_hash` is taken over exactly what would be written: the sync writes an item only when
its hash differs from the hash stored with its link at the last write.

Stokly contracts marked [I] in the API notes are kept here, in one place: the compare-at price
(``rrp``), weights in grams, and "deactivated" meaning ``isSold: false``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from stokline.config.models import Mapping as MappingFile
from stokline.config.templates import TemplateError
from stokline.mapping.translate import Untranslatable

__all__ = [
    "PRODUCT_FIELDS",
    "VARIANT_FIELDS",
    "changed_fields",
    "content_hash",
    "is_live",
    "new_product_payload",
    "removed_status",
    "translate_product",
    "translate_variant",
]

PRODUCT_FIELDS = ("title", "body_html", "vendor", "tags", "status")
VARIANT_FIELDS = ("price", "compare_at_price", "barcode", "weight", "weight_unit")

COMPARE_AT_FIELD = "rrp"  # [I] Stokly's recommended retail price, {amount, currency}
WEIGHT_UNIT = "g"  # [I] Stokly item weights are grams
_CENTS = Decimal("0.01")
# How each on_removed policy leaves a product whose Stokly item is gone; "report" writes nothing.
_REMOVED_STATUS = {"archive": "archived", "unpublish": "draft"}


def is_live(item: Mapping[str, Any]) -> bool:
    """True unless the item is deleted (status 1) or deactivated (no longer sold) in Stokly."""
    return item.get("status") != 1 and item.get("isSold") is not False


def removed_status(mapping: MappingFile) -> str | None:
    """The product status ``on_removed`` asks for; None when removals are only reported."""
    settings = mapping.syncs.catalogue
    return _REMOVED_STATUS.get(settings.on_removed) if settings is not None else None


def _money(value: Any) -> str | None:
    amount = value.get("amount") if isinstance(value, Mapping) else value
    if amount is None or isinstance(amount, bool):
        return None
    try:
        # Through str: a float that slipped in must not carry its binary tail into a price.
        return str(Decimal(str(amount)).quantize(_CENTS))
    except InvalidOperation:
        return None


def _weight(value: Any) -> int | Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return int(number) if number == number.to_integral_value() else number.normalize()


def translate_variant(item: Mapping[str, Any]) -> dict[str, Any]:
    """The SHOPLINE variant fields of a simple Stokly item (the SKU, the link's key, excluded)."""
    fields: dict[str, Any] = {}
    price = _money(item.get("salePrice"))
    if price is not None:
        fields["price"] = price
    compare_at = _money(item.get(COMPARE_AT_FIELD))
    if compare_at is not None:
        fields["compare_at_price"] = compare_at
    barcodes = [str(b).strip() for b in item.get("barcodes") or [] if str(b).strip()]
    if barcodes:
        fields["barcode"] = barcodes[0]
    weight = _weight(item.get("weight"))
    if weight is not None:
        fields["weight"] = weight
        fields["weight_unit"] = WEIGHT_UNIT
    return fields


def translate_product(
    mapping: MappingFile, item: Mapping[str, Any], *, live: bool = True
) -> dict[str, Any]:
    """The SHOPLINE product fields for the Stokly item a product stands for.

    A live item gets the mapping's templates and status ``active``; a removed one only the status
    ``on_removed`` asks for (nothing at all under ``report``). A template that fails raises
    `Untranslatable` (``template_failed``).
    """
    if not live:
        status = removed_status(mapping)
        return {"status": status} if status else {}
    templates = mapping.fields.shopline_product
    variables = {"item": dict(item), "client": mapping.client.model_dump()}
    fields: dict[str, Any] = {}
    try:
        for name in ("title", "body_html", "vendor"):
            template = getattr(templates, name)
            if template is not None:
                fields[name] = template.render(**variables)
        if templates.tags:
            tags = (t.render(**variables).strip() for t in templates.tags)
            fields["tags"] = ", ".join(dict.fromkeys(t for t in tags if t))
    except TemplateError as exc:
        raise Untranslatable("template_failed", f"item {item.get('sku')}: {exc}") from None
    if "title" not in fields or not fields["title"].strip():
        # SHOPLINE refuses a product without a title; the item's own name is the fallback.
        name = str(item.get("name") or "").strip()
        if not name:
            raise Untranslatable(
                "template_failed", f"item {item.get('sku')}: the product title is empty"
            )
        fields["title"] = name
    fields["status"] = "active"
    return fields


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def content_hash(fields: Mapping[str, Any]) -> str:
    """A stable digest of ``fields`` (key order and Decimal spelling do not matter)."""
    text = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _norm(name: str, value: Any) -> Any:
    if name in ("price", "compare_at_price", "weight"):
        if value in (None, ""):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    if name == "tags":
        parts = value.split(",") if isinstance(value, str) else list(value or [])
        return tuple(str(p).strip() for p in parts if str(p).strip())
    return "" if value is None else str(value)


def changed_fields(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``desired`` whose value SHOPLINE does not already have (``current``)."""
    return {
        name: value
        for name, value in desired.items()
        if _norm(name, value) != _norm(name, current.get(name))
    }


def new_product_payload(
    mapping: MappingFile,
    source: Mapping[str, Any],
    variants: Iterable[tuple[str, Mapping[str, Any]]],
) -> dict[str, Any]:
    """The create body of a SHOPLINE product for ``source`` and its ``(SKU, simple item)`` pairs.

    Options come from the variable item's ``variableAttributes`` and each child's ``attributes``.
    """
    pairs = list(variants)
    product = translate_product(mapping, source)
    axes = [
        str(a.get("name"))
        for a in source.get("variableAttributes") or []
        if isinstance(a, Mapping) and a.get("name")
    ]
    body_variants = []
    for sku, item in pairs:
        values = {
            str(a.get("name")): str(a.get("value"))
            for a in item.get("attributes") or []
            if isinstance(a, Mapping) and a.get("name") and a.get("value") is not None
        }
        options = {
            f"option{i}": values[axis] for i, axis in enumerate(axes[:5], 1) if axis in values
        }
        body_variants.append({"sku": sku, **translate_variant(item), **options})
    if axes:
        product["options"] = [
            {
                "name": axis,
                "values": list(
                    dict.fromkeys(v[f"option{i}"] for v in body_variants if f"option{i}" in v)
                ),
            }
            for i, axis in enumerate(axes[:5], 1)
        ]
    product["variants"] = body_variants
    return product

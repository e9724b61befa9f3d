"""The translation rules of a mapping file: SKUs, locations, shipping, tax, gateways, fields."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stokline.config.models import Gateway, Location, Mapping
from stokline.config.skus import sku_key
from stokline.config.templates import TemplateError


class Untranslatable(Exception):
    """A record the mapping cannot translate. ``code`` is the exception's reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class SkuMatcher:
    """Matches SHOPLINE SKUs to the Stokly SKUs it is given, under the mapping's SKU rules.

    Built once per run from the Stokly SKUs; Stokly SKUs that collide under the match rule are
    kept aside in ``collisions`` and never matched, since picking one would be a guess.
    """

    def __init__(self, mapping: Mapping, stokly_skus: Iterable[str]):
        self.rules = mapping.skus
        self._overrides = {
            sku_key(o.shopline_sku, self.rules.match): o.stokly_sku for o in self.rules.overrides
        }
        index: dict[str, str] = {}
        self.collisions: dict[str, list[str]] = {}
        for sku in stokly_skus:
            key = sku_key(sku, self.rules.match)
            if key in index and index[key] != sku:
                self.collisions.setdefault(key, [index[key]]).append(sku)
            index.setdefault(key, sku)
        for key in self.collisions:
            index.pop(key, None)
        self._index = index
        self._patterns = [p.casefold() for p in self.rules.never_sync]

    def excluded(self, sku: str) -> bool:
        """True for SKUs the mapping says are never synced (gift cards, samples, ...)."""
        folded = sku.strip().casefold()
        return any(fnmatch.fnmatchcase(folded, p) for p in self._patterns)

    def match(self, shopline_sku: str | None) -> str:
        """The Stokly SKU for a SHOPLINE SKU; `Untranslatable` (unmapped_sku) when there is none."""
        if not shopline_sku or not shopline_sku.strip():
            raise Untranslatable("unmapped_sku", "the line has no SKU")
        key = sku_key(shopline_sku, self.rules.match)
        target = self._overrides.get(key)
        if target is not None:
            found = self._index.get(sku_key(target, self.rules.match))
            if found is None:
                raise Untranslatable(
                    "unmapped_sku",
                    f"SKU {shopline_sku} is overridden to {target}, which Stokly does not have",
                )
            return found
        if key in self.collisions:
            raise Untranslatable(
                "sku_collision",
                f"SKU {shopline_sku} matches several Stokly items: {', '.join(self.collisions[key])}",
            )
        found = self._index.get(key)
        if found is None:
            raise Untranslatable("unmapped_sku", f"SKU {shopline_sku} matches no Stokly item")
        return found


def resolve_location(mapping: Mapping, shopline_location: str | None) -> Location:
    """The mapped location for a SHOPLINE location id; the default location when none is given."""
    if shopline_location:
        for location in mapping.locations:
            if location.shopline_location == str(shopline_location):
                return location
        raise Untranslatable(
            "unknown_location", f"SHOPLINE location {shopline_location} is not in the mapping"
        )
    for location in mapping.locations:
        if location.default:
            return location
    raise Untranslatable(
        "unknown_location", "the order names no location and the mapping has no default location"
    )


@dataclass(frozen=True)
class ShippingChoice:
    stokly_option: str
    carrier: str
    tracking_company: str | None = None


def resolve_shipping(
    mapping: Mapping, title: str | None, code: str | None = None
) -> ShippingChoice:
    """The Stokly shipping option for a SHOPLINE shipping line: by code first, then by title."""
    shipping = mapping.shipping
    method = None
    if code:
        method = next((m for m in shipping.methods if m.shopline_code == code), None)
    if method is None and title:
        folded = title.strip().casefold()
        method = next((m for m in shipping.methods if m.shopline_title.casefold() == folded), None)
    if method is not None:
        return ShippingChoice(
            method.stokly_option, method.carrier, method.tracking_company or method.carrier
        )
    if shipping.on_unmapped == "default" and shipping.default is not None:
        return ShippingChoice(shipping.default.stokly_option, shipping.default.carrier)
    raise Untranslatable(
        "unmapped_shipping", f"shipping line {title or code or '(none)'} matches no shipping method"
    )


def resolve_tax_class(
    mapping: Mapping, title: str | None, rate: Decimal | str | float | None
) -> str:
    """The Stokly tax class for a SHOPLINE tax line.

    A rule with both a title and a rate needs both to match; such rules are tried first, then
    rules with a title only, then rules with a rate only. Rates match within the tolerance.
    """
    tax = mapping.tax
    line_rate = Decimal(str(rate)) if rate is not None else None
    folded = title.strip().casefold() if title else None

    def title_ok(rule_title: str | None) -> bool:
        return rule_title is not None and folded is not None and rule_title.casefold() == folded

    def rate_ok(rule_rate: Decimal | None) -> bool:
        return (
            rule_rate is not None
            and line_rate is not None
            and abs(rule_rate - line_rate) <= tax.tolerance
        )

    tiers = (
        [r for r in tax.rules if r.shopline_title and r.rate is not None],
        [r for r in tax.rules if r.shopline_title and r.rate is None],
        [r for r in tax.rules if not r.shopline_title],
    )
    for rule in tiers[0]:
        if title_ok(rule.shopline_title) and rate_ok(rule.rate):
            return rule.stokly_tax_class
    for rule in tiers[1]:
        if title_ok(rule.shopline_title):
            return rule.stokly_tax_class
    for rule in tiers[2]:
        if rate_ok(rule.rate):
            return rule.stokly_tax_class
    if tax.on_unmapped == "default" and tax.default_tax_class:
        return tax.default_tax_class
    raise Untranslatable(
        "tax_mismatch",
        f"tax line {title or '(untitled)'} at rate {rate} matches no tax rule "
        f"within {tax.tolerance}",
    )


def resolve_gateway(mapping: Mapping, gateway: str | None) -> Gateway:
    """The mapped gateway (Stokly payment method, ledger accounts) for a SHOPLINE gateway name."""
    payments = mapping.payments
    for entry in payments.gateways:
        if gateway and entry.gateway.casefold() == gateway.strip().casefold():
            return entry
    if payments.on_unmapped == "default" and payments.default_gateway:
        return next(g for g in payments.gateways if g.gateway == payments.default_gateway)
    raise Untranslatable("unmapped_gateway", f"payment gateway {gateway or '(none)'} is not mapped")


def render_sale_order_fields(
    mapping: Mapping, order: dict[str, Any], customer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The sale order fields the mapping's templates produce; empty tags are dropped."""
    fields = mapping.fields.sale_order
    variables = {"order": order, "customer": customer, "client": mapping.client.model_dump()}
    out: dict[str, Any] = {}
    try:
        if fields.customer_reference is not None:
            out["customerReference"] = fields.customer_reference.render(**variables)
        if fields.tags:
            tags = (t.render(**variables).strip() for t in fields.tags)
            out["tags"] = [t for t in tags if t]
        if fields.notes is not None:
            out["notes"] = fields.notes.render(**variables)
    except TemplateError as exc:
        raise Untranslatable("template_failed", str(exc)) from None
    return out

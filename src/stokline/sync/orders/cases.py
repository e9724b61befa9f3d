"""Data-driven mapping cases: an input record and the translation the mapping must give.

A case file sits next to the mapping files (``mappings/cases/<client>.cases.yaml``), names its
mapping, and lists cases; the test suite runs every case file, and so does ``stokline cases``.
A customer case gives the buyer's email/phone and the Stokly customers found per key
(``stokly_matches``). An order case gives a whole SHOPLINE order (``order``, and optionally the
Stokly ``customer_id`` the sync found) and expects ``{sale_order: <payload>}`` with money as
strings, plus ``excluded`` when never-sync lines were left out; in order cases an item's Stokly
id is its SKU and a location's id is its name (``stokly_locations`` lists the names Stokly has).
Each case names a translator from `TRANSLATORS`; the sync work adds translators (products,
fulfilments) and their cases as it lands.

    mapping: ../demo.yaml
    stokly_skus: [ACME-TENT-2P-GREEN]          # what Stokly knows, for SKU cases
    cases:
      - name: an override maps a renamed SKU
        translate: sku
        input: {sku: tent-2p-grn}
        expect: {stokly_sku: ACME-TENT-2P-GREEN}
      - name: an unknown SKU is an exception
        translate: sku
        input: {sku: NOPE-1}
        expect: {exception: unmapped_sku}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from stokline.config import Mapping, load_mapping
from stokline.mapping.translate import (
    SkuMatcher,
    Untranslatable,
    render_sale_order_fields,
    resolve_gateway,
    resolve_location,
    resolve_shipping,
    resolve_tax_class,
)
from stokline.sync.orders.identity import decide_customer, identity_of
from stokline.sync.orders.translate import StoklyCatalogue, translate_order


class CaseFileError(Exception):
    """A case file that cannot be read or names an unknown translator."""


@dataclass
class Context:
    mapping: Mapping
    stokly_skus: list[str] = field(default_factory=list)
    stokly_locations: list[str] = field(default_factory=list)


def _sku(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    matcher = SkuMatcher(ctx.mapping, ctx.stokly_skus)
    if matcher.excluded(record["sku"]):
        return {"excluded": True}
    return {"stokly_sku": matcher.match(record["sku"])}


def _location(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    location = resolve_location(ctx.mapping, record.get("location_id"))
    return {
        "shopline_location": location.shopline_location,
        "stokly_locations": list(location.stokly_locations),
        "fulfil_from": location.fulfilment_location,
    }


def _shipping(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    choice = resolve_shipping(ctx.mapping, record.get("title"), record.get("code"))
    return {"stokly_option": choice.stokly_option, "carrier": choice.carrier}


def _tax(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "stokly_tax_class": resolve_tax_class(ctx.mapping, record.get("title"), record.get("rate"))
    }


def _gateway(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    gateway = resolve_gateway(ctx.mapping, record.get("gateway"))
    return {"stokly_method": gateway.stokly_method, "ledger_account": gateway.ledger_account}


def _customer(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    identity = identity_of(
        ctx.mapping, record.get("email"), record.get("phone"), record.get("area_code")
    )
    decision = decide_customer(ctx.mapping, identity, record.get("stokly_matches", {}))
    out: dict[str, Any] = {
        "email": identity.email,
        "phone": identity.phone,
        "action": decision.action,
    }
    if decision.customer_id:
        out["customer_id"] = decision.customer_id
    return out


def _sale_order_fields(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    return render_sale_order_fields(ctx.mapping, record["order"], record.get("customer"))


def _plain(value: Any) -> Any:
    """Decimals as strings (as YAML writes money exactly), containers recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _order(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    locations = ctx.stokly_locations or [
        name for loc in ctx.mapping.locations for name in loc.stokly_locations
    ]
    catalogue = StoklyCatalogue.build(
        ctx.mapping, ((s, s) for s in ctx.stokly_skus), ((n, n) for n in locations)
    )
    draft = translate_order(ctx.mapping, record["order"], catalogue)
    out: dict[str, Any] = {"sale_order": _plain(draft.payload_for(record.get("customer_id")))}
    if draft.excluded:
        out["excluded"] = list(draft.excluded)
    return out


TRANSLATORS: dict[str, Callable[[Context, dict[str, Any]], dict[str, Any]]] = {
    "sku": _sku,
    "location": _location,
    "shipping": _shipping,
    "tax": _tax,
    "gateway": _gateway,
    "sale_order_fields": _sale_order_fields,
    "customer": _customer,
    "order": _order,
}


@dataclass
class Case:
    file: Path
    name: str
    translate: str
    input: dict[str, Any]
    expect: dict[str, Any]
    context: Context

    @property
    def id(self) -> str:
        return f"{self.file.name}::{self.name}"


@dataclass
class CaseResult:
    case: Case
    actual: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.actual == self.case.expect

    def explain(self) -> str:
        want = json.dumps(self.case.expect, sort_keys=True, default=str)
        got = json.dumps(self.actual, sort_keys=True, default=str)
        return f"{self.case.id}: expected {want}, got {got}"


def load_cases(path: Path) -> list[Case]:
    """The cases of one case file, with their mapping loaded (relative to the case file)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CaseFileError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list) or "mapping" not in doc:
        raise CaseFileError(f"{path}: a case file has 'mapping:' and a list of 'cases:'")
    context = Context(
        load_mapping(path.parent / doc["mapping"]),
        list(doc.get("stokly_skus", [])),
        list(doc.get("stokly_locations", [])),
    )
    cases = []
    for i, raw in enumerate(doc["cases"]):
        if not isinstance(raw, dict) or not {"name", "translate", "input", "expect"} <= raw.keys():
            raise CaseFileError(f"{path}: case {i + 1} needs name, translate, input and expect")
        if raw["translate"] not in TRANSLATORS:
            known = ", ".join(TRANSLATORS)
            raise CaseFileError(
                f"{path}: case {raw['name']!r}: unknown translator {raw['translate']!r} ({known})"
            )
        cases.append(
            Case(path, raw["name"], raw["translate"], raw["input"], raw["expect"], context)
        )
    return cases


def run_case(case: Case) -> CaseResult:
    """Translate the case's input; an `Untranslatable` becomes ``{"exception": code}``."""
    try:
        actual = TRANSLATORS[case.translate](case.context, case.input)
    except Untranslatable as exc:
        actual = {"exception": exc.code}
    return CaseResult(case, actual)


def case_files(mappings_dir: Path) -> list[Path]:
    return sorted((mappings_dir / "cases").glob("*.cases.yaml"))

"""One Stokly shipment → the SHOPLINE fulfillment that tells the buyer where the parcel is (no I/O).

Stokly's shipment names what left the warehouse by Stokly SKU and sale-order line; SHOPLINE wants
its own order's line-item ids. The two meet by SKU under the mapping's rules (overrides and the
match mode, as orders were imported): each shipped SKU is spread over the SHOPLINE lines that
match it, in the order's line order, never beyond what SHOPLINE still has to fulfil — a unit
fulfilled twice would tell the buyer a parcel is coming that is not. The tracking entries carry
the carrier's name and tracking URL the mapping gives for the carrier that actually took the
parcel (``shipping.methods``).

`find_fulfilment` is how a run recognises a fulfillment it created before but could not record
(a timeout whose request landed, a crash between create and link): SHOPLINE keeps no reference of
ours, so a fulfillment is ours when it has the shipment's tracking numbers, or else exactly the
shipment's quantities per SKU.

Records are the JSON-like shapes of both APIs (``model_dump()`` of the connector models).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stokline.config.models import Mapping as ClientMapping
from stokline.config.models import ShippingMethod
from stokline.config.templates import TemplateError
from stokline.mapping.translate import SkuMatcher, Untranslatable

__all__ = [
    "MAX_TRACKING_ENTRIES",
    "FulfilmentLine",
    "FulfilmentRequest",
    "find_fulfilment",
    "fulfilled_quantities",
    "shipped_quantities",
    "shipping_method_for",
    "tracking_info_list",
    "tracking_key",
    "translate_shipment",
]

MAX_TRACKING_ENTRIES = 10
"""SHOPLINE keeps at most ten tracking entries per fulfillment."""


@dataclass(frozen=True)
class FulfilmentLine:
    """A quantity of one SHOPLINE line item, and the Stokly SKU it was shipped as."""

    line_item_id: str
    sku: str
    stokly_sku: str
    quantity: int


@dataclass(frozen=True)
class FulfilmentRequest:
    """What to send to ``POST orders/{id}/fulfillments.json`` for one shipment.

    ``lines`` is empty when SHOPLINE has nothing left to fulfil of what was shipped (someone
    fulfilled it there already). ``notes`` say where the request differs from the shipment:
    units SHOPLINE no longer had to fulfil, tracking numbers beyond SHOPLINE's ten.
    """

    order_id: str
    order_name: str
    shipment_id: str
    lines: tuple[FulfilmentLine, ...]
    tracking: tuple[dict[str, str], ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def line_items(self) -> list[dict[str, Any]]:
        """``[{"id", "quantity"}]`` as the fulfillment body wants them."""
        return [{"id": line.line_item_id, "quantity": line.quantity} for line in self.lines]

    def summary(self) -> dict[str, Any]:
        """One row for reports: the order, the shipment, what goes where. No customer data."""
        return {
            "order": self.order_name,
            "shopline_id": self.order_id,
            "shipment": self.shipment_id,
            "lines": ", ".join(f"{line.sku} x{line.quantity}" for line in self.lines),
            "tracking": ", ".join(t["tracking_number"] for t in self.tracking),
            "carrier": ", ".join(
                dict.fromkeys(t.get("tracking_company") or "" for t in self.tracking)
            ),
            "notes": "; ".join(self.notes),
        }


def _quantity(value: Any) -> int:
    return int(value or 0)


def shipped_quantities(shipment: Mapping[str, Any]) -> dict[str, int]:
    """Units shipped per Stokly SKU, in the shipment's order.

    A line without a SKU cannot be matched to SHOPLINE: `Untranslatable` (``unmapped_sku``).
    """
    out: dict[str, int] = {}
    for line in shipment.get("items") or []:
        sku = str(line.get("itemSku") or "").strip()
        if not sku:
            raise Untranslatable(
                "unmapped_sku",
                f"shipment {shipment.get('shipmentId')}: line {line.get('lineId')} carries no SKU",
            )
        quantity = _quantity(line.get("quantity"))
        if quantity > 0:
            out[sku] = out.get(sku, 0) + quantity
    return out


def _order_name(order: Mapping[str, Any]) -> str:
    return str(order.get("name") or order.get("id"))


def _order_method(mapping: ClientMapping, order: Mapping[str, Any]) -> ShippingMethod | None:
    """The mapping's method for the order's first shipping line: by code, then by title."""
    lines = order.get("shipping_lines") or []
    if not lines:
        return None
    code, title = lines[0].get("code"), lines[0].get("title")
    methods = mapping.shipping.methods
    if code:
        found = next((m for m in methods if m.shopline_code == code), None)
        if found is not None:
            return found
    if title:
        folded = str(title).strip().casefold()
        return next((m for m in methods if m.shopline_title.casefold() == folded), None)
    return None


def shipping_method_for(
    mapping: ClientMapping, order: Mapping[str, Any], carrier: str | None
) -> ShippingMethod | None:
    """The shipping method whose carrier took the parcel.

    The order's own method when its carrier is the shipment's (or the shipment names none);
    otherwise the first method with the shipment's carrier — a warehouse may send a Royal Mail
    order by DPD, and the buyer must get DPD's name and link. None: the mapping has no method
    for that carrier.
    """
    own = _order_method(mapping, order)
    if not carrier:
        return own
    folded = carrier.strip().casefold()
    if own is not None and own.carrier.casefold() == folded:
        return own
    return next((m for m in mapping.shipping.methods if m.carrier.casefold() == folded), None)


def tracking_info_list(
    mapping: ClientMapping, shipment: Mapping[str, Any], order: Mapping[str, Any]
) -> list[dict[str, str]]:
    """SHOPLINE's ``tracking_info_list`` for a shipment: one entry per tracking number.

    ``tracking_company`` is the mapping's ``tracking_company`` of the carrier's method (else its
    ``carrier``, else Stokly's carrier as it is); ``tracking_url`` the method's template rendered
    for the number, else Stokly's URL. At most `MAX_TRACKING_ENTRIES` (see `translate_shipment`).
    """
    carrier = str(shipment.get("carrier") or "").strip() or None
    method = shipping_method_for(mapping, order, carrier)
    company = (method.tracking_company or method.carrier) if method is not None else carrier
    fallback_url = str(shipment.get("trackingUrl") or "").strip() or None
    entries = []
    for number in _numbers(shipment)[:MAX_TRACKING_ENTRIES]:
        entry = {"tracking_number": number}
        if company:
            entry["tracking_company"] = company
        url = fallback_url
        if method is not None and method.tracking_url is not None:
            try:
                url = method.tracking_url.render(
                    tracking_number=number, carrier=carrier or method.carrier, order=dict(order)
                ).strip()
            except TemplateError as exc:
                raise Untranslatable("template_failed", f"tracking_url: {exc}") from None
        if url:
            entry["tracking_url"] = url
        entries.append(entry)
    return entries


def _numbers(shipment: Mapping[str, Any]) -> list[str]:
    numbers = (str(n).strip() for n in shipment.get("trackingNumbers") or [])
    return list(dict.fromkeys(n for n in numbers if n))


def tracking_key(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """A tracking list reduced to what the buyer sees, to tell whether it changed."""
    return [
        (
            str(e.get("tracking_number") or ""),
            str(e.get("tracking_company") or ""),
            str(e.get("tracking_url") or ""),
        )
        for e in entries
    ]


def _fulfillable(line: Mapping[str, Any]) -> int:
    value = line.get("fulfillable_quantity")
    return _quantity(line.get("quantity") if value is None else value)


def _lines_by_stokly_sku(
    mapping: ClientMapping, order: Mapping[str, Any], stokly_skus: Collection[str]
) -> dict[str, list[Mapping[str, Any]]]:
    """The SHOPLINE order's lines per Stokly SKU among ``stokly_skus``, in the order's order."""
    matcher = SkuMatcher(mapping, stokly_skus)
    out: dict[str, list[Mapping[str, Any]]] = {}
    for line in order.get("line_items") or []:
        sku = str(line.get("sku") or "").strip()
        if not sku or matcher.excluded(sku):
            continue
        try:
            target = matcher.match(sku)
        except Untranslatable:
            continue  # a line this shipment did not carry
        out.setdefault(target, []).append(line)
    return out


def refunded_in_shipment(
    mapping: ClientMapping, shipment: Mapping[str, Any], order: Mapping[str, Any]
) -> dict[str, int] | None:
    """Units per Stokly SKU of ``shipment`` that SHOPLINE refunded as not shipped, for a shipment
    SHOPLINE has nothing left to fulfil of (a refund that landed while the parcel was packed).

    With the refunds on the order ([I]), the units refunded as not shipped (not typed
    ``Returned``) of the shipped SKUs, at most what the shipment carried; ``{}`` when none, so
    SHOPLINE fulfilled them elsewhere. Without them, None when the order was refunded at all
    (SHOPLINE cannot tell more), else ``{}``.
    """
    shipped = shipped_quantities(shipment)
    refunds = order.get("refunds")
    if not refunds:
        refunded = order.get("financial_status") in ("partially_refunded", "refunded")
        return None if refunded else {}
    by_sku = _lines_by_stokly_sku(mapping, order, list(shipped))
    line_sku = {str(li["id"]): sku for sku, lines in by_sku.items() for li in lines}
    out: dict[str, int] = {}
    for refund in refunds:
        for item in refund.get("refund_line_items") or []:
            kind = item.get("type") or ("Returned" if item.get("restock_type") == "return" else "")
            sku = line_sku.get(str(item.get("line_item_id")))
            if sku is not None and kind != "Returned":
                out[sku] = min(out.get(sku, 0) + int(item.get("quantity") or 0), shipped[sku])
    return {sku: n for sku, n in out.items() if n > 0}


def translate_shipment(
    mapping: ClientMapping, shipment: Mapping[str, Any], order: Mapping[str, Any]
) -> FulfilmentRequest:
    """The fulfillment request for ``shipment`` on the SHOPLINE ``order`` (as it is now).

    Raises `Untranslatable`: ``unmapped_sku`` when a shipped SKU matches no line of the order
    (every such SKU is named), ``template_failed`` when a tracking URL template fails.
    """
    shipped = shipped_quantities(shipment)
    by_sku = _lines_by_stokly_sku(mapping, order, shipped)
    missing = [f"{sku} x{qty}" for sku, qty in shipped.items() if not by_sku.get(sku)]
    name = _order_name(order)
    shipment_id = str(shipment.get("shipmentId"))
    if missing:
        raise Untranslatable(
            "unmapped_sku",
            f"shipment {shipment_id} carries {', '.join(missing)}, which match no line of SHOPLINE"
            f" order {name} under the mapping's SKU rules",
        )
    lines: list[FulfilmentLine] = []
    notes: list[str] = []
    for stokly_sku, quantity in shipped.items():
        left = quantity
        for line in by_sku[stokly_sku]:
            take = min(left, _fulfillable(line))
            if take > 0:
                lines.append(
                    FulfilmentLine(str(line["id"]), str(line.get("sku") or ""), stokly_sku, take)
                )
                left -= take
        if left:
            notes.append(
                f"{stokly_sku}: {quantity} shipped, SHOPLINE had {quantity - left} left to fulfil"
            )
    numbers = _numbers(shipment)
    if len(numbers) > MAX_TRACKING_ENTRIES:
        kept = MAX_TRACKING_ENTRIES
        notes.append(f"{len(numbers)} tracking numbers; SHOPLINE keeps the first {kept}")
    return FulfilmentRequest(
        order_id=str(order["id"]),
        order_name=name,
        shipment_id=shipment_id,
        lines=tuple(lines),
        tracking=tuple(tracking_info_list(mapping, shipment, order)),
        notes=tuple(notes),
    )


def fulfilled_quantities(
    mapping: ClientMapping,
    fulfillment: Mapping[str, Any],
    order: Mapping[str, Any],
    stokly_skus: Collection[str],
) -> dict[str, int]:
    """Units of a SHOPLINE fulfillment per Stokly SKU (lines matching none keyed by their own
    SKU in brackets, so they never compare equal to a shipment's)."""
    matcher = SkuMatcher(mapping, stokly_skus)
    skus = {str(li.get("id")): str(li.get("sku") or "") for li in order.get("line_items") or []}
    out: dict[str, int] = {}
    for line in fulfillment.get("line_items") or []:
        sku = skus.get(str(line.get("id"))) or str(line.get("sku") or "")
        try:
            key = matcher.match(sku)
        except Untranslatable:
            key = f"[{sku}]"
        quantity = line.get("fulfillment_quantity", line.get("quantity"))
        out[key] = out.get(key, 0) + _quantity(quantity)
    return out


def find_fulfilment(
    mapping: ClientMapping,
    shipment: Mapping[str, Any],
    order: Mapping[str, Any],
    fulfillments: Iterable[Mapping[str, Any]],
    taken: Collection[str] = (),
    *,
    by: Literal["tracking", "lines"],
) -> Mapping[str, Any] | None:
    """The live SHOPLINE fulfillment of ``order`` that already stands for ``shipment``, if any.

    ``by="tracking"``: the same set of tracking numbers (a shipment without numbers never
    matches this way). ``by="lines"``: exactly the shipment's quantities per SKU — what finds a
    fulfillment whose tracking was corrected since, or one made by hand for the same goods.
    Fulfillments in ``taken`` (linked to other shipments) and cancelled ones are never matched;
    a caller matching several shipments of one order tries ``tracking`` for all first.
    """
    live = [
        f
        for f in fulfillments
        if str(f.get("status") or "") != "cancelled" and str(f.get("id")) not in taken
    ]
    if by == "tracking":
        numbers = set(_numbers(shipment)[:MAX_TRACKING_ENTRIES])
        if not numbers:
            return None
        for fulfillment in live:
            theirs = {
                str(t.get("tracking_number") or "").strip()
                for t in fulfillment.get("tracking_info_list") or []
            }
            if theirs == numbers:
                return fulfillment
        return None
    shipped = shipped_quantities(shipment)
    for fulfillment in live:
        if fulfilled_quantities(mapping, fulfillment, order, shipped) == shipped:
            return fulfillment
    return None

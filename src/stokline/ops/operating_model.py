"""A client's operating model in plain words, read from its mapping: the facts of the runbook.

Who is the master of each kind of data, what each flow does with this client's settings and
when, how locations, SKUs, shipping, tax, gateways and customers are translated, and which team
owns each exception. Pure: no I/O, nothing rendered. Sentences written here may carry Markdown
code spans of fixed words (`stale_fulfilment`); values that come from the mapping stay raw, for
the renderer (`stokline.ops.runbook`) to escape.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from stokline.config import Mapping
from stokline.config.schedules import Schedule, describe_duration
from stokline.store import REASONS

__all__ = [
    "MEANINGS",
    "TEAMS",
    "TEAM_TITLES",
    "alerts",
    "describe_schedule",
    "exceptions",
    "flows",
    "masters",
    "translations",
]

TEAMS = ("operations", "ecommerce", "finance")
TEAM_TITLES = {"operations": "Operations", "ecommerce": "E-commerce", "finance": "Finance"}
SEVERITY_ORDER = ("critical", "high", "medium", "low")

# What each exception means, in the words of the people who own it. A code missing here still
# appears in the runbook, with the action the store gives it.
MEANINGS: dict[str, str] = {
    "unmapped_sku": "An order has a product Stokly does not know, so the order cannot be imported.",
    "unknown_shopline_sku": "A SHOPLINE variant's SKU matches no Stokly item, so its stock and details are not kept in step.",
    "sku_collision": "Two Stokly items match one SHOPLINE SKU under the matching rules (nothing is synced for it until one is renamed), or one Stokly item is behind several SHOPLINE variants (only one of them shows its stock, the one skus.show_stock_on names, else the one whose SKU is the Stokly SKU; the others show 0).",
    "unknown_location": "An order or stock level names a SHOPLINE location the mapping does not list.",
    "unmapped_shipping": "An order uses a shipping method the mapping does not list.",
    "tax_mismatch": "A tax line of an order matches no tax rule, or its rate is not the one expected.",
    "unmapped_gateway": "An order was paid through a payment gateway the mapping does not list.",
    "customer_conflict": "The buyer's email and phone point at different Stokly customers.",
    "order_changed": "An order was cancelled or edited in SHOPLINE after it reached Stokly.",
    "api_rejected": "Stokly or SHOPLINE refused a record the integration sent.",
    "poison_message": (
        "A webhook or a record from SHOPLINE or Stokly could not be read; it is kept for inspection."
    ),
    "stale_fulfilment": "A shipment made in Stokly has not reached SHOPLINE in time; the customer has no tracking yet.",
    "oversell_risk": "SHOPLINE offers more of an item than Stokly can sell.",
    "template_failed": "A field template of the mapping could not be filled in for one record.",
    "ledger_imbalance": "A journal for the ledger did not balance; nothing of it was posted.",
    "payout_variance": "SHOPLINE's money for a period differs from what the Stokly ledger holds.",
}


def percent(rate: Decimal) -> str:
    """0.20 → "20 %", 0.005 → "0.5 %"."""
    text = f"{rate * 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " %"


# -- schedules in plain words ------------------------------------------------------------------

_WEEKDAYS = {"1-5": "on weekdays", "0,6": "at weekends", "6,0": "at weekends", "*": "daily"}


def _plain_cron(expression: str) -> str | None:
    """The common cron shapes in words ("every 10 minutes", "daily at 03:30"); None otherwise."""
    parts = expression.split()
    if len(parts) != 5:
        return None
    minute, hour, dom, month, dow = parts
    if (hour, dom, month, dow) == ("*", "*", "*", "*"):
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {describe_duration(timedelta(minutes=int(minute[2:])))}"
        if minute.isdigit():
            return f"every hour at {int(minute):02d} minutes past"
    if minute.isdigit() and hour.isdigit() and dom == "*" and month == "*" and dow in _WEEKDAYS:
        return f"{_WEEKDAYS[dow]} at {int(hour):02d}:{int(minute):02d}"
    return None


def describe_schedule(schedule: Schedule, timezone: str) -> str:
    if schedule.every is not None:
        return f"every {describe_duration(schedule.every)}"
    if schedule.at:
        return f"daily at {schedule.at} ({timezone} time)"
    words = _plain_cron(schedule.cron or "")
    if words:
        return f"{words} ({timezone} time)"
    return f"on the schedule `{schedule.cron}` ({timezone} time)"


# -- the facts ---------------------------------------------------------------------------------


def flows(mapping: Mapping) -> list[dict[str, Any]]:
    """Each of the five syncs: direction, when, and what it does with this mapping's settings."""
    s = mapping.syncs
    tz = mapping.client.timezone
    rows: list[dict[str, Any]] = []

    def add(name: str, sync: Any, direction: str, what: str, extra: str = "") -> None:
        if sync is None or not sync.enabled:
            state = "not set up" if sync is None else "switched off in the mapping"
            rows.append({"name": name, "direction": direction, "when": state, "what": what})
            return
        when = describe_schedule(sync.schedule, tz) + extra
        rows.append({"name": name, "direction": direction, "when": when, "what": what})

    def on(sync: Any) -> bool:
        return sync is not None and sync.enabled

    if on(s.stock):
        stock_what = (
            "Sellable stock (on hand, less quarantined and allocated stock and each location's"
            " buffer) replaces SHOPLINE's available quantity; only changed levels are sent."
        )
        extra = (
            "; also within moments of a stock movement in Stokly" if s.stock.event_driven else ""
        )
    else:
        stock_what, extra = "Sellable stock from Stokly to SHOPLINE.", ""
    add("stock", s.stock, "Stokly → SHOPLINE", stock_what, extra)

    if on(s.catalogue):
        create = (
            "creates SHOPLINE products for Stokly items not yet listed"
            if s.catalogue.create_missing
            else "reports Stokly items not listed in SHOPLINE (it does not create them)"
        )
        removed = {
            "archive": "archived",
            "unpublish": "unpublished",
            "report": "reported, left as they are",
        }[s.catalogue.on_removed]
        catalogue_what = (
            f"Titles, descriptions, prices and barcodes follow Stokly; it {create}; products of"
            f" items Stokly no longer sells are {removed}, never deleted."
        )
    else:
        catalogue_what = "Item details from Stokly to SHOPLINE products."
    add("catalogue", s.catalogue, "Stokly → SHOPLINE", catalogue_what)

    o = s.orders
    when_paid = " or ".join(w.replace("_", " ") for w in o.import_when)
    orders_what = (
        f"Each order becomes one Stokly sale order once it is {when_paid}. Cancellations after"
        f" import are {'applied in Stokly' if o.on_cancelled == 'apply' else 'raised as exceptions'};"
        f" edits are {'applied where Stokly allows' if o.on_edited == 'apply' else 'raised as exceptions'}."
        f" Orders of the last {describe_duration(o.lookback)} are re-checked on every pass, so a"
        " lost webhook costs minutes, not an order."
    )
    add(
        "orders",
        o,
        "SHOPLINE → Stokly",
        orders_what,
        "; and within seconds of each SHOPLINE webhook",
    )

    if on(s.fulfilment):
        notify = (
            "SHOPLINE emails the customer"
            if s.fulfilment.notify_customer
            else "customers are not emailed by SHOPLINE"
        )
        fulfilment_what = (
            f"Shipments and tracking numbers go to the SHOPLINE order ({notify}); one not"
            f" confirmed within {describe_duration(s.fulfilment.stale_after)} becomes a"
            " `stale_fulfilment` exception."
        )
    else:
        fulfilment_what = "Shipments and tracking from Stokly to SHOPLINE."
    add("fulfilment", s.fulfilment, "Stokly → SHOPLINE", fulfilment_what)

    if on(s.finance):
        by = ", ".join(s.finance.group_by)
        approval = (
            "the run waits in the Prefect UI until someone in finance approves each journal"
            if s.finance.approval == "required"
            else "journals are posted without a separate approval"
        )
        finance_what = (
            f"Payments, refunds and fees become balanced ledger journals in Stokly, one per {by},"
            f" each posted once; {approval}."
        )
    else:
        finance_what = "Payments and refunds into Stokly's ledger."
    add("finance", s.finance, "SHOPLINE money → Stokly ledger", finance_what)
    return rows


def masters(mapping: Mapping) -> list[dict[str, str]]:
    """DESIGN's table of who owns what, with what each rule means for the people at the desk."""
    s = mapping.syncs

    def on(sync: Any) -> bool:
        return sync is not None and sync.enabled

    def kept(sync: Any, text: str) -> str:
        return text if on(sync) else "Not synchronised for this client: keep both sides by hand."

    return [
        {
            "data": "Items: SKU, title, description, price, barcode",
            "master": "Stokly",
            "direction": "Stokly → SHOPLINE",
            "means": kept(
                s.catalogue, "Change products in Stokly; edits made in SHOPLINE are overwritten."
            ),
        },
        {
            "data": "Stock levels",
            "master": "Stokly",
            "direction": "Stokly → SHOPLINE",
            "means": kept(
                s.stock,
                "Count, receive and adjust stock in Stokly only; SHOPLINE's numbers are replaced.",
            ),
        },
        {
            "data": "Orders, payments, refunds",
            "master": "SHOPLINE",
            "direction": "SHOPLINE → Stokly",
            "means": "Never key a web order into Stokly by hand: it arrives by itself, once.",
        },
        {
            "data": "Fulfilments and tracking",
            "master": "Stokly",
            "direction": "Stokly → SHOPLINE",
            "means": kept(s.fulfilment, "Dispatch in Stokly; SHOPLINE shows it to the customer."),
        },
        {
            "data": "Invoices and ledger postings",
            "master": "Stokly",
            "direction": "SHOPLINE money → Stokly ledger, in batches",
            "means": kept(s.finance, "Finance reconciles from Stokly's ledger."),
        },
        {
            "data": "Customers",
            "master": "Stokly",
            "direction": "SHOPLINE → Stokly",
            "means": "Buyers are matched to Stokly customers by "
            + " then ".join(mapping.customers.identity)
            + "; correct customer records in Stokly.",
        },
    ]


def translations(mapping: Mapping) -> dict[str, Any]:
    """Locations, SKUs, shipping, tax, payments and customers in plain words."""
    finance = mapping.syncs.finance
    tax_accounts = finance.accounts.tax if finance is not None else {}
    shipping = mapping.shipping
    tax = mapping.tax
    payments = mapping.payments
    customers = mapping.customers
    # What happens to something the mapping does not list: a fallback, or None (an exception).
    shipping_fallback = (
        {"option": shipping.default.stokly_option, "carrier": shipping.default.carrier}
        if shipping.on_unmapped == "default" and shipping.default is not None
        else None
    )
    tax_fallback = tax.default_tax_class if tax.on_unmapped == "default" else None
    gateway_fallback = payments.default_gateway if payments.on_unmapped == "default" else None
    conflict = {
        "link": "the order is linked to the customer found by the first of those that matches",
        "create": "a new Stokly customer is created for the order",
        "exception": "the order waits as a `customer_conflict` exception until someone decides",
    }[customers.on_conflict]
    return {
        "locations": [
            {
                "shopline": loc.name or loc.shopline_location,
                "shopline_id": loc.shopline_location,
                "stokly": list(loc.stokly_locations),
                "fulfil_from": loc.fulfilment_location,
                "stock": loc.stock.sync and mapping.syncs.stock is not None,
                "buffer": loc.stock.buffer,
                "default": loc.default,
            }
            for loc in mapping.locations
        ],
        "sku_match": {
            "exact": "exactly as written, capitals included",
            "case_insensitive": "ignoring capitals (`tent-2p` is `TENT-2P`)",
            "normalised": "ignoring capitals, spaces, dashes and dots (`pc 700 blk` is `PC-700-BLK`)",
        }[mapping.skus.match],
        "overrides": [(o.shopline_sku, o.stokly_sku) for o in mapping.skus.overrides],
        "never_sync": list(mapping.skus.never_sync),
        "shipping": [
            {
                "title": m.shopline_title,
                "code": m.shopline_code,
                "option": m.stokly_option,
                "carrier": m.tracking_company or m.carrier,
                "tracking_link": m.tracking_url is not None,
            }
            for m in shipping.methods
        ],
        "shipping_fallback": shipping_fallback,
        "tax": [
            {
                "title": r.shopline_title,
                "rate": percent(r.rate) if r.rate is not None else None,
                "tax_class": r.stokly_tax_class,
                "account": tax_accounts.get(r.stokly_tax_class),
            }
            for r in tax.rules
        ],
        "tax_tolerance": percent(tax.tolerance).replace(" %", " percentage points"),
        "tax_fallback": tax_fallback,
        "gateways": [
            {
                "gateway": g.gateway,
                "method": g.stokly_method,
                "account": g.ledger_account,
                "fee_account": g.fee_account,
            }
            for g in payments.gateways
        ],
        "gateway_fallback": gateway_fallback,
        "customers": {
            "identity": " then ".join(customers.identity),
            "conflict": conflict,
            "create": customers.create_missing,
            "region": customers.phone_region,
        },
    }


def exceptions(mapping: Mapping) -> list[dict[str, Any]]:
    """Every reason code the store knows, with its owner here, most severe first."""
    model = mapping.operating_model
    rows = [
        {
            "code": name,
            "team": model.owner_of(name),
            "severity": reason.severity,
            "meaning": MEANINGS.get(name, ""),
            "action": reason.action,
        }
        for name, reason in REASONS.items()
    ]
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["severity"], len(rank)), r["code"]))


def alerts(mapping: Mapping) -> dict[str, Any] | None:
    """The alerts the mapping asks for (`operating_model.alerts`), or None."""
    settings = getattr(mapping.operating_model, "alerts", None)
    if settings is None:
        return None
    spike = settings.exception_spike
    return {
        # A webhook's address may carry a token (chat webhooks do): the runbook never shows it.
        "webhook": getattr(settings.notify, "webhook", None) is not None,
        "prefect_block": getattr(settings.notify, "prefect_block", None),
        "cooldown": describe_duration(settings.cooldown),
        "missed_runs": settings.missed_runs,
        "spike_count": spike.count,
        "spike_within": describe_duration(spike.within),
    }

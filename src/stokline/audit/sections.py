"""The audit's findings, from what was read (`AuditData`) and the mapping; no I/O here.

Each section answers one question a consultant asks before go-live, with the same rules the
syncs apply (`SkuMatcher`, the `resolve_*` functions, `translate_order`), so that what the audit
calls a gap is exactly what would stop an order or a level once the syncs run.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from stokline.audit.findings import Finding, Inventory
from stokline.audit.read import AuditData
from stokline.config import Mapping
from stokline.config.skus import never_synced, sku_key
from stokline.mapping.translate import (
    SkuMatcher,
    Untranslatable,
    resolve_gateway,
    resolve_location,
    resolve_shipping,
    resolve_tax_class,
)
from stokline.sync.orders.identity import normalise_email, normalise_phone
from stokline.sync.orders.translate import (
    OrderUntranslatable,
    StoklyCatalogue,
    before_go_live,
    is_cancelled,
    is_importable,
    order_location,
    translate_order,
)
from stokline.sync.report import mask

__all__ = ["all_findings", "near_key"]

EXAMPLES = 5
MONEY_MOVED = ("paid", "partially_paid", "partially_refunded", "refunded")


def _examples(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=str.casefold)[:EXAMPLES]


def near_key(sku: str) -> str:
    """A SKU with every difference a person would call a typo folded away: case, separators
    and spaces, and leading zeros of each number (``ACME_Tent-07`` and ``acme-tent-7`` meet;
    ``ACME-101`` and ``ACME-11`` do not)."""
    folded = re.sub(r"(?<!\d)0+(?=\d)", "", sku.strip().casefold())
    return re.sub(r"[\s\-_./]+", "", folded)


def all_findings(mapping: Mapping, data: AuditData) -> tuple[list[Finding], list[Inventory]]:
    owner = mapping.operating_model.owner_of
    findings: list[Finding] = []
    findings += catalogue(mapping, data, owner)
    inventory, coverage_findings = coverage(mapping, data, owner)
    findings += coverage_findings
    findings += customers(mapping, data, owner)
    findings += stock(data, owner)
    findings += orders(mapping, data, owner)
    findings += finance(mapping, data, owner)
    return [f for f in findings if f.count], inventory


# -- catalogue -------------------------------------------------------------------------------


def catalogue(mapping: Mapping, data: AuditData, owner: Any) -> list[Finding]:
    rules = mapping.skus
    live = [i for i in data.items if i.active]
    hidden = [i for i in live if never_synced(i.sku, rules.never_sync)]
    synced = [i for i in live if not never_synced(i.sku, rules.never_sync)]
    matcher = SkuMatcher(mapping, [i.sku for i in synced])
    near: dict[str, list[str]] = defaultdict(list)
    for item in synced:
        near[near_key(item.sku)].append(item.sku)

    no_sku, unmatched, near_rows, collide = [], [], [], []
    matched: set[str] = set()
    for product in data.products:
        for variant in product.variants:
            sku = (variant.sku or "").strip()
            label = f"{product.title or product.id} / {variant.title or variant.id}"
            if not sku:
                no_sku.append(
                    {"product": product.title, "variant": variant.title, "id": variant.id}
                )
                continue
            if never_synced(sku, rules.never_sync):
                continue
            try:
                matched.add(matcher.match(sku))
            except Untranslatable as exc:
                if exc.code == "sku_collision":
                    collide.append({"shopline_sku": sku, "variant": label, "why": exc.message})
                    continue
                candidates = near.get(near_key(sku), [])
                row = {"shopline_sku": sku, "variant": label, "variant_id": variant.id}
                if len(candidates) == 1:
                    near_rows.append({**row, "stokly_sku": candidates[0]})
                else:
                    unmatched.append(row)
    collisions = [
        {"match_key": key, "stokly_skus": ", ".join(skus)}
        for key, skus in sorted(matcher.collisions.items())
    ]
    unsold = [
        {"stokly_sku": i.sku, "name": i.name or ""}
        for i in synced
        if i.sku not in matched and sku_key(i.sku, rules.match) not in matcher.collisions
    ]
    team = owner("unknown_shopline_sku")
    return [
        Finding(
            "catalogue",
            "catalogue.near_match",
            "SHOPLINE SKUs that nearly match a Stokly SKU",
            len(near_rows),
            "Orders of these variants stop at an exception and their stock is never updated, "
            "although the item exists in Stokly under a slightly different SKU.",
            "stranded_order",
            owner("unmapped_sku"),
            _examples(f"{r['shopline_sku']} ≈ {r['stokly_sku']}" for r in near_rows),
            near_rows,
            "Correct the SKU in SHOPLINE, or add it to skus.overrides (the draft mapping does).",
        ),
        Finding(
            "catalogue",
            "catalogue.unmatched_variant",
            "SHOPLINE variants whose SKU matches no Stokly item",
            len(unmatched),
            "Orders of these variants stop at an exception, and SHOPLINE's stock for them is "
            "never set from Stokly: they can be sold when nothing is in the warehouse.",
            "stranded_order",
            team,
            _examples(r["shopline_sku"] for r in unmatched),
            unmatched,
            "Create the items in Stokly, correct the SKUs, or list them in skus.never_sync.",
        ),
        Finding(
            "catalogue",
            "catalogue.collision",
            "Stokly SKUs that are the same under the mapping's matching rule",
            len(collisions),
            "Nothing is synced for these SKUs until one item is renamed: their orders stop at "
            "an exception and their stock is not updated.",
            "stranded_order",
            owner("sku_collision"),
            _examples(r["stokly_skus"] for r in collisions),
            collisions + collide,
            "Rename one of each pair in Stokly, or set skus.match to exact.",
        ),
        Finding(
            "catalogue",
            "catalogue.no_sku",
            "SHOPLINE variants with no SKU",
            len(no_sku),
            "These variants cannot be linked to Stokly: their orders stop at an exception.",
            "stranded_order",
            team,
            _examples(f"{r['product']} / {r['variant']}" for r in no_sku),
            no_sku,
            "Give each variant the SKU of its Stokly item.",
        ),
        Finding(
            "catalogue",
            "catalogue.not_on_shopline",
            "Stokly items with no SHOPLINE variant",
            len(unsold),
            "Customers cannot buy these items online.",
            "unsold",
            owner("unknown_shopline_sku"),
            _examples(r["stokly_sku"] for r in unsold),
            unsold,
            "Publish them in SHOPLINE (catalogue.create_missing), or leave them if not for sale.",
        ),
        Finding(
            "catalogue",
            "catalogue.never_sync",
            "Stokly items that skus.never_sync hides",
            len(hidden),
            "Never synced by design (gift cards, samples): check that the patterns hide only these.",
            "tidy",
            team,
            _examples(i.sku for i in hidden),
            [{"stokly_sku": i.sku, "name": i.name or ""} for i in hidden],
        ),
    ]


# -- what the orders use, and what the mapping covers -----------------------------------------


def _values(order: dict[str, Any]) -> dict[str, set[str]]:
    """The mappable values one order uses, by kind."""
    found: dict[str, set[str]] = defaultdict(set)
    # Where the orders sync takes it from: the order's location, else each line's, else none
    # (the mapping's default location).
    explicit = order_location(order)
    lines = {
        str(li.get("location_id")) for li in order.get("line_items") or [] if li.get("location_id")
    }
    found["location"] |= {explicit} if explicit else (lines or {""})
    for line in order.get("shipping_lines") or []:
        found["shipping"].add(str(line.get("title") or line.get("code") or ""))
    for line in order.get("line_items") or []:
        for tax in line.get("tax_lines") or []:
            found["tax"].add(f"{tax.get('title') or '(untitled)'} @ {tax.get('rate')}")
    for line in order.get("shipping_lines") or []:
        for tax in line.get("tax_lines") or []:
            found["tax"].add(f"{tax.get('title') or '(untitled)'} @ {tax.get('rate')}")
    gateways = {str(d.get("gateway") or "") for d in order.get("payment_details") or []}
    gateways |= {str(g) for g in order.get("payment_gateway_names") or []}
    found["gateway"] |= {g for g in gateways if g}
    found["source"].add(str(order.get("order_source") or "web"))
    return found


def _mapped(
    mapping: Mapping, kind: str, value: str, order: dict[str, Any]
) -> tuple[str | None, bool]:
    """What the mapping makes of one value, and whether only by its default (``on_unmapped:
    default``); (None, False) when nothing maps it. Order sources are reported, not mapped."""
    try:
        if kind == "location":
            return resolve_location(mapping, value or None).fulfilment_location, False
        if kind == "shipping":
            code = next(
                (
                    s.get("code")
                    for s in order.get("shipping_lines") or []
                    if s.get("title") == value
                ),
                None,
            )
            option = resolve_shipping(mapping, value or None, code).stokly_option
            folded = value.strip().casefold()
            listed = any(
                (code and m.shopline_code == code) or m.shopline_title.casefold() == folded
                for m in mapping.shipping.methods
            )
            return option, not listed
        if kind == "tax":
            title, _, rate = value.rpartition(" @ ")
            title = "" if title == "(untitled)" else title
            tax_class = resolve_tax_class(mapping, title or None, rate)
            strict = mapping.model_copy(
                update={"tax": mapping.tax.model_copy(update={"on_unmapped": "exception"})}
            )
            try:
                resolve_tax_class(strict, title or None, rate)
            except Untranslatable:
                return tax_class, True
            return tax_class, False
        if kind == "gateway":
            gateway = resolve_gateway(mapping, value).gateway
            return gateway, gateway.casefold() != value.strip().casefold()
    except (Untranslatable, ArithmeticError, ValueError):
        return None, False
    return "—", False


COVERAGE = {
    "location": (
        "unknown_location",
        "SHOPLINE locations the mapping does not list",
        "stranded_order",
        "Orders from these locations stop at an exception: nobody fulfils them.",
        "Add each to locations: with the Stokly location that fulfils it.",
    ),
    "shipping": (
        "unmapped_shipping",
        "Shipping methods the mapping does not map",
        "stranded_order",
        "Orders with these shipping methods stop at an exception, or go out with the "
        "default method.",
        "Add each to shipping.methods.",
    ),
    "tax": (
        "tax_mismatch",
        "Tax lines no tax rule matches",
        "ledger",
        "Orders with these taxes stop at an exception; the ledger cannot book their tax.",
        "Add a rule to tax.rules (title and rate).",
    ),
    "gateway": (
        "unmapped_gateway",
        "Payment gateways the mapping does not map",
        "ledger",
        "Orders paid this way stop at an exception; their money has no ledger account.",
        "Add each to payments.gateways, with its Stokly method and accounts.",
    ),
}


def coverage(
    mapping: Mapping, data: AuditData, owner: Any
) -> tuple[list[Inventory], list[Finding]]:
    uses: dict[tuple[str, str], int] = Counter()
    example_order: dict[tuple[str, str], dict[str, Any]] = {}
    for order in data.orders:
        for kind, values in _values(order).items():
            for value in values:
                uses[(kind, value)] += 1
                example_order.setdefault((kind, value), order)
    inventory = [
        Inventory(kind, value, count, *_mapped(mapping, kind, value, example_order[(kind, value)]))
        for (kind, value), count in sorted(uses.items())
    ]
    findings = []
    for kind, (code, title, weight, impact, todo) in COVERAGE.items():
        gaps = [i for i in inventory if i.kind == kind and (i.mapped_to is None or i.by_default)]
        rows = [
            {"value": i.value or "(none)", "orders": i.orders,
             "today": f"the default, {i.mapped_to}" if i.by_default else "an exception"}
            for i in gaps
        ]  # fmt: skip
        findings.append(
            Finding(
                "coverage",
                f"coverage.{kind}",
                title,
                len(gaps),
                impact + f" {sum(i.orders for i in gaps)} order(s) in the window.",
                weight,
                owner(code),
                _examples(f"{r['value']} ({r['orders']} orders)" for r in rows),
                rows,
                todo,
            )
        )
    # Every order as the orders sync would translate it: problems the lists above cannot see.
    items = [(i.sku, i.itemId) for i in data.items if i.active and i.format != 2]
    stokly = StoklyCatalogue.build(mapping, items, data.stokly_locations.items())
    stopped: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    rows: list[dict[str, Any]] = []
    settings = mapping.syncs.orders
    import_when = settings.import_when if settings else ("paid",)
    for order in data.orders:
        if is_cancelled(order) or not is_importable(order.get("financial_status"), import_when):
            continue
        try:
            translate_order(mapping, order, stokly)
        except OrderUntranslatable as exc:
            for problem in exc.problems:
                stopped[problem.code] += 1
                examples[problem.code].append(f"{order.get('name')}: {problem.message}")
                rows.append(
                    {"order": order.get("name"), "code": problem.code, "problem": problem.message}
                )
    findings.append(
        Finding(
            "coverage",
            "coverage.orders_stopped",
            "Paid orders of the window that the orders sync would stop at an exception",
            len({r["order"] for r in rows}),
            "Each would wait for a person before reaching the warehouse: "
            + ", ".join(f"{n} × {code}" for code, n in stopped.most_common()),
            "stranded_order",
            owner("unmapped_sku"),
            [e for code in stopped for e in examples[code][:2]][:EXAMPLES],
            rows,
            "Fix the causes listed in this report; then rehearse with "
            "`stokline run orders --dry-run`.",
        )
    )
    excluded = [
        o for o in data.orders if before_go_live(o, settings.import_from if settings else None)
    ]
    if settings is not None and settings.import_from is not None:
        findings.append(
            Finding(
                "orders",
                "orders.before_go_live",
                f"Orders placed before syncs.orders.import_from ({settings.import_from:%Y-%m-%d %H:%M %Z})",
                len(excluded),
                "These are never imported, by the sweep or by a webhook: make sure Stokly has "
                "them already, or move import_from earlier.",
                "tidy",
                owner("order_changed"),
                _examples(str(o.get("name")) for o in excluded),
                [{"order": o.get("name"), "placed": str(o.get("created_at"))} for o in excluded],
            )
        )
    return inventory, findings


# -- customers -------------------------------------------------------------------------------


def customers(mapping: Mapping, data: AuditData, owner: Any) -> list[Finding]:
    region = mapping.customers.phone_region
    by_phone: dict[str, set[str]] = defaultdict(set)
    for customer in data.customers:
        phone = normalise_phone(customer.phone, None, region)
        email = normalise_email(customer.email)
        if phone and email:
            by_phone[phone].add(email)
    ambiguous = {phone: emails for phone, emails in by_phone.items() if len(emails) > 1}
    phone_only: dict[str, str] = {}
    for order in data.orders:
        buyer = order.get("customer") or {}
        email = normalise_email(order.get("email") or buyer.get("email"))
        phone = normalise_phone(
            order.get("phone") or buyer.get("phone"), buyer.get("area_code"), region
        )
        if not email and phone:
            phone_only[str(order.get("name"))] = phone
    merged = {name: phone for name, phone in phone_only.items() if phone in by_phone}
    uses_phone = "phone" in mapping.customers.identity
    team = owner("customer_conflict")
    return [
        Finding(
            "customers",
            "customers.phone_only",
            "Buyers identified by phone only (no email)",
            len(phone_only),
            "Stokly keys customers by email: "
            + (
                "these are matched by phone."
                if uses_phone
                else "the mapping's identity rules do not use the phone, so each order creates a new "
                "customer."
            ),
            "customer",
            team,
            _examples(f"{name} ({mask(phone)})" for name, phone in phone_only.items()),
            [{"order": n, "phone": mask(p)} for n, p in phone_only.items()],
        ),
        Finding(
            "customers",
            "customers.phone_matches_email_customer",
            "Phone-only buyers whose phone belongs to a Stokly customer with an email",
            len(merged) if uses_phone else 0,
            "Their orders are linked to that existing customer (customers.identity uses the "
            "phone): check it is the same person.",
            "customer",
            team,
            _examples(f"{name} ({mask(phone)})" for name, phone in merged.items()),
            [{"order": n, "phone": mask(p)} for n, p in merged.items()],
        ),
        Finding(
            "customers",
            "customers.ambiguous_phone",
            "Stokly customers who share a phone but have different emails",
            len(ambiguous),
            "A buyer with this phone matches several customers: the order goes to "
            + (
                "the first found (customers.on_conflict: link)."
                if mapping.customers.on_conflict == "link"
                else "an exception."
            ),
            "customer",
            team,
            _examples(f"{mask(p)}: {len(e)} customers" for p, e in ambiguous.items()),
            [
                {"phone": mask(p), "emails": ", ".join(mask(x) for x in sorted(e))}
                for p, e in ambiguous.items()
            ],
            "Merge the duplicates in Stokly, or correct the phone numbers.",
        ),
    ]


# -- stock -----------------------------------------------------------------------------------


def stock(data: AuditData, owner: Any) -> list[Finding]:
    if data.stock is None:
        return []
    over = [c for c in data.stock.comparisons if c.oversell_risk]
    under = [c for c in data.stock.comparisons if c.differs and not c.oversell_risk]
    return [
        Finding(
            "stock",
            "stock.oversell_risk",
            "Levels where SHOPLINE offers more than Stokly can sell",
            len(over),
            f"{sum(c.difference or 0 for c in over)} unit(s) could be sold that the warehouse "
            "does not have: cancelled orders and refunds.",
            "oversell",
            owner("oversell_risk"),
            _examples(
                f"{c.shopline_sku} at {c.location}: {c.shopline} shown, {c.sellable} sellable"
                for c in over
            ),
            [c.row() for c in over],
            "The stock sync sets these on its first pass; until then, hold the items' sales.",
        ),
        Finding(
            "stock",
            "stock.under_offered",
            "Levels where SHOPLINE offers less than Stokly can sell, or has no level",
            len(under),
            "Sales lost: SHOPLINE shows fewer units than the warehouse holds.",
            "unsold",
            owner("oversell_risk"),
            _examples(
                f"{c.shopline_sku} at {c.location}: {c.shopline} shown, {c.sellable} sellable"
                for c in under
            ),
            [c.row() for c in under],
        ),
    ]


# -- orders ----------------------------------------------------------------------------------


def orders(mapping: Mapping, data: AuditData, owner: Any) -> list[Finding]:
    settings = mapping.syncs.orders
    import_when = settings.import_when if settings else ("paid",)
    in_stokly = {o.sourceReferenceId for o in data.sale_orders if o.sourceReferenceId}
    by_id = {str(o["id"]): o for o in data.orders}
    missing = [
        o
        for o in data.orders
        if str(o["id"]) not in in_stokly
        and not is_cancelled(o)
        and is_importable(o.get("financial_status"), import_when)
        and not before_go_live(o, settings.import_from if settings else None)
    ]
    orphans = [o for o in data.sale_orders if (o.sourceReferenceId or "") not in by_id]
    unfulfilled = []
    for sale in data.sale_orders:
        order = by_id.get(sale.sourceReferenceId or "")
        if order is None or "dispatched" not in sale.itemStatuses:
            continue
        if order.get("fulfillment_status") not in ("fulfilled", "partial"):
            unfulfilled.append((sale, order))
    return [
        Finding(
            "orders",
            "orders.not_in_stokly",
            "Paid SHOPLINE orders of the window that Stokly does not have",
            len(missing),
            "Nobody picks these unless they are imported: the first sweep after go-live imports "
            "those placed after syncs.orders.import_from.",
            "lost_order",
            owner("unmapped_sku"),
            _examples(str(o.get("name")) for o in missing),
            [
                {
                    "order": o.get("name"),
                    "id": o["id"],
                    "placed": str(o.get("created_at")),
                    "status": o.get("financial_status"),
                }
                for o in missing
            ],
            "Set syncs.orders.import_from to the go-live instant; import older ones by hand.",
        ),
        Finding(
            "orders",
            "orders.no_shopline_order",
            "Stokly sale orders of the channel with no SHOPLINE order in the window",
            len(orphans),
            "Entered by hand or from an old integration: the fulfilment sync cannot send their "
            "tracking anywhere.",
            "tidy",
            owner("stale_fulfilment"),
            _examples(
                f"{o.niceId or o.saleOrderId} ({o.sourceReferenceId or 'no reference'})"
                for o in orphans
            ),
            [{"sale_order": o.saleOrderId, "reference": o.sourceReferenceId} for o in orphans],
        ),
        Finding(
            "orders",
            "orders.shipped_not_fulfilled",
            "Orders shipped in Stokly but unfulfilled in SHOPLINE",
            len(unfulfilled),
            "These customers have no tracking and will ask where their order is.",
            "no_tracking",
            owner("stale_fulfilment"),
            _examples(str(order.get("name")) for _, order in unfulfilled),
            [
                {"order": order.get("name"), "sale_order": sale.saleOrderId}
                for sale, order in unfulfilled
            ],
            "The fulfilment sync sends them once it runs.",
        ),
    ]


# -- finance ---------------------------------------------------------------------------------


def finance(mapping: Mapping, data: AuditData, owner: Any) -> list[Finding]:
    """Days whose payments would not reconcile: a gateway with no mapping, or a tax class with
    no ledger account (finance.accounts.tax)."""
    settings = mapping.syncs.finance
    tax_accounts = set(settings.accounts.tax) if settings is not None else set()
    days: dict[str, set[str]] = defaultdict(set)
    for order in data.orders:
        if order.get("financial_status") not in MONEY_MOVED:
            continue  # no money taken: nothing to reconcile
        day = str(order.get("created_at") or "")[:10] or "(no date)"
        for kind, values in _values(order).items():
            for value in values:
                if kind == "gateway" and _mapped(mapping, kind, value, order)[0] is None:
                    days[day].add(f"gateway {value}")
                if kind == "tax":
                    title, _, rate = value.rpartition(" @ ")
                    try:
                        tax_class = resolve_tax_class(mapping, title, rate)
                    except (Untranslatable, ArithmeticError, ValueError):
                        continue  # already a coverage finding
                    if settings is not None and tax_class not in tax_accounts:
                        days[day].add(f"tax class {tax_class} has no account")
    rows = [{"day": d, "why": "; ".join(sorted(w))} for d, w in sorted(days.items())]
    return [
        Finding(
            "finance",
            "finance.days_not_reconciling",
            "Days whose SHOPLINE payments would not reconcile with the ledger",
            len(rows),
            "Finance would match these days' payouts by hand.",
            "ledger",
            owner("payout_variance"),
            _examples(f"{r['day']}: {r['why']}" for r in rows),
            rows,
            "Map the gateways and give each tax class an account in syncs.finance.accounts.tax.",
        )
    ]

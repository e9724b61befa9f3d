"""A first mapping written from what the audit found (`stokline audit --draft`).

The consultant's mapping (``--mapping``, at least its client and connections) is the start: its
other sections are kept as written, and the five an audit can see into are written again from
the data, each entry commented with its evidence:

- ``locations``: every SHOPLINE location. One the mapping lists keeps its entry; a new one is fed
  by the Stokly location of the same name when there is one, else it is a decision.
- ``skus.overrides``: the mapping's, and one per near match (a SHOPLINE SKU that differs from a
  Stokly SKU only by case, separators or leading zeros), to confirm.
- ``shipping.methods``, ``tax.rules``, ``payments.gateways``: the mapping's, and one entry per
  shipping method, tax line or gateway the window's orders use and nothing maps (falling to a
  default counts as not mapped), its Stokly side a decision.

A decision is a placeholder value starting ``TODO:``: `stokline validate` reports each one at its
line as a decision left to make, and nothing runs from the file until they are made.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from stokline.audit.findings import AuditReport, Inventory
from stokline.config import PLACEHOLDER

__all__ = ["draft_mapping"]

REWRITTEN = ("locations", "skus", "shipping", "tax", "payments")
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:")


def _flow(value: Any) -> str:
    """One value as a one-line YAML flow (``{a: 1, b: [x, y]}``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _todo(what: str) -> str:
    return f"{PLACEHOLDER} {what}"


def _sections(text: str) -> list[tuple[str | None, str]]:
    """The file cut at its top-level keys: (key, its lines and the comments just above it)."""
    parts: list[tuple[str | None, list[str]]] = [(None, [])]
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        match = _TOP_KEY.match(line)
        if match:
            parts.append((match.group(1), [*pending, line]))
            pending = []
        elif line.startswith("#") or not line.strip():
            pending.append(line)
        else:
            parts[-1][1].extend([*pending, line])
            pending = []
    parts[-1][1].extend(pending)
    return [(key, "".join(lines)) for key, lines in parts]


def _orders(inventory: list[Inventory], kind: str) -> dict[str, Inventory]:
    return {i.value: i for i in inventory if i.kind == kind}


def _seen(entry: Inventory | None) -> str:
    return f"{entry.orders} order(s) in the window" if entry else "not seen in the window"


def _block(key: str, head: dict[str, Any], lists: dict[str, list[tuple[str, Any]]]) -> str:
    """``key:`` with ``head``'s plain keys, then each list as commented flow entries."""
    lines = [f"{key}:"]
    for name in [*head, *(n for n in lists if n not in head)]:
        if name not in lists:
            lines.append(f"  {name}: {_flow(head[name])}")
            continue
        lines.append(f"  {name}:" if lists[name] else f"  {name}: []")
        for comment, entry in lists[name]:
            lines += [f"    # {comment}"] if comment else []
            lines.append(f"    - {_flow(entry)}")
    return "\n".join(lines) + "\n"


def _locations(raw: dict[str, Any], report: AuditReport) -> str:
    data = report.data
    listed = {str(e.get("shopline_location")): e for e in raw.get("locations") or []}
    seen = _orders(report.inventory, "location")
    stokly = {name.casefold(): name for name in (data.stokly_locations if data else {})}
    lines = ["locations:"]
    shopline = data.shopline_locations if data else []
    for location in shopline:
        used = seen.get(str(location.id))
        label = f'SHOPLINE location {location.id} "{location.name or ""}": {_seen(used)}'
        entry = listed.pop(str(location.id), None)
        if entry is None:
            same = stokly.get((location.name or "").strip().casefold())
            if same:
                label += f'; Stokly has a location named "{same}": check it is the one'
                entry = {"shopline_location": str(location.id), "name": location.name,
                         "stokly_locations": [same], "fulfil_from": same}  # fmt: skip
            else:
                entry = {
                    "shopline_location": str(location.id),
                    "name": location.name,
                    "stokly_locations": [
                        _todo(f"the Stokly locations whose stock {location.name} sells")
                    ],
                    "fulfil_from": _todo(
                        f"the Stokly location that ships {location.name}'s orders"
                    ),
                }
        lines += [f"  # {label}", f"  - {_flow(entry)}"]
    for key, entry in listed.items():  # in the mapping, not among SHOPLINE's locations
        lines += [f"  # SHOPLINE has no location {key} now: {_seen(seen.get(key))}",
                  f"  - {_flow(entry)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _skus(raw: dict[str, Any], report: AuditReport) -> str:
    skus = dict(raw.get("skus") or {})
    entries: list[tuple[str, Any]] = [("", o) for o in skus.get("overrides") or []]
    have = {str(o.get("shopline_sku")) for o in skus.get("overrides") or []}
    near = next((f for f in report.findings if f.key == "catalogue.near_match"), None)
    for row in near.rows if near else []:
        if row["shopline_sku"] in have:
            continue
        comment = (f"near match: SHOPLINE {row['shopline_sku']} ({row['variant']}) is Stokly "
                   f"{row['stokly_sku']} but for case, separators or zeros; confirm, or correct "
                   "the SKU in SHOPLINE and drop this line")  # fmt: skip
        entries.append(
            (comment, {"shopline_sku": row["shopline_sku"], "stokly_sku": row["stokly_sku"]})
        )
    skus.setdefault("overrides", [])
    return _block("skus", skus, {"overrides": entries})


def _shipping(raw: dict[str, Any], report: AuditReport) -> str:
    shipping = dict(raw.get("shipping") or {})
    seen = _orders(report.inventory, "shipping")
    entries: list[tuple[str, Any]] = []
    titles = set()
    for method in shipping.get("methods") or []:
        title = str(method.get("shopline_title") or "")
        titles.add(title.casefold())
        entries.append((f"{title}: {_seen(seen.get(title))}", method))
    for value, entry in seen.items():
        if value.casefold() in titles or (entry.mapped_to and not entry.by_default):
            continue
        today = f"; today they go out as the default, {entry.mapped_to}" if entry.mapped_to else ""
        entries.append((
            f"{value or '(no shipping line)'}: {_seen(entry)}, not mapped{today}",
            {"shopline_title": value,
             "stokly_option": _todo(f"the Stokly shipping option for {value}"),
             "carrier": _todo(f"the carrier of {value}")},
        ))  # fmt: skip
    return _block("shipping", shipping, {"methods": entries})


def _tax(raw: dict[str, Any], report: AuditReport) -> str:
    tax = dict(raw.get("tax") or {})
    entries: list[tuple[str, Any]] = [("", rule) for rule in tax.get("rules") or []]
    for value, entry in _orders(report.inventory, "tax").items():
        if entry.mapped_to and not entry.by_default:
            continue
        title, _, rate = value.rpartition(" @ ")
        rule: dict[str, Any] = {"shopline_title": title, "rate": _number(rate)}
        rule["stokly_tax_class"] = _todo(f"the Stokly tax class of {value}")
        entries.append((f"tax line {value}: {_seen(entry)}, matches no rule", rule))
    return _block("tax", tax, {"rules": entries})


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _payments(raw: dict[str, Any], report: AuditReport) -> str:
    payments = dict(raw.get("payments") or {})
    seen = _orders(report.inventory, "gateway")
    entries: list[tuple[str, Any]] = []
    names = set()
    for gateway in payments.get("gateways") or []:
        name = str(gateway.get("gateway") or "")
        names.add(name.casefold())
        entries.append((f"{name}: {_seen(seen.get(name))}", gateway))
    for value, entry in seen.items():
        if value.casefold() in names or (entry.mapped_to and not entry.by_default):
            continue
        entries.append((
            f"{value}: {_seen(entry)}, not mapped",
            {"gateway": value,
             "stokly_method": _todo(f"the Stokly payment method (a number) for {value}"),
             "ledger_account": _todo(f"the ledger account {value}'s money goes to")},
        ))  # fmt: skip
    return _block("payments", payments, {"gateways": entries})


def draft_mapping(source: str, report: AuditReport) -> str:
    """The draft mapping's text: ``source`` (the mapping audited) with its locations, SKU
    overrides, shipping methods, tax rules and gateways written again from ``report``."""
    raw = yaml.safe_load(source) or {}
    writers = {"locations": _locations, "skus": _skus, "shipping": _shipping, "tax": _tax,
               "payments": _payments}  # fmt: skip
    head = (
        f"# Drafted by `stokline audit --draft` from {report.client}'s systems: orders placed "
        f"{report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}.\n"
        f"# Values starting {PLACEHOLDER} are decisions left to make; `stokline validate` lists "
        "them.\n"
    )
    out = [head]
    for key, text in _sections(source):
        if key in writers:
            # Comments above the section stay; those inside it described the old entries.
            lines = text.splitlines(keepends=True)
            leading = "".join(lines[: next(i for i, ln in enumerate(lines) if _TOP_KEY.match(ln))])
            trailing = text[len(text.rstrip("\n")) + 1 :]  # the blank lines after the section
            out.append(leading + writers[key](raw, report) + trailing)
        else:
            out.append(text)
    return "".join(out).rstrip("\n") + "\n"

"""Checks a JSON Schema cannot express: references, uniqueness under the SKU rule, schedules,
timezones, currencies (ISO 4217, not just three letters), credentials inside URLs, and templates.

They run on the raw document next to the schema check, so one pass reports everything. Each check
guards the shapes it reads: a part the schema already rejected is skipped, not reported twice.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from stokline.config.currencies import ISO_4217
from stokline.config.problems import Problem, pointer_of
from stokline.config.schedules import check_cron, parse_duration
from stokline.config.schema import did_you_mean
from stokline.config.skus import never_synced, sku_key
from stokline.config.templates import (
    TEMPLATE_VARIABLES,
    Shape,
    TemplateError,
    check_template,
    check_template_fields,
)
from stokline.config.yamlpos import SourceMap, visible

SYNC_NAMES = ("stock", "catalogue", "orders", "fulfilment", "finance")
MIN_INTERVAL_S = 10
# A URL that carries a user name or password (scheme://user:password@host).
_URL_WITH_CREDENTIALS = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]*@")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# Currencies a typo most likely meant, first: a suggestion prefers them.
_COMMON_CURRENCIES = (
    "GBP EUR USD CHF SEK NOK DKK PLN CZK HUF CAD AUD NZD JPY CNY HKD SGD INR".split()  # noqa: SIM905
)


def _currency_guess(code: str) -> str | None:
    """The currency a three-letter typo meant: its letters swapped, else one letter wrong."""
    rest = sorted(ISO_4217 - set(_COMMON_CURRENCIES))
    # X codes are funds, metals and units of account: suggested only for a code starting so.
    ranked = _COMMON_CURRENCIES + [c for c in rest if (c[0] == "X") == (code[0] == "X")]
    for candidate in ranked:
        if sorted(candidate) == sorted(code):
            return candidate
    for candidate in ranked:
        if sum(a != b for a, b in zip(candidate, code, strict=True)) == 1:
            return candidate
    return None


def _dicts(value: object) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _get(data: object, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[part] if isinstance(part, int) else data.get(part)
    return data


class _Checker:
    def __init__(self, data: dict[str, Any], srcmap: SourceMap, filename: str):
        self.data = data
        self.srcmap = srcmap
        self.filename = filename
        self.problems: list[Problem] = []

    def add(
        self, path: tuple, message: str, hint: str | None = None, *, at_key: bool = False
    ) -> None:
        if self.srcmap.is_unreadable(path):
            return  # YAML could not read the value: the parser said so, once
        where = self.srcmap.key(path) if at_key else self.srcmap.value(path)
        self.problems.append(
            Problem(
                self.filename,
                where.line,
                where.column,
                visible(pointer_of(path)),
                visible(message),
                visible(hint) if hint else hint,
            )
        )

    def line(self, path: tuple) -> int:
        return self.srcmap.value(path).line

    def run(self) -> list[Problem]:
        self.client()
        self.connections()
        self.urls()
        self.locations()
        self.skus()
        self.shipping()
        self.tax()
        self.payments()
        self.customers()
        self.syncs()
        self.finance_accounts()
        self.templates()
        return self.problems

    def client(self) -> None:
        currency = _get(self.data, "client", "currency")
        well_formed = isinstance(currency, str) and re.fullmatch("[A-Z]{3}", currency)
        if well_formed and currency not in ISO_4217:
            guess = _currency_guess(currency)
            self.add(
                ("client", "currency"),
                f"'{currency}' is not an ISO 4217 currency code",
                f"did you mean '{guess}'?" if guess else "use a code such as GBP, EUR or USD",
            )
        tz = _get(self.data, "client", "timezone")
        if isinstance(tz, str) and tz and tz not in _timezones():
            guess = did_you_mean(tz, sorted(_timezones()))
            self.add(
                ("client", "timezone"),
                f"unknown timezone '{tz}'",
                f"did you mean '{guess}'?" if guess else "use an IANA name such as Europe/London",
            )

    def connections(self) -> None:
        shop = _get(self.data, "connections", "shopline")
        if isinstance(shop, dict):
            given = [k for k in ("base_url", "store_handle") if k in shop]
            if not given:
                self.add(("connections", "shopline"), "give base_url or store_handle", at_key=True)
            elif len(given) == 2:
                self.add(
                    ("connections", "shopline", "store_handle"),
                    "give base_url or store_handle, not both",
                    at_key=True,
                )

    def urls(self) -> None:
        """No URL anywhere in the file carries a user name or password (never repeated here)."""
        stack: list[tuple[tuple, Any]] = [((), self.data)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, dict):
                stack.extend(((*path, k), v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend(((*path, i), v) for i, v in enumerate(value))
            elif isinstance(value, str) and _URL_WITH_CREDENTIALS.match(value):
                self.add(
                    path,
                    "a URL must not carry a user name or password (user:password@)",
                    "remove them from the address; credentials are references such as"
                    " {env: NAME} under their own keys, never part of the file",
                )

    def _first_seen(self, items: list[tuple[tuple, object]], what: str) -> None:
        """Report every repeat of a value (after the first) in ``items`` of (path, value)."""
        seen: dict[object, tuple] = {}
        for path, value in items:
            if value in seen:
                self.add(path, f"{what} (first at line {self.line(seen[value])})")
            else:
                seen[value] = path

    def locations(self) -> None:
        locs = _get(self.data, "locations")
        entries = list(_dicts(locs))
        self._first_seen(
            [
                (("locations", i, "shopline_location"), loc["shopline_location"])
                for i, loc in entries
                if isinstance(loc.get("shopline_location"), str)
            ],
            "this SHOPLINE location is mapped twice",
        )
        fed_by: dict[str, tuple[int, int]] = {}
        for i, loc in entries:
            stokly = loc.get("stokly_locations")
            stokly = [s for s in stokly if isinstance(s, str)] if isinstance(stokly, list) else []
            for j, name in enumerate(stokly):
                if name in fed_by and fed_by[name][0] != i:
                    first = (
                        "locations",
                        *fed_by[name],
                    )
                    self.add(
                        ("locations", i, "stokly_locations", j),
                        f"Stokly location '{name}' already feeds another SHOPLINE location "
                        f"(line {self.line(first)})",
                        "a Stokly location may feed only one SHOPLINE location, "
                        "or its stock would be sold twice",
                    )
                else:
                    fed_by.setdefault(name, (i, j))
            fulfil = loc.get("fulfil_from")
            if isinstance(fulfil, str) and stokly and fulfil not in stokly:
                guess = did_you_mean(fulfil, stokly)
                self.add(
                    ("locations", i, "fulfil_from"),
                    f"'{fulfil}' is not one of this location's stokly_locations",
                    f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(stokly),
                )
        defaults = [i for i, loc in entries if loc.get("default") is True]
        for i in defaults[1:]:
            self.add(
                ("locations", i, "default"),
                f"a second default location (the first is at line {self.line(('locations', defaults[0]))})",
                "at most one location is the default",
            )

    def skus(self) -> None:
        match = _get(self.data, "skus", "match")
        if match not in ("exact", "case_insensitive", "normalised"):
            return
        overrides = _get(self.data, "skus", "overrides")
        self._first_seen(
            [
                (("skus", "overrides", i, "shopline_sku"), sku_key(o["shopline_sku"], match))
                for i, o in _dicts(overrides)
                if isinstance(o.get("shopline_sku"), str)
            ],
            f"this SHOPLINE SKU is overridden twice under match: {match}",
        )
        # Two SHOPLINE variants onto one Stokly item would each show its whole stock: the stock
        # sync shows it on one only, so the mapping must not ask for it twice.
        targets: dict[str, tuple] = {}
        for i, o in _dicts(overrides):
            target = o.get("stokly_sku")
            if not isinstance(target, str):
                continue
            path = ("skus", "overrides", i, "stokly_sku")
            first = targets.setdefault(sku_key(target, match), path)
            if first != path:
                self.add(
                    path,
                    f"'{target}' is also the target of another override (line {self.line(first)})",
                    "one Stokly item's stock can show on one SHOPLINE variant only: keep one "
                    "override, or map the other variant to its own Stokly SKU",
                )
        self.show_stock_on(match)

    def show_stock_on(self, match: str) -> None:
        """Each entry names one variant, by SKU or by id; each Stokly item once; and a SKU that
        can resolve to its item (whether a variant has it is only known at run time)."""
        overridden: dict[str, tuple[str, tuple]] = {}
        for i, o in _dicts(_get(self.data, "skus", "overrides")):
            source, target = o.get("shopline_sku"), o.get("stokly_sku")
            if isinstance(source, str) and isinstance(target, str):
                path = ("skus", "overrides", i, "shopline_sku")
                overridden.setdefault(sku_key(source, match), (target, path))
        never = _get(self.data, "skus", "never_sync")
        patterns = [p for p in never if isinstance(p, str)] if isinstance(never, list) else []
        chosen: dict[str, tuple] = {}
        for i, entry in _dicts(_get(self.data, "skus", "show_stock_on")):
            base = ("skus", "show_stock_on", i)
            given = [k for k in ("shopline_sku", "shopline_variant_id") if k in entry]
            if not given:
                self.add(
                    base,
                    "this entry names no SHOPLINE variant",
                    "give shopline_sku (or shopline_variant_id, where the same SKU is on two"
                    " products): the variant that shows the Stokly item's stock",
                )
            elif len(given) == 2:
                self.add(
                    (*base, "shopline_variant_id"),
                    "give shopline_sku or shopline_variant_id, not both",
                    at_key=True,
                )
            item = entry.get("stokly_sku")
            if not isinstance(item, str):
                continue
            here = (*base, "stokly_sku")
            first = chosen.setdefault(sku_key(item, match), here)
            if first != here:
                self.add(
                    (*base, "stokly_sku"),
                    f"Stokly SKU '{item}' already has a variant chosen (line {self.line(first)})",
                    "one variant shows an item's stock: keep one entry",
                )
                continue
            sku = entry.get("shopline_sku")
            if not isinstance(sku, str) or len(given) == 2:
                continue
            path = (*base, "shopline_sku")
            target, at = overridden.get(sku_key(sku, match), (None, None))
            if never_synced(sku, patterns):
                self.add(
                    path,
                    f"'{sku}' is never synced (skus.never_sync), so it cannot show {item}'s stock",
                    "name a variant the stock sync pushes to",
                )
            elif target is not None and at is not None:
                if sku_key(target, match) != sku_key(item, match):
                    self.add(
                        path,
                        f"'{sku}' is overridden to '{target}' (line {self.line(at)}), so it"
                        f" never shows {item}'s stock",
                        f"name a variant that resolves to {item}: its own SKU, or one"
                        " overridden to it",
                    )
            elif sku_key(sku, match) != sku_key(item, match):
                self.add(
                    path,
                    f"'{sku}' neither matches '{item}' under match: {match} nor is overridden to"
                    " it, so it never shows its stock",
                    f"name a variant whose SKU matches {item}, or add an override from"
                    f" {sku} to {item}",
                )

    def _needs_default(self, section: str, default_key: str) -> None:
        if (
            _get(self.data, section, "on_unmapped") == "default"
            and _get(self.data, section, default_key) is None
        ):
            self.add(
                (section, "on_unmapped"),
                f"on_unmapped is default but {section}.{default_key} is not given",
                f"add {default_key}, or set on_unmapped: exception",
            )

    def shipping(self) -> None:
        self._needs_default("shipping", "default")
        methods = list(_dicts(_get(self.data, "shipping", "methods")))
        self._first_seen(
            [
                (("shipping", "methods", i, "shopline_title"), m["shopline_title"].casefold())
                for i, m in methods
                if isinstance(m.get("shopline_title"), str)
            ],
            "this shipping title is mapped twice",
        )
        self._first_seen(
            [
                (("shipping", "methods", i, "shopline_code"), m["shopline_code"])
                for i, m in methods
                if isinstance(m.get("shopline_code"), str)
            ],
            "this shipping code is mapped twice",
        )

    def tax(self) -> None:
        self._needs_default("tax", "default_tax_class")
        rules = list(_dicts(_get(self.data, "tax", "rules")))
        self._first_seen(
            [
                (("tax", "rules", i), (r.get("shopline_title"), r.get("rate")))
                for i, r in rules
                if isinstance(r.get("shopline_title"), str | None)
                and isinstance(r.get("rate"), int | float | None)
            ],
            "the same tax rule is given twice",
        )

    def payments(self) -> None:
        self._needs_default("payments", "default_gateway")
        gateways = list(_dicts(_get(self.data, "payments", "gateways")))
        names = [g["gateway"] for _, g in gateways if isinstance(g.get("gateway"), str)]
        self._first_seen(
            [
                (("payments", "gateways", i, "gateway"), g["gateway"])
                for i, g in gateways
                if isinstance(g.get("gateway"), str)
            ],
            "this gateway is mapped twice",
        )
        default = _get(self.data, "payments", "default_gateway")
        if isinstance(default, str) and names and default not in names:
            guess = did_you_mean(default, names)
            self.add(
                ("payments", "default_gateway"),
                f"'{default}' is not one of the gateways",
                f"did you mean '{guess}'?" if guess else "choose one of: " + ", ".join(names),
            )

    def customers(self) -> None:
        identity = _get(self.data, "customers", "identity")
        if (
            isinstance(identity, list)
            and "phone" in identity
            and _get(self.data, "customers", "phone_region") is None
        ):
            self.add(
                ("customers", "identity"),
                "phone is an identity key but customers.phone_region is not given",
                "phone numbers written without a country code need a region, e.g. phone_region: GB",
            )

    def syncs(self) -> None:
        syncs = _get(self.data, "syncs")
        if not isinstance(syncs, dict):
            return
        for name in SYNC_NAMES:
            sync = syncs.get(name)
            if not isinstance(sync, dict):
                continue
            base = ("syncs", name)
            given = [k for k in ("every", "cron", "at") if k in sync]
            if len(given) > 1:
                self.add(
                    (*base, given[1]),
                    f"give one of every, cron or at, not {' and '.join(given)}",
                    at_key=True,
                )
            elif not given and sync.get("enabled", True) is not False:
                self.add(
                    base,
                    f"the {name} sync has no schedule",
                    "add every: (e.g. 5m), cron: or at:",
                    at_key=True,
                )
            every = sync.get("every")
            if isinstance(every, str):
                try:
                    if parse_duration(every).total_seconds() < MIN_INTERVAL_S:
                        self.add(
                            (*base, "every"),
                            f"every {every} is too frequent",
                            f"use {MIN_INTERVAL_S}s or more",
                        )
                except ValueError:
                    pass  # the schema's pattern already reported it
            cron = sync.get("cron")
            if isinstance(cron, str):
                try:
                    check_cron(cron)
                except ValueError as exc:
                    self.add((*base, "cron"), f"schedule does not parse: {exc}")

    def finance_accounts(self) -> None:
        tax_accounts = _get(self.data, "syncs", "finance", "accounts", "tax")
        if not isinstance(tax_accounts, dict) or not tax_accounts:
            return  # not a mapping, or an empty one: the schema says so, once
        classes: list[str] = [
            r["stokly_tax_class"]
            for _, r in _dicts(_get(self.data, "tax", "rules"))
            if isinstance(r.get("stokly_tax_class"), str)
        ]
        default = _get(self.data, "tax", "default_tax_class")
        if isinstance(default, str):
            classes.append(default)
        for cls in dict.fromkeys(classes):
            if cls not in tax_accounts:
                self.add(
                    ("syncs", "finance", "accounts", "tax"),
                    f"tax class '{cls}' has no ledger account",
                    f'add {cls}: "<account>" so its tax can be posted',
                    at_key=True,
                )

    def templates(self) -> None:
        for path, source, place in self._template_places():
            try:
                check_template(source, TEMPLATE_VARIABLES[place])
            except TemplateError as exc:
                allowed = sorted(TEMPLATE_VARIABLES[place])
                hint = "variables here: " + ", ".join(allowed)
                if "unknown variable" in str(exc):
                    name = str(exc).rsplit("'", 2)[-2]
                    guess = did_you_mean(name, allowed)
                    if guess:
                        hint = f"did you mean '{guess}'? " + hint
                where = self.srcmap.value(path)
                line = where.line + (exc.lineno - 1 if exc.lineno and exc.lineno > 1 else 0)
                self.problems.append(
                    Problem(
                        self.filename,
                        line,
                        where.column,
                        visible(pointer_of(path)),
                        visible(str(exc)),
                        visible(hint),
                    )
                )

    def _template_places(self) -> Iterator[tuple[tuple, str, str]]:
        for place in ("sale_order", "shopline_product"):
            section = _get(self.data, "fields", place)
            if not isinstance(section, dict):
                continue
            for key, value in section.items():
                if isinstance(value, str):
                    yield ("fields", place, key), value, place
                elif isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, str):
                            yield ("fields", place, key, i), item, place
        for i, method in _dicts(_get(self.data, "shipping", "methods")):
            if isinstance(method.get("tracking_url"), str):
                yield (
                    ("shipping", "methods", i, "tracking_url"),
                    method["tracking_url"],
                    "tracking_url",
                )


def semantic_problems(data: object, srcmap: SourceMap, filename: str) -> list[Problem]:
    """The problems the schema cannot see. ``data`` may be partly invalid; bad parts are skipped."""
    if not isinstance(data, dict):
        return []
    return _Checker(data, srcmap, filename).run()


def template_field_problems(
    data: object,
    srcmap: SourceMap,
    filename: str,
    fields: Mapping[str, Mapping[str, Shape]],
) -> list[Problem]:
    """Templates reading fields their records do not have, one problem per field read.

    ``fields`` gives, per template place (``sale_order``, ``tracking_url``, ...), the `Shape` of
    each variable (from the connectors' models: `stokline validate` builds them, since this layer
    knows no API). A template that does not even parse or uses what it may not is left to the
    templates check, which reports it once.
    """
    if not isinstance(data, dict):
        return []
    checker = _Checker(data, srcmap, filename)
    problems: list[Problem] = []
    for path, source, place in checker._template_places():
        variables = fields.get(place)
        if not variables:
            continue
        try:
            check_template(source, TEMPLATE_VARIABLES[place])
        except TemplateError:
            continue
        where = srcmap.value(path)
        for unknown in check_template_fields(source, variables):
            guess = did_you_mean(unknown.name, list(unknown.choices))
            if guess:
                hint = f"did you mean '{guess}'?"
            elif unknown.choices:
                hint = "fields here: " + ", ".join(unknown.choices[:40])
            else:
                hint = None
            line = where.line + (unknown.line - 1 if unknown.line > 1 else 0)
            problems.append(
                Problem(
                    filename,
                    line,
                    where.column,
                    visible(pointer_of(path)),
                    visible(unknown.message),
                    visible(hint) if hint else None,
                )
            )
    return problems

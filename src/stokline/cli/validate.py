"""`stokline validate`: check mapping files against the schema and the semantic rules."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from functools import cache

from stokline.cli import options
from stokline.cli._mappings import mapping_files
from stokline.config import check_file, is_decision, unset_secrets
from stokline.config.models import Client
from stokline.config.semantics import template_field_problems
from stokline.config.templates import PLAIN, Shape, shape_of
from stokline.connectors.shopline.models import Customer, Order

HELP = """\
Check mapping files: YAML syntax, duplicate keys, the JSON Schema (schemas/mapping.schema.json),
references between sections, schedules, timezones and templates (including the fields a template
reads: a SHOPLINE order's are the ones SHOPLINE documents). Every problem is one line:

  FILE:LINE:COLUMN: /json/pointer: message; hint

Exit status: 0 when every file is valid, 1 when any has problems, 2 on a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="check mapping files and report every problem with its line",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_paths(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for editors and CI",
    )
    parser.add_argument(
        "--check-env",
        action="store_true",
        help="also report secret references whose environment variable is not set (values are never printed)",
    )
    parser.set_defaults(handler=run)


@cache
def template_fields() -> Mapping[str, Mapping[str, Shape]]:
    """The records each template place renders with, as the syncs pass them: a SHOPLINE order
    and its customer as the `Order` model dumps them, the mapping's ``client`` section. A
    product template's ``item`` (a Stokly item, read as it comes) is not checked."""
    order, client = shape_of(Order), shape_of(Client)
    return {
        "sale_order": {"order": order, "customer": shape_of(Customer), "client": client},
        "tracking_url": {"order": order, "tracking_number": PLAIN, "carrier": PLAIN},
        "shopline_product": {"client": client},
    }


def override_note(result: object) -> str | None:
    """What validate cannot know: whether SHOPLINE also sells an override's Stokly SKU as a
    variant of its own. That collision is only seen at run time; say so, once per file."""
    mapping = getattr(result, "mapping", None)
    if mapping is None or not mapping.skus.overrides:
        return None
    targets = list(dict.fromkeys(o.stokly_sku for o in mapping.skus.overrides))
    shown = ", ".join(targets[:5]) + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")
    return (
        f"{len(mapping.skus.overrides)} override(s) point at Stokly SKUs ({shown}) that SHOPLINE"
        " may also sell as variants of their own; validate cannot read SHOPLINE's catalogue, so"
        " that is found at run time: the stock sync then shows the item's stock on one variant"
        " only (the one skus.show_stock_on names, else the one whose SKU is the Stokly SKU) and"
        " raises sku_collision naming them all"
    )


def show_stock_on_note(result: object) -> str | None:
    """What validate cannot know of ``skus.show_stock_on``: whether SHOPLINE has the variant an
    entry names, among those sharing the item. Only the stock sync sees that; say so."""
    mapping = getattr(result, "mapping", None)
    if mapping is None or not mapping.skus.show_stock_on:
        return None
    entries = mapping.skus.show_stock_on
    named = [
        f"{c.stokly_sku} on "
        + (c.shopline_sku if c.shopline_sku is not None else f"variant {c.shopline_variant_id}")
        for c in entries
    ]
    shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
    return (
        f"skus.show_stock_on names {len(entries)} SHOPLINE variant(s) to show a Stokly item's"
        f" stock ({shown}); validate cannot read SHOPLINE's catalogue, so whether each is"
        " among the variants sharing its Stokly item is found at run time: where it is not, the"
        " stock sync shows the stock on the variant whose SKU is the Stokly SKU (else the lowest"
        " id) and says so in the item's sku_collision exception"
    )


def notes(result: object) -> list[str]:
    """Everything validate cannot know about a valid file, one line each."""
    return [n for n in (override_note(result), show_stock_on_note(result)) if n]


def run(args: argparse.Namespace) -> int:
    results = []
    for path in mapping_files("stokline validate", args.paths):
        result = check_file(path)
        fields = template_field_problems(result.data, result.srcmap, result.file, template_fields())
        if fields:
            result.problems = sorted(set(result.problems) | set(fields))
        if args.check_env:
            result.problems += unset_secrets(result)
        results.append(result)
    failed = [r for r in results if r.problems]
    if args.format == "json":
        report = {
            "valid": not failed,
            "files": [
                {
                    "path": r.file,
                    "valid": not r.problems,
                    "client": r.mapping.client.name if r.mapping else None,
                    "problems": [p.as_dict() for p in r.problems],
                    "notes": notes(r),
                }
                for r in results
            ],
        }
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            if r.problems:
                for problem in r.problems:
                    print(problem.format())
            else:
                assert r.mapping is not None
                print(f"{r.file}: ok (client {r.mapping.client.name})")
                for note in notes(r):
                    print(f"{r.file}: note: {note}")
        for r in failed:
            decisions = sum(1 for p in r.problems if is_decision(p))
            if decisions == len(r.problems):
                print(
                    f"{r.file}: complete but for {decisions} decision(s) left to make (TODO: "
                    "placeholders); nothing runs from it until they are made",
                    file=sys.stderr,
                )
        if failed:
            count = sum(len(r.problems) for r in failed)
            print(f"{count} problem(s) in {len(failed)} of {len(results)} file(s)", file=sys.stderr)
    return 1 if failed else 0

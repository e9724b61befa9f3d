"""`stokline plan`: validate the mapping files and say, per client, which syncs run when."""

from __future__ import annotations

import argparse

from stokline.cli import options
from stokline.cli._mappings import mapping_files
from stokline.config import Mapping, check_file
from stokline.config.schedules import describe_duration

HELP = """\
Validate mapping files (as `stokline validate` does) and print, for each valid client, the syncs
that would run, on which schedule, with the settings that matter most.
Exit status: 0 when every file is valid, 1 otherwise, 2 on a usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plan",
        help="validate mapping files and print which syncs run on which schedule",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_paths(parser)
    parser.set_defaults(handler=run)


def _notes(mapping: Mapping, name: str) -> str:
    syncs = mapping.syncs
    if name == "stock" and syncs.stock:
        fed = {s for loc in mapping.locations if loc.stock.sync for s in loc.stokly_locations}
        pushed = sum(1 for loc in mapping.locations if loc.stock.sync)
        events = "; also on Stokly stock movements" if syncs.stock.event_driven else ""
        return f"{pushed} SHOPLINE location(s) fed by {len(fed)} Stokly location(s){events}"
    if name == "catalogue" and syncs.catalogue:
        create = "creates" if syncs.catalogue.create_missing else "reports"
        return f"{create} unlisted items; removed items: {syncs.catalogue.on_removed}"
    if name == "orders":
        when = ", ".join(syncs.orders.import_when)
        return f"imports {when} orders; look-back {describe_duration(syncs.orders.lookback)}"
    if name == "fulfilment" and syncs.fulfilment:
        return f"stale after {describe_duration(syncs.fulfilment.stale_after)}"
    if name == "finance" and syncs.finance:
        approval = "approval required" if syncs.finance.approval == "required" else "posts directly"
        return f"journals by {', '.join(syncs.finance.group_by)}; {approval}"
    return ""


def render_plan(mapping: Mapping) -> str:
    client = mapping.client
    lines = [
        f"{client.name} ({client.title}) — {mapping.source} — {client.timezone}, {client.currency}"
    ]
    rows = [("sync", "schedule", "what it does")]
    for name, sync in mapping.syncs.enabled().items():
        rows.append((name, sync.schedule.describe(client.timezone), _notes(mapping, name)))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for row in rows:
        lines.append(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    status = 0
    blocks = []
    for path in mapping_files("stokline plan", args.paths):
        result = check_file(path)
        if result.mapping is None:
            status = 1
            for problem in result.problems:
                print(problem.format())
            continue
        blocks.append(render_plan(result.mapping))
    print("\n\n".join(blocks))
    return status

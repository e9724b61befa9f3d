"""`stokline deploy`: a client's deployments, derived from its mapping, onto a Prefect server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from stokline.cli import Exit

HELP = """\
Make the Prefect server's deployments of the named clients what their mapping files say, and
nothing else. For each MAPPING (default: every mappings/*.yaml):

  1. the file is validated (its problems are printed with file, line and key, and nothing is
     deployed while one is invalid);
  2. the work pool that prefect.yaml names (`stokline`, type process) is created if missing;
  3. each of the client's deployments, named <flow>-<client>, is created or updated from the
     mapping: orders, orders-inbox, stock, stock-events, catalogue, fulfilment, finance, status
     and audit (unscheduled: run it from the UI), with the schedules of its `syncs:` section. Only the fields that differ are written: an
     unchanged deployment is not touched, and no other client's deployment is read or written.
     A sync that is off (absent, or `enabled: false`) has its deployment paused, and resumed
     when it is on again; a deployment paused in the Prefect UI stays paused;
  4. a new deployment of a watcher (orders inbox, stock events) or of the stock or catalogue
     pass gets a first run at once, so the client's runs appear within a minute;
  5. the client's alerts are applied as Prefect automations (`stokline automations apply`).

With --receiver URL it also checks that the webhook receiver there serves each client (it
reads new mapping files by itself; see `stokline receiver --help`) and prints the webhook
address to subscribe in SHOPLINE.

Clients are deployed 8 at a time and reported in the order given; the server's automations are
read once for all of them.

--remove CLIENT deletes every deployment of that client (its past runs stay in Prefect); it is
the only way deployments are deleted. --dry-run prints the plan and changes nothing.

Prefect is --prefect-url, else PREFECT_API_URL (environment or active profile). When neither is
set, the local stack's http://127.0.0.1:4200/api is used if it answers, and the command says so.
Run from the project root (where prefect.yaml is): flows and mappings are named relative to it.

Exit status: 0 deployed (or planned), 1 a mapping is invalid, Prefect does not answer or
refused a change, 2 a usage error.
"""

_MARKS = {
    "create": "+",
    "update": "~",
    "unchanged": "=",
    "pause": "‖",
    "resume": "▸",
    "kept paused": "‖",
    "remove": "-",
}
_DONE = {
    False: {"create": "created", "update": "updated", "pause": "paused", "resume": "resumed",
            "remove": "removed", "unchanged": "unchanged", "kept paused": "kept paused"},
    True: {"create": "to create", "update": "to update", "pause": "to pause",
           "resume": "to resume", "remove": "to remove", "unchanged": "unchanged",
           "kept paused": "kept paused"},
}  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "deploy",
        help="create or update the Prefect deployments of clients, from their mapping files",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "mappings",
        nargs="*",
        metavar="MAPPING",
        help="mapping files or folders of the clients to deploy (default: mappings/*.yaml)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change, and change nothing"
    )
    parser.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="CLIENT",
        help="delete every deployment of CLIENT (repeatable); nothing else is deployed",
    )
    parser.add_argument(
        "--receiver",
        metavar="URL",
        help="the webhook receiver's base URL: check it serves each client",
    )
    parser.add_argument(
        "--no-start",
        action="store_true",
        help="do not start a first run of new watcher and stock deployments",
    )
    parser.add_argument(
        "--prefect-url",
        metavar="URL",
        help="the Prefect API (default: PREFECT_API_URL; else the local stack's, if it answers)",
    )
    parser.set_defaults(handler=run)


def _say_error(message: str) -> None:
    print(f"stokline deploy: error: {message}", file=sys.stderr)


def prefect_url(given: str | None) -> str:
    """The Prefect API to deploy to; `Exit` (1) with the reason when none answers."""
    from prefect.settings import get_current_settings

    from stokline.ops.prefect_api import LOCAL_API, unreachable

    configured = given or get_current_settings().api.url
    url = (configured or LOCAL_API).rstrip("/")
    problem = unreachable(url)
    if problem and not configured:
        _say_error(
            f"PREFECT_API_URL is not set and no local stack answers at {LOCAL_API}: export "
            "PREFECT_API_URL=http://HOST:4200/api (the server to deploy to) or give --prefect-url"
        )
        raise Exit(1)
    if problem:
        _say_error(f"{problem}; check PREFECT_API_URL or --prefect-url")
        raise Exit(1)
    if not configured:
        print(f"PREFECT_API_URL is not set: deploying to the local stack at {url}", flush=True)
    return url


def run(args: argparse.Namespace) -> int:
    from stokline.cli._mappings import mapping_files, valid_mappings
    from stokline.ops.deployments import ProjectError, load_project

    try:
        project = load_project(Path.cwd())
    except ProjectError as exc:
        _say_error(str(exc))
        return 2
    targets: list[tuple[Any, Path]] = []
    if not args.remove:
        paths = mapping_files("stokline deploy", args.mappings)
        mappings = valid_mappings("stokline deploy", [str(p) for p in paths])
        targets = list(zip(mappings, paths, strict=True))
        problem = _problem_with(targets, project)
        if problem:
            _say_error(problem)
            return 2
    elif args.mappings:
        _say_error("give either MAPPING files to deploy or --remove CLIENT, not both")
        return 2
    url = prefect_url(args.prefect_url)
    return asyncio.run(_deploy(targets, args, project, url))


def _problem_with(targets: list[tuple[Any, Path]], project: Any) -> str | None:
    from stokline.ops.deployments import mapping_parameter

    seen: dict[str, Path] = {}
    for mapping, path in targets:
        name = mapping.client.name
        if name in seen:
            return (
                f"{path} and {seen[name]} both name client {name}: a client is one file "
                "(rename client.name in the copy)"
            )
        seen[name] = path
        try:
            mapping_parameter(path, project.root)
        except ValueError as exc:
            return str(exc)
    return None


CONCURRENT_CLIENTS = 8  # clients deployed at once: a hundred take minutes, not a quarter-hour


async def _deploy(targets: list, args: argparse.Namespace, project: Any, url: str) -> int:
    from stokline.ops.automations import ApplyResult, apply_guard
    from stokline.ops.deploy import FlowSchemas, ensure_pool, remove_client
    from stokline.ops.deployments import KINDS
    from stokline.ops.prefect_api import prefect_client

    dry = args.dry_run
    async with prefect_client(url) as prefect:
        if args.remove:
            for client in args.remove:
                print(_report(await remove_client(prefect, client, dry_run=dry), dry), flush=True)
            return 0
        note = await ensure_pool(prefect, project.pool, dry_run=dry)
        if note:
            print(note, flush=True)
        guard = ApplyResult("workspace", dry)
        await apply_guard(prefect, guard)
        for change in guard.changes:
            if change.action != "unchanged":
                verb = _DONE[dry].get(change.action, change.action)
                print(f"workspace alert {verb}: {change.name}", flush=True)
        automations = await prefect.read_automations()
        flows = FlowSchemas(project)
        for kind in KINDS:
            flows.of(kind.entrypoint)  # loaded before the clients run at once
        gate = asyncio.Semaphore(CONCURRENT_CLIENTS)

        async def one(mapping: Any, path: Path) -> tuple[list[str], int]:
            async with gate:
                return await _deploy_client(prefect, mapping, path, args, project, flows,
                                            automations)  # fmt: skip

        # Clients are deployed at once, and reported in the order given, each as it is done.
        tasks = [asyncio.ensure_future(one(mapping, path)) for mapping, path in targets]
        status = 0
        try:
            for task in tasks:
                lines, code = await task
                print("\n".join(lines), flush=True)
                status = max(status, code)
        finally:
            for task in tasks:
                task.cancel()
    return status


async def _deploy_client(
    prefect: Any,
    mapping: Any,
    path: Path,
    args: argparse.Namespace,
    project: Any,
    flows: Any,
    automations: list[Any],
) -> tuple[list[str], int]:
    """One client's deployments and alerts; the lines to print and the exit status."""
    from stokline.ops.deploy import apply, existing_deployments, plan_client
    from stokline.ops.deployments import client_deployments

    dry = args.dry_run
    client = mapping.client.name
    specs = client_deployments(mapping, path, project)
    existing = await existing_deployments(prefect, [client])
    plan = plan_client(client, specs, existing, flows)
    if not dry:
        await apply(prefect, plan, flows, start=not args.no_start)
    lines = [_report(plan, dry)]
    status = await _alerts(prefect, mapping, dry, automations, lines)
    if args.receiver:
        code, line = await asyncio.to_thread(_check_receiver, args.receiver, client)
        status = max(status, code)
        if line:
            lines.append(line)
    return lines, status


def _report(plan: Any, dry: bool) -> str:
    verbs = _DONE[dry]
    order = ("create", "update", "resume", "pause", "kept paused", "unchanged", "remove")
    counts = [f"{plan.count(a)} {verbs[a]}" for a in order if plan.count(a)]
    mode = " (dry run: nothing changed)" if dry else ""
    lines = [f"{plan.client}: {', '.join(counts) or 'nothing to deploy'}{mode}"]
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        details = f"  ({'; '.join(change.details)})" if change.details else ""
        started = "  — first run started" if change.started else ""
        lines.append(f"  {_MARKS[change.action]} {change.name}{details}{started}")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


async def _alerts(
    prefect: Any, mapping: Any, dry: bool, automations: list[Any], lines: list[str]
) -> int:
    from stokline.ops.automations import AlertsUnavailable, apply_alerts

    try:
        result = await apply_alerts(
            mapping, prefect, dry_run=dry, guard=False, automations=automations
        )
    except AlertsUnavailable as exc:
        _say_error(f"{mapping.client.name}: alerts: {exc}")
        return 1
    changed = [c for c in result.changes if c.action != "unchanged"]
    verb = "to apply" if dry else "applied"
    what = ", ".join(f"{c.action} {c.name}" for c in changed) if changed else "unchanged"
    lines.append(f"  alerts {verb}: {what}")
    lines += [f"  note: {note}" for note in result.notes]
    return 0


def _check_receiver(base: str, client: str) -> tuple[int, str | None]:
    """Whether the receiver at ``base`` serves ``client``: (status, the line to print)."""
    import httpx

    base = base.rstrip("/")
    try:
        health = httpx.get(f"{base}/health", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        _say_error(
            f"the receiver at {base} does not answer its health check ({type(exc).__name__})"
        )
        return 1, None
    if client in (health.get("clients") or []):
        return 0, f"  receiver serves it: subscribe SHOPLINE's webhooks to {base}/webhooks/{client}"
    reason = (health.get("not_served") or {}).get(client)
    if reason:
        _say_error(f"{client}: the receiver at {base} does not serve it: {reason}")
    else:
        _say_error(
            f"{client}: the receiver at {base} does not know it: is its mapping file in the "
            "receiver's --mapping folder?"
        )
    return 1, None

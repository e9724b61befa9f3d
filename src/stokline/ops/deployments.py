"""A client's Prefect deployments, derived from its mapping file: the only place they are declared.

Each client gets one deployment per sync it runs, named ``<flow>-<client>``:

=================  ====================================  ========================================
deployment         runs                                  when
=================  ====================================  ========================================
orders-<c>         flows/orders.py (the sweep)           ``syncs.orders`` (every/cron/at)
orders-inbox-<c>   flows/orders_events.py (the watcher)  every `WATCH_MINUTES`, with orders on
stock-<c>          flows/stock.py (the full pass)        ``syncs.stock``
stock-events-<c>   flows/stock_events.py (event path)    every `WATCH_MINUTES`, with
                                                         ``syncs.stock.event_driven``
catalogue-<c>      flows/catalogue.py                    ``syncs.catalogue``
fulfilment-<c>     flows/fulfilment.py                   ``syncs.fulfilment``
finance-<c>        flows/finance.py                      ``syncs.finance`` (its ``at`` in the
                                                         client's timezone)
status-<c>         flows/status.py (the dashboard)       every `STATUS_EVERY`
=================  ====================================  ========================================

What the deployments share comes from the project's ``prefect.yaml`` (`Project`): the work pool's
name and job variables (the heartbeat setting every run needs) and the pull step. A sync that is
absent from the mapping or has ``enabled: false`` yields its deployment marked not wanted, so that
`stokline.ops.deploy` pauses one that exists and creates none.

Interval schedules are anchored at a fixed instant plus an offset drawn from the client's and the
flow's names (`anchor_of`): the same mapping always yields the same schedule (deploying again
moves no run), and a hundred clients' two-minute sweeps do not all start in the same second.

This module only describes; it reads no server. It depends on the mapping model, nothing of the
flows: the flow files are named by entrypoint and loaded only when a deployment is applied.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stokline.ops.heartbeats import RUN_TAG, worker_env

if TYPE_CHECKING:
    from stokline.config import Mapping

PROJECT_FILE = "prefect.yaml"
DEFAULT_POOL = "stokline"
WATCH_MINUTES = 10
"""How long a watcher run (orders inbox, stock events) watches; its deployment starts the next one
as each window ends."""
WATCH_POLL_SECONDS = 2
STATUS_EVERY = timedelta(minutes=2)
ANCHOR_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DISABLED_TAG = "paused-by-mapping"
"""Tag of a deployment `stokline deploy` paused because its sync is off in the mapping: only such
a deployment is resumed when the sync is turned on again (one paused by a person stays paused)."""


class ProjectError(Exception):
    """The project's prefect.yaml is missing or does not say what deployments need."""


def client_tag(client: str) -> str:
    """The tag that finds every deployment (and run) of one client."""
    return f"client:{client}"


@dataclass(frozen=True)
class Project:
    """What every deployment shares, from ``prefect.yaml``: the project root (flow entrypoints and
    mapping paths are relative to it), the work pool and the pull steps."""

    root: Path
    pool: str = DEFAULT_POOL
    job_variables: dict[str, Any] = field(default_factory=dict)
    pull_steps: list[dict[str, Any]] = field(default_factory=list)


def _resolve_pwd(value: Any, root: Path) -> Any:
    """prefect.yaml's ``{{ $PWD }}`` placeholders, filled with the project root."""
    if isinstance(value, str):
        return value.replace("{{ $PWD }}", str(root))
    if isinstance(value, list):
        return [_resolve_pwd(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_pwd(v, root) for k, v in value.items()}
    return value


def load_project(root: Path | str = ".") -> Project:
    """The shared deployment settings of the project at ``root`` (ProjectError when its
    prefect.yaml is missing or malformed)."""
    root = Path(root).resolve()
    path = root / PROJECT_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        raise ProjectError(
            f"no {PROJECT_FILE} in {root.name or root}: run from the project root"
        ) from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"{PROJECT_FILE} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{PROJECT_FILE} must be a mapping of Prefect project settings")
    pool = ((data.get("definitions") or {}).get("work_pool")) or {}
    if not isinstance(pool, dict):
        raise ProjectError(f"{PROJECT_FILE}: definitions.work_pool must be a mapping")
    job_variables = pool.get("job_variables") or {}
    # Every run must beat as the crash automation expects, whatever prefect.yaml says.
    env = {**(job_variables.get("env") or {}), **worker_env()}
    pull = data.get("pull") or []
    if not isinstance(pull, list):
        raise ProjectError(f"{PROJECT_FILE}: pull must be a list of steps")
    return Project(
        root=root,
        pool=str(pool.get("name") or DEFAULT_POOL),
        job_variables={**job_variables, "env": env},
        pull_steps=_resolve_pwd(pull, root),
    )


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule of a deployment: an interval (seconds, from ``anchor``) or a cron expression
    in ``timezone``, and the parameters its runs get."""

    interval: float | None = None
    cron: str | None = None
    timezone: str = "UTC"
    anchor: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.interval is not None:
            seconds = int(self.interval)
            unit = f"{seconds // 60} min" if seconds % 60 == 0 and seconds >= 60 else f"{seconds} s"
            return f"every {unit}"
        return f"cron {self.cron} ({self.timezone})"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as the mapping wants it. ``wanted`` is False for a sync that is off: its
    deployment is paused where it exists, never created."""

    name: str
    flow: str
    entrypoint: str
    client: str
    description: str
    parameters: dict[str, Any]
    schedules: tuple[ScheduleSpec, ...]
    tags: tuple[str, ...]
    concurrency_limit: int | None
    work_pool: str
    job_variables: dict[str, Any]
    pull_steps: list[dict[str, Any]]
    wanted: bool = True
    start_at_once: bool = False
    """A first run as soon as the deployment is created (watchers, the stock and catalogue
    passes), rather than one interval later."""


def anchor_of(client: str, flow: str, interval: float) -> datetime:
    """A fixed anchor for an interval schedule: `ANCHOR_EPOCH` plus an offset below ``interval``
    drawn from the names, so runs keep their times across deploys and clients spread out."""
    digest = hashlib.sha256(f"{client}/{flow}".encode()).digest()
    offset = int.from_bytes(digest[:8], "big") % max(1, int(interval))
    return ANCHOR_EPOCH + timedelta(seconds=offset)


@dataclass(frozen=True)
class _Kind:
    flow: str
    entrypoint: str
    concurrency: int | None  # runs at once; None: no Prefect limit (the watchers, below)
    start_at_once: bool = False
    scheduled_trigger: bool = True  # its schedule passes trigger=schedule


# The watchers' deployments carry no Prefect concurrency limit. A limited deployment's run holds
# a lease on the server that it renews while it runs; a watcher runs ten minutes, so a hundred
# clients keep two hundred leases renewing, and the scale benchmark saw a server too busy to renew
# one in time end a watcher Crashed. The limit bought nothing: one run follows a client's inbox or
# feed at a time anyway (stokline.sync.followers.Follower: a run scheduled earlier than the
# follower exits at once), and two for a moment cost a duplicate read, never a duplicate write.
KINDS: tuple[_Kind, ...] = (
    _Kind("orders", "flows/orders.py:orders_flow", 1),
    _Kind(
        "orders-inbox",
        "flows/orders_events.py:orders_inbox_flow",
        None,
        start_at_once=True,
        scheduled_trigger=False,
    ),
    _Kind("stock", "flows/stock.py:stock_flow", 1, start_at_once=True),
    _Kind(
        "stock-events",
        "flows/stock_events.py:stock_events_flow",
        None,
        start_at_once=True,
        scheduled_trigger=False,
    ),
    # At once too: the event path brings a changed item to SHOPLINE only once this pass has
    # linked its variants.
    _Kind("catalogue", "flows/catalogue.py:catalogue_flow", 1, start_at_once=True),
    _Kind("fulfilment", "flows/fulfilment.py:fulfilment_flow", 1),
    _Kind("finance", "flows/finance.py:finance_flow", 1),
    _Kind("status", "flows/status.py:status_flow", 1, scheduled_trigger=False),
    # No schedule: run from the UI before go-live, or after a change to either system.
    _Kind("audit", "flows/audit.py:audit_flow", 1, scheduled_trigger=False),
)
FLOWS = tuple(kind.flow for kind in KINDS)

"""Every flow a client may have a deployment of; a deployment is named ``<flow>-<client>``."""


def deployment_name(flow: str, client: str) -> str:
    return f"{flow}-{client}"


def _words(kind: str, who: str, when: str, mapping: Mapping) -> str:
    """The deployment's description: what a run does, for the Prefect UI."""
    settings = mapping.syncs
    if kind == "orders":
        return (
            f"{who}: SHOPLINE orders into Stokly, {when}: the webhook inbox, a sweep of SHOPLINE "
            "that catches lost webhooks, and the replay of orders with open exceptions. "
            "Webhooks themselves are imported within seconds by the orders inbox watcher."
        )
    if kind == "orders-inbox":
        return (
            f"{who}: the orders inbox watcher. Each run watches the webhook inbox for "
            f"{WATCH_MINUTES} minutes (a look every {WATCH_POLL_SECONDS} s) and imports the orders "
            "of new deliveries within seconds; the next run takes over without a gap."
        )
    if kind == "stock":
        return (
            f"{who}: sellable stock from Stokly to SHOPLINE, {when}, pushing only the levels "
            "that changed and setting back levels changed in SHOPLINE's admin; publishes the "
            "reconciliation (oversell risk first)."
        )
    if kind == "stock-events":
        return (
            f"{who}: the stock event path. Each run follows the Stokly change feed for "
            f"{WATCH_MINUTES} minutes (a read every {WATCH_POLL_SECONDS} s) and pushes the levels "
            "of the SKUs that moved within seconds; the next run takes over without a gap."
        )
    if kind == "catalogue":
        return (
            f"{who}: SHOPLINE products and variants brought in line with Stokly's items, {when} "
            "(only what changed is written; removed items are archived, never deleted)."
        )
    if kind == "fulfilment":
        return (
            f"{who}: Stokly shipments onto SHOPLINE fulfillments with tracking, {when}, once "
            "each; shipments SHOPLINE does not show in time become stale_fulfilment exceptions."
        )
    if kind == "finance":
        approval = (
            " The run pauses with its journals as artifacts until someone approves; a refusal "
            "posts nothing and ends the run Cancelled."
            if settings.finance is not None and settings.finance.approval == "required"
            else ""
        )
        return (
            f"{who}: yesterday's SHOPLINE payments and refunds recorded on their Stokly sale "
            f"orders, one balanced ledger journal per day, and the payout reconciliation; {when}. "
            "Finance runs any period from the Run button's Custom run form (first day, last "
            f"day, dry run).{approval}"
        )
    if kind == "audit":
        return (
            f"{who}: the system audit, run from the Run button (the window in days): both "
            "systems read, nothing written; what the mapping must cover, ranked, published as "
            "the markdown artifact audit-<client>."
        )
    return (
        f"{who} at a glance, {when}: per sync the last success and its lag, open exceptions by "
        "team, the webhook inbox; published as the markdown artifact status-<client>."
    )


def _schedule(kind: _Kind, client: str, mapping: Mapping) -> tuple[ScheduleSpec, str]:
    """The kind's schedule and how it reads, from the mapping (watchers and status: fixed)."""
    if kind.flow in ("orders-inbox", "stock-events"):
        seconds = WATCH_MINUTES * 60.0
    elif kind.flow == "status":
        seconds = STATUS_EVERY.total_seconds()
    else:
        settings = getattr(mapping.syncs, kind.flow)
        schedule = settings.schedule
        params = {"trigger": "schedule"}
        if schedule.every is None:
            cron = schedule.as_cron()
            spec = ScheduleSpec(cron=cron, timezone=mapping.client.timezone, parameters=params)
            return spec, schedule.describe(mapping.client.timezone)
        seconds = schedule.every.total_seconds()
    params = {"trigger": "schedule"} if kind.scheduled_trigger else {}
    spec = ScheduleSpec(
        interval=seconds, anchor=anchor_of(client, kind.flow, seconds), parameters=params
    )
    return spec, spec.describe()


def _on(kind: _Kind, mapping: Mapping) -> bool:
    """Whether the mapping runs this kind of deployment."""
    syncs = mapping.syncs
    if kind.flow in ("status", "audit"):
        return True
    if kind.flow == "orders-inbox":
        return syncs.orders.enabled
    if kind.flow == "stock-events":
        return syncs.stock is not None and syncs.stock.enabled and syncs.stock.event_driven
    settings = getattr(syncs, kind.flow)
    return settings is not None and settings.enabled


def deployment_names(mapping: Mapping) -> list[str]:
    """The names of every deployment the mapping runs (watchers and status included)."""
    return [deployment_name(k.flow, mapping.client.name) for k in KINDS if _on(k, mapping)]


def mapping_parameter(path: Path | str, root: Path) -> str:
    """The mapping file as its deployments name it: relative to the project root, with ``/``.
    ValueError when the file is not inside the project (a worker could not find it)."""
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        raise ValueError(
            f"{path} is outside the project ({root.name}): the workers read mappings from the "
            "project, so keep it under mappings/"
        ) from None
    return relative.as_posix()


def client_deployments(
    mapping: Mapping, path: Path | str, project: Project
) -> list[DeploymentSpec]:
    """Every deployment the client's mapping file at ``path`` asks for, in `KINDS` order; those
    of syncs that are off have ``wanted=False``."""
    client = mapping.client.name
    who = mapping.client.display_name or client
    parameter = mapping_parameter(path, project.root)
    specs = []
    for kind in KINDS:
        wanted = _on(kind, mapping)
        if kind.flow == "audit":
            schedules, description = (), _words(kind.flow, who, "", mapping)
        elif wanted:
            schedule, when = _schedule(kind, client, mapping)
            schedules: tuple[ScheduleSpec, ...] = (schedule,)
            description = _words(kind.flow, who, when, mapping)
        else:
            schedules, description = (), f"{who}: off in {parameter}"
        parameters: dict[str, Any] = {"mapping": parameter}
        if kind.flow in ("orders-inbox", "stock-events"):
            parameters.update(minutes=WATCH_MINUTES, poll_seconds=WATCH_POLL_SECONDS)
        if kind.flow == "audit":
            parameters.update(days=30)
        if kind.flow == "finance":
            # The Run form's defaults (a null would show as 'Property is type "None"').
            parameters.update(start="yesterday", end="same day", dry_run=False)
        specs.append(
            DeploymentSpec(
                name=deployment_name(kind.flow, client),
                flow=kind.flow,
                entrypoint=kind.entrypoint,
                client=client,
                description=description,
                parameters=parameters,
                schedules=schedules,
                tags=(RUN_TAG, kind.flow, client, client_tag(client)),
                concurrency_limit=kind.concurrency,
                work_pool=project.pool,
                job_variables=project.job_variables,
                pull_steps=project.pull_steps,
                wanted=wanted,
                start_at_once=kind.start_at_once,
            )
        )
    return specs

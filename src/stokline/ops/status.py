"""Health at a glance: per client and sync, the last success, its lag, what it moved; the open
exceptions by team and severity; the webhook inbox's depth and age.

Runs come from the Prefect API when it answers: flow runs of the deployment ``<sync>-<client>``,
and the last ``stokline.<sync>.synced`` event (``stokline.finance.posted`` for finance), whose
payload says what the pass moved. Without Prefect — or for a sync Prefect has no run of, e.g.
one run from the terminal — the state store is the witness: the last time the sync moved a
cursor or wrote to either system. That is activity rather than success, and every row says which
source it comes from.

A sync is ``ok`` while its lag stays within one period (plus a little grace), ``late`` after
that, and ``overdue`` once it has missed as many periods as the overdue alert waits for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select

from stokline.config import Mapping
from stokline.ops.alerts import client_resource, deployment_name
from stokline.ops.cadence import period
from stokline.store import Store
from stokline.store.db import aware, now
from stokline.store.tables import audit, cursors

SEVERITIES = ("critical", "high", "medium", "low")
TEAMS = ("operations", "finance", "ecommerce")
DEFAULT_MISSED_RUNS = 3
# Figures of a synced event that are not "what moved": the run's own bookkeeping.
_NOT_MOVED = {"ok", "reconciled", "trigger", "api_calls", "seconds", "dry_run"}
# The event each sync's flow emits after a live pass, with its figures as the payload.
_DONE_EVENTS = {"finance": "stokline.finance.posted"}


def done_event(sync: str) -> str:
    """``stokline.<sync>.synced`` (finance says ``stokline.finance.posted``)."""
    return _DONE_EVENTS.get(sync, f"stokline.{sync}.synced")


@dataclass(frozen=True)
class RunInfo:
    """One flow run as the status needs it."""

    name: str
    state: str
    at: datetime | None  # end time when finished, else start time


@dataclass
class SyncStatus:
    sync: str
    deployment: str
    schedule: str
    period: timedelta | None
    last_success: datetime | None = None
    source: str = "none"  # prefect | store | none
    last_run: RunInfo | None = None
    moved: dict[str, int] | None = None
    moved_at: datetime | None = None
    lag: timedelta | None = None
    health: str = "never"  # ok | late | overdue | never | on demand | not deployed


@dataclass
class ExceptionSummary:
    total: int = 0
    by_team: dict[str, dict[str, int]] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    oldest: datetime | None = None


@dataclass
class InboxSummary:
    pending: int = 0
    processing: int = 0
    poison: int = 0
    oldest: datetime | None = None
    oldest_age: timedelta | None = None

    @property
    def depth(self) -> int:
        return self.pending + self.processing


@dataclass
class ClientStatus:
    client: str
    title: str
    source_file: str
    at: datetime
    runs_from: str  # prefect | store
    note: str
    syncs: list[SyncStatus]
    exceptions: ExceptionSummary
    inbox: InboxSummary


class RunHistory(Protocol):
    """Where runs are read from: the Prefect API."""

    async def runs(self, deployment: str) -> tuple[RunInfo | None, RunInfo | None]:
        """(last successful run, last run in any final or running state) of a deployment."""
        ...

    async def synced(self, client: str, sync: str) -> tuple[datetime, dict[str, Any]] | None:
        """When the client's last `done_event` of ``sync`` occurred, and its payload."""
        ...

    async def deployed(self, names: list[str]) -> set[str]:
        """Which of the deployments ``names`` exist."""
        ...


def health_of(
    lag: timedelta | None, every: timedelta | None, missed_runs: int = DEFAULT_MISSED_RUNS
) -> str:
    """``ok``/``late``/``overdue`` for a lag against a period; ``never``/``on demand`` otherwise."""
    if every is None:
        return "on demand"
    if lag is None:
        return "never"
    if lag >= every * missed_runs:
        return "overdue"
    grace = max(timedelta(minutes=1), every / 10)
    return "late" if lag > every + grace else "ok"


def store_activity(store: Store, client: str, sync: str) -> datetime | None:
    """The last time ``sync`` moved a cursor or wrote to a system, by the state store."""
    with store.engine.connect() as conn:
        moved = conn.execute(
            select(func.max(cursors.c.updated_at)).where(
                cursors.c.client == client, cursors.c.sync == sync
            )
        ).scalar_one()
        wrote = conn.execute(
            select(func.max(audit.c.at)).where(
                audit.c.client == client, audit.c.actor == f"stokline.sync.{sync}"
            )
        ).scalar_one()
    times = [aware(t) for t in (moved, wrote) if t is not None]
    return max(times) if times else None  # type: ignore[type-var]


def exception_summary(store: Store, client: str) -> ExceptionSummary:
    records = store.exceptions.list(client=client, status=("open", "retrying"))
    summary = ExceptionSummary(total=len(records))
    severities = Counter(r.severity for r in records)
    summary.by_severity = {s: severities[s] for s in SEVERITIES if severities[s]}
    order = {team: i for i, team in enumerate(TEAMS)}
    for team in sorted({r.team for r in records}, key=lambda t: (order.get(t, len(TEAMS)), t)):
        counts = Counter(r.severity for r in records if r.team == team)
        summary.by_team[team] = {s: counts[s] for s in SEVERITIES if counts[s]}
    summary.oldest = min((r.first_seen for r in records), default=None)
    return summary


def inbox_summary(store: Store, client: str, at: datetime) -> InboxSummary:
    oldest = store.inbox.oldest_pending(client)
    return InboxSummary(
        pending=store.inbox.count(client, "pending"),
        processing=store.inbox.count(client, "processing"),
        poison=store.inbox.count(client, "poison"),
        oldest=oldest,
        oldest_age=(at - oldest) if oldest else None,
    )


def moved_figures(payload: dict[str, Any]) -> dict[str, int]:
    """The numeric figures of a synced event's payload that say what a run moved."""
    return {
        k: int(v)
        for k, v in payload.items()
        if k not in _NOT_MOVED and isinstance(v, int | float) and not isinstance(v, bool)
    }


async def collect_status(
    mapping: Mapping,
    store: Store,
    history: RunHistory | None,
    *,
    note: str = "",
    at: datetime | None = None,
) -> ClientStatus:
    """The status of one client, now (or ``at``), from Prefect (``history``) and the store."""
    at = at or now()
    client = mapping.client.name
    alerts = mapping.operating_model.alerts
    missed_runs = alerts.missed_runs if alerts else DEFAULT_MISSED_RUNS
    rows: list[SyncStatus] = []
    enabled = mapping.syncs.enabled()
    deployed = (
        await history.deployed([deployment_name(sync, client) for sync in enabled])
        if history is not None
        else None
    )
    for sync, settings in enabled.items():
        every = period(settings.schedule, mapping.client.timezone, at)
        row = SyncStatus(
            sync=sync,
            deployment=deployment_name(sync, client),
            schedule=settings.schedule.describe(mapping.client.timezone),
            period=every,
        )
        if history is not None:
            success, last = await history.runs(row.deployment)
            row.last_run = last
            if success is not None and success.at is not None:
                row.last_success, row.source = success.at, "prefect"
            synced = await history.synced(client, sync)
            if synced is not None:
                row.moved_at, payload = synced
                row.moved = moved_figures(payload)
        if row.last_success is None:
            activity = store_activity(store, client, sync)
            if activity is not None:
                row.last_success, row.source = activity, "store"
        row.lag = (at - row.last_success) if row.last_success else None
        row.health = health_of(row.lag, every, missed_runs)
        if deployed is not None and row.deployment not in deployed:
            row.health = "not deployed"  # nothing is due: its schedule does not exist
        rows.append(row)
    if deployed is not None and not deployed:
        source = mapping.source or "its mapping"
        note = "; ".join(
            n for n in (note, f"not deployed: `stokline deploy {source}` deploys it") if n
        )
    return ClientStatus(
        client=client,
        title=mapping.client.title,
        source_file=mapping.source,
        at=at,
        runs_from="prefect" if history is not None else "store",
        note=note,
        syncs=rows,
        exceptions=exception_summary(store, client),
        inbox=inbox_summary(store, client, at),
    )


class PrefectRunHistory:
    """`RunHistory` from the Prefect API, through a Prefect client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _last(self, deployment: str, states: list[Any], sort: Any) -> RunInfo | None:
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterName,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )

        runs = await self.client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))
            ),
            sort=sort,
            limit=1,
        )
        if not runs:
            return None
        run = runs[0]
        when = run.end_time or run.start_time
        return RunInfo(run.name, run.state.name if run.state else "?", when)

    async def deployed(self, names: list[str]) -> set[str]:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        found = await self.client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
        )
        return {d.name for d in found}

    async def runs(self, deployment: str) -> tuple[RunInfo | None, RunInfo | None]:
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        success = await self._last(deployment, [StateType.COMPLETED], FlowRunSort.END_TIME_DESC)
        finished = [
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.CANCELLED,
            StateType.RUNNING,
        ]
        last = await self._last(deployment, finished, FlowRunSort.START_TIME_DESC)
        return success, last

    async def synced(self, client: str, sync: str) -> tuple[datetime, dict[str, Any]] | None:
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventOccurredFilter,
            EventResourceFilter,
        )

        page = await self.client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[done_event(sync)]),
                resource=EventResourceFilter(id=[client_resource(client)]),
                occurred=EventOccurredFilter(since=now() - timedelta(days=30)),
            ),
            limit=1,
        )
        if not page.events:
            return None
        event = page.events[0]
        return aware(event.occurred), dict(event.payload)  # type: ignore[arg-type]

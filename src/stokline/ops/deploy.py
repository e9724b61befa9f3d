"""Make a Prefect server's deployments of some clients what their mappings say, touching no other.

`plan` compares each `DeploymentSpec` (stokline.ops.deployments) with the deployment of that name
on the server and says what to do: create it, update the fields that differ, pause it (its sync
is off), resume it (it was paused because its sync was off), or nothing. `apply` does exactly
that and no more:

- An unchanged deployment is not written at all, so its scheduled runs stay where they are.
- An update sends only the fields that differ. Prefect replaces a deployment's schedules (and its
  future scheduled runs) only when schedules are sent, so they are sent only when they changed;
  and since the anchors are fixed (`anchor_of`), even then the runs keep their times.
- A deployment someone paused in the Prefect UI stays paused; one paused because its sync was
  off (tagged `DISABLED_TAG`) is resumed when the sync is on again.
- Only the named clients' deployments are read or written; removing a client (`remove`) deletes
  its deployments and is only ever asked for explicitly.

The flow of each entrypoint is loaded once, for its parameter schema (the UI's run form) and its
name (the Prefect flow the deployment belongs to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from stokline.ops.deployments import (
    DISABLED_TAG,
    FLOWS,
    DeploymentSpec,
    Project,
    ScheduleSpec,
    client_tag,
    deployment_name,
)
from stokline.ops.heartbeats import RUN_TAG

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

Action = Literal["create", "update", "unchanged", "pause", "resume", "kept paused", "remove"]


@dataclass
class Change:
    """One deployment and what happens (or would happen) to it; ``details`` says which fields."""

    action: Action
    name: str
    details: list[str] = field(default_factory=list)
    spec: DeploymentSpec | None = None
    existing: Any = None  # the server's deployment, when there is one
    started: bool = False  # a first run was started once it was created


@dataclass
class ClientPlan:
    """What deploying one client does."""

    client: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)


# -- reading what is there -------------------------------------------------------------------


async def existing_deployments(prefect: PrefectClient, clients: list[str]) -> dict[str, Any]:
    """The server's deployments of these clients, by name: those tagged with a client's tag, and
    those named like one of its deployments (deployed before the tag existed)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    names = [deployment_name(flow, client) for client in clients for flow in FLOWS]
    tags = {client_tag(client) for client in clients}
    found: dict[str, Any] = {}
    by_name = DeploymentFilter(name=DeploymentFilterName(any_=names))
    for deployment in await prefect.read_deployments(deployment_filter=by_name, limit=200):
        found[deployment.name] = deployment
    for tag in tags:
        from prefect.client.schemas.filters import DeploymentFilterTags

        tagged = DeploymentFilter(tags=DeploymentFilterTags(all_=[RUN_TAG, tag]))
        for deployment in await prefect.read_deployments(deployment_filter=tagged, limit=200):
            found.setdefault(deployment.name, deployment)
    return found


def _schedule_key(schedule: Any) -> tuple:
    """A comparable form of a server schedule (active, kind, timing, parameters)."""
    inner = schedule.schedule
    parameters = dict(schedule.parameters or {})
    interval = getattr(inner, "interval", None)
    if interval is not None:
        anchor = inner.anchor_date
        anchor_text = anchor.isoformat() if isinstance(anchor, datetime) else str(anchor)
        return (
            schedule.active,
            "interval",
            interval.total_seconds(),
            _same_instant(anchor_text),
            parameters,
        )
    cron = getattr(inner, "cron", None)
    if cron is not None:
        return (schedule.active, "cron", cron, inner.timezone or "UTC", parameters)
    return (schedule.active, "other", repr(inner), parameters)


def _spec_key(spec: ScheduleSpec) -> tuple:
    if spec.interval is not None:
        assert spec.anchor is not None
        return (True, "interval", float(spec.interval), _same_instant(spec.anchor.isoformat()),
                dict(spec.parameters))  # fmt: skip
    return (True, "cron", spec.cron, spec.timezone, dict(spec.parameters))


def _same_instant(text: str) -> str:
    """An ISO instant in one canonical form (the server may answer ``Z`` or ``+00:00``)."""
    from datetime import UTC

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _limit_of(existing: Any) -> int | None:
    limit = getattr(existing, "global_concurrency_limit", None)
    if limit is not None:
        return int(limit.limit)
    return existing.concurrency_limit


def differences(spec: DeploymentSpec, existing: Any, schema: dict[str, Any]) -> list[str]:
    """The fields of ``existing`` that are not what ``spec`` asks for, named for the report."""
    found = []
    if sorted(s for s in existing.tags if s != DISABLED_TAG) != sorted(spec.tags):
        found.append("tags")
    if (existing.description or "") != spec.description:
        found.append("description")
    if existing.entrypoint != spec.entrypoint:
        found.append("entrypoint")
    if dict(existing.parameters or {}) != spec.parameters:
        found.append("parameters")
    if _limit_of(existing) != spec.concurrency_limit:
        found.append("concurrency")
    if getattr(existing, "work_pool_name", None) != spec.work_pool:
        found.append("work pool")
    if dict(existing.job_variables or {}) != spec.job_variables:
        found.append("job variables")
    if list(existing.pull_steps or []) != spec.pull_steps:
        found.append("pull steps")
    if dict(existing.parameter_openapi_schema or {}) != schema:
        found.append("parameter form")
    if spec.wanted:
        have = sorted((_schedule_key(s) for s in existing.schedules), key=repr)
        want = sorted((_spec_key(s) for s in spec.schedules), key=repr)
        if have != want:
            before = ", ".join(_describe_existing(s) for s in existing.schedules) or "none"
            after = ", ".join(s.describe() for s in spec.schedules) or "none"
            found.append(f"schedule ({before} → {after})")
    return found


def _describe_existing(schedule: Any) -> str:
    inner = schedule.schedule
    interval = getattr(inner, "interval", None)
    if interval is not None:
        return ScheduleSpec(interval=interval.total_seconds()).describe()
    return f"cron {getattr(inner, 'cron', '?')} ({getattr(inner, 'timezone', None) or 'UTC'})"


# -- the plan --------------------------------------------------------------------------------


class FlowSchemas:
    """Each entrypoint's flow, loaded once: its Prefect name and its parameter form."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._loaded: dict[str, tuple[str, dict[str, Any]]] = {}

    def of(self, entrypoint: str) -> tuple[str, dict[str, Any]]:
        if entrypoint not in self._loaded:
            from prefect.flows import load_flow_from_entrypoint
            from prefect.utilities.callables import parameter_schema

            path, _, name = entrypoint.partition(":")
            flow = load_flow_from_entrypoint(f"{self.project.root / path}:{name}")
            schema = parameter_schema(flow).model_dump(exclude_unset=True)
            self._loaded[entrypoint] = (flow.name, schema)
        return self._loaded[entrypoint]


def plan_client(
    client: str, specs: list[DeploymentSpec], existing: dict[str, Any], flows: FlowSchemas
) -> ClientPlan:
    """What to do with each of the client's deployments (see the module docstring)."""
    plan = ClientPlan(client)
    for spec in specs:
        found = existing.get(spec.name)
        if found is None:
            if spec.wanted:
                plan.changes.append(Change("create", spec.name, [_summary(spec)], spec))
            continue
        _, schema = flows.of(spec.entrypoint)
        details = differences(spec, found, schema)
        paused_by_us = DISABLED_TAG in (found.tags or [])
        if not spec.wanted:
            action: Action = "unchanged" if found.paused else "pause"
            plan.changes.append(Change(action, spec.name, ["off in the mapping"], spec, found))
        elif found.paused and paused_by_us:
            plan.changes.append(Change("resume", spec.name, details, spec, found))
        elif found.paused:
            plan.changes.append(
                Change("kept paused", spec.name, [*details, "paused in Prefect"], spec, found)
            )
        elif details:
            plan.changes.append(Change("update", spec.name, details, spec, found))
        else:
            plan.changes.append(Change("unchanged", spec.name, [], spec, found))
    return plan


def _summary(spec: DeploymentSpec) -> str:
    return ", ".join(s.describe() for s in spec.schedules) or "no schedule"


# -- applying it -----------------------------------------------------------------------------


def _schedule_create(spec: ScheduleSpec) -> Any:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    if spec.interval is not None:
        inner: Any = IntervalSchedule(
            interval=spec.interval, anchor_date=spec.anchor, timezone=spec.timezone
        )
    else:
        inner = CronSchedule(cron=spec.cron, timezone=spec.timezone)
    return DeploymentScheduleCreate(schedule=inner, active=True, parameters=spec.parameters)


def _schedule_update(spec: ScheduleSpec) -> Any:
    from prefect.client.schemas.actions import DeploymentScheduleUpdate

    created = _schedule_create(spec)
    return DeploymentScheduleUpdate(
        schedule=created.schedule, active=True, parameters=spec.parameters
    )


async def _create(prefect: PrefectClient, spec: DeploymentSpec, flows: FlowSchemas) -> UUID:
    flow_name, schema = flows.of(spec.entrypoint)
    flow_id = await prefect.create_flow_from_name(flow_name)
    return await prefect.create_deployment(
        flow_id=flow_id,
        name=spec.name,
        description=spec.description,
        entrypoint=spec.entrypoint,
        parameters=spec.parameters,
        tags=list(spec.tags),
        schedules=[_schedule_create(s) for s in spec.schedules],
        concurrency_limit=spec.concurrency_limit,
        work_pool_name=spec.work_pool,
        job_variables=spec.job_variables,
        pull_steps=spec.pull_steps,
        parameter_openapi_schema=schema,
        enforce_parameter_schema=True,
        paused=False,
    )


async def _update(prefect: PrefectClient, change: Change, flows: FlowSchemas) -> None:
    from prefect.client.schemas.actions import DeploymentUpdate

    spec, found = change.spec, change.existing
    assert spec is not None and found is not None
    fields: dict[str, Any] = {}
    if change.action == "pause":
        fields.update(paused=True, tags=sorted({*found.tags, DISABLED_TAG}))
    else:
        _, schema = flows.of(spec.entrypoint)
        fields.update(
            description=spec.description,
            entrypoint=spec.entrypoint,
            parameters=spec.parameters,
            tags=list(spec.tags),
            concurrency_limit=spec.concurrency_limit,
            work_pool_name=spec.work_pool,
            job_variables=spec.job_variables,
            pull_steps=spec.pull_steps,
            parameter_openapi_schema=schema,
        )
        if change.action == "resume":
            fields["paused"] = False
        if any(d.startswith("schedule") for d in change.details):
            fields["schedules"] = [_schedule_update(s) for s in spec.schedules]
    await prefect.update_deployment(found.id, DeploymentUpdate(**fields))


async def ensure_pool(prefect: PrefectClient, pool: str, *, dry_run: bool) -> str | None:
    """Create the work pool (type process) when it is missing; says so, or None if it exists."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    try:
        await prefect.read_work_pool(pool)
        return None
    except ObjectNotFound:
        pass
    if dry_run:
        return f"work pool {pool} (type process) to create"
    template = await get_default_base_job_template_for_infrastructure_type("process")
    await prefect.create_work_pool(
        WorkPoolCreate(name=pool, type="process", base_job_template=template or {})
    )
    return f"work pool {pool} (type process) created"


async def apply(
    prefect: PrefectClient, plan: ClientPlan, flows: FlowSchemas, *, start: bool
) -> None:
    """Carry out ``plan`` (changes marked unchanged or kept paused are not touched); with
    ``start``, a created (or resumed) deployment whose spec says so gets a first run now."""
    for change in plan.changes:
        if change.action == "create":
            assert change.spec is not None
            deployment_id = await _create(prefect, change.spec, flows)
        elif change.action in ("update", "pause", "resume"):
            await _update(prefect, change, flows)
            deployment_id = change.existing.id
        else:
            continue
        if start and change.action in ("create", "resume") and change.spec.start_at_once:
            await prefect.create_flow_run_from_deployment(deployment_id)
            change.started = True


async def remove_client(prefect: PrefectClient, client: str, *, dry_run: bool) -> ClientPlan:
    """Delete every deployment of ``client`` (its scheduled runs go with them; past runs stay)."""
    plan = ClientPlan(client)
    found = await existing_deployments(prefect, [client])
    for name, deployment in sorted(found.items()):
        plan.changes.append(Change("remove", name, [], None, deployment))
        if not dry_run:
            await prefect.delete_deployment(deployment.id)
    if not found:
        plan.notes.append("no deployment of this client on the server")
    return plan

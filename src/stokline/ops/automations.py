"""Apply a client's alerts to a Prefect server: create, update in place, remove what is stale.

The automations are stokline's by their tags (``stokline``, ``client:<client>``) and known by
their names, so applying twice changes nothing the second time, an edited mapping updates the
same automations (their ids and history stay), and an alert the mapping no longer asks for is
deleted. Whether an alert is enabled is left as found: pausing one in the Prefect UI is an
operator's decision that a re-apply must not undo.

Notification targets become Prefect actions:

- ``notify.webhook`` → a Webhook block named ``stokline-alerts-<client>`` (written only when its
  URL changes) and a ``CallWebhook`` action posting the alert as JSON;
- ``notify.prefect_block: type/name`` → that existing block: ``SendNotification`` for a
  notification block (Slack, Teams, email...), ``CallWebhook`` for a webhook block.

Beside a client's alerts, every apply also keeps the one automation of the whole workspace
(tags ``stokline``, ``workspace``): `crashed_run_guard`, which marks Crashed a deployment's flow
run whose heartbeats stopped (see `stokline.ops.heartbeats`). It notifies nobody itself: once the
run is Crashed, its client's "sync run failed" alert does. Applying a second client's mapping
finds it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.client.schemas.objects import StateType
from prefect.events.actions import CallWebhook, ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from pydantic import SecretStr

from stokline.config import Mapping
from stokline.config.schedules import describe_duration
from stokline.ops.alerts import (
    MIN_PROACTIVE,
    OWNER_TAG,
    AlertSpec,
    alert_specs,
    client_resource,
    client_tag,
)
from stokline.ops.alerts import sync_deployments as _sync_deployments
from stokline.ops.heartbeats import (
    CRASHED_AFTER,
    CRASHED_MESSAGE,
    END_STATES,
    HEARTBEAT_ENV,
    HEARTBEAT_EVENT,
    HEARTBEAT_SECONDS,
    RUN_TAG,
)

WEBHOOK_BLOCK_SLUG = "webhook"
# Compared to tell an unchanged automation from one to update (``enabled`` is the operator's).
_COMPARED = {
    "description",
    "tags",
    "trigger",
    "actions",
    "actions_on_trigger",
    "actions_on_resolve",
}
# Stands for a webhook block a dry run would create: no real block has it, so it compares unequal.
_NOT_YET = UUID(int=0)
WORKSPACE_TAG = "workspace"
CRASHED_RUN_GUARD = "stokline workspace: flow runs whose heartbeats stopped are Crashed"
GUARD_KIND = "crashed_runs"


class AlertsUnavailable(Exception):
    """A notification target that cannot be used, said in one line (never with a secret)."""


Action = Literal["create", "update", "unchanged", "remove"]


@dataclass(frozen=True)
class Change:
    action: Action
    name: str
    kind: str = ""


@dataclass
class ApplyResult:
    """What applying one client's alerts did (or, in a dry run, would do)."""

    client: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)


def webhook_block_name(client: str) -> str:
    return f"stokline-alerts-{client}"


async def _webhook_block(
    client: PrefectClient, name: str, url: str, dry_run: bool, notes: list[str]
) -> UUID:
    """The id of the Webhook block posting to ``url``, written only when missing or different."""
    headers = {"Content-Type": "application/json"}
    try:
        existing = await client.read_block_document_by_name(name, WEBHOOK_BLOCK_SLUG)
    except ObjectNotFound:
        existing = None
    if existing is not None:
        data = existing.data
        if data.get("url") == url and data.get("headers") == headers:
            return existing.id
    if dry_run:
        notes.append(f"would {'update' if existing else 'create'} the Webhook block {name}")
        return existing.id if existing else _NOT_YET
    block = Webhook(url=SecretStr(url), method="POST", headers=headers)  # type: ignore[arg-type]
    block_id = await block.asave(name, overwrite=True, client=client)
    notes.append(f"{'updated' if existing else 'created'} the Webhook block {name}")
    return block_id


async def _named_block(client: PrefectClient, reference: str) -> tuple[str, UUID]:
    """``("notify" | "webhook", id)`` of the block ``type/name`` the mapping names."""
    slug, _, name = reference.partition("/")
    try:
        document = await client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        raise AlertsUnavailable(
            f"the Prefect block {reference} does not exist on the server; create it (Prefect UI "
            "→ Blocks, or in Python with the block's .save()) or correct notify.prefect_block"
        ) from None
    if slug == WEBHOOK_BLOCK_SLUG:
        return "webhook", document.id
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise AlertsUnavailable(
            f"the Prefect block {reference} cannot send notifications; name a notification "
            "block (slack-webhook/..., ms-teams-webhook/..., email/...) or a webhook block"
        )
    return "notify", document.id


async def notification_targets(
    mapping: Mapping, client: PrefectClient, dry_run: bool, notes: list[str]
) -> list[tuple[str, UUID]]:
    """``[("webhook" | "notify", block id)]`` for the mapping's ``alerts.notify``."""
    alerts = mapping.operating_model.alerts
    if alerts is None:
        return []
    targets: list[tuple[str, UUID]] = []
    if alerts.notify.webhook is not None:
        name = webhook_block_name(mapping.client.name)
        block_id = await _webhook_block(client, name, alerts.notify.webhook.url, dry_run, notes)
        targets.append(("webhook", block_id))
    if alerts.notify.prefect_block:
        targets.append(await _named_block(client, alerts.notify.prefect_block))
    return targets


def automation_for(spec: AlertSpec, targets: Sequence[tuple[str, UUID]]) -> AutomationCore:
    """The Prefect automation of one alert, notifying every target."""
    actions: list[Any] = []
    for kind, block_id in targets:
        if kind == "webhook":
            actions.append(CallWebhook(block_document_id=block_id, payload=spec.webhook_payload()))
        else:
            actions.append(
                SendNotification(
                    block_document_id=block_id,
                    subject=spec.notification_subject(),
                    body=spec.notification_body(),
                )
            )
    return AutomationCore(
        name=spec.name,
        description=spec.description,
        enabled=True,
        tags=spec.tags,
        trigger=spec.trigger,
        actions=actions,
    )


def crashed_run_guard(crashed_after: timedelta = CRASHED_AFTER) -> AutomationCore:
    """The workspace's automation that marks Crashed a run silent for ``crashed_after``.

    After a heartbeat of a flow run it expects, for that run (``for_each`` its resource id),
    another heartbeat or an end state within ``crashed_after``; when neither comes, the run is
    set Crashed (not forced: a run that ended meanwhile keeps its end state). Only runs of
    stokline's deployments are watched (tagged `RUN_TAG`; their deployment sets the heartbeat
    period): a flow called in someone's own Python process, or another project's deployment in the
    same workspace, beats at Prefect's default period, longer than the window, and is not ours.
    """
    if crashed_after < MIN_PROACTIVE:
        raise ValueError(
            f"crashed_after is {crashed_after.total_seconds():g} s; Prefect needs at least "
            f"{MIN_PROACTIVE.total_seconds():g} s for a Proactive trigger"
        )
    silence = describe_duration(crashed_after)
    return AutomationCore(
        name=CRASHED_RUN_GUARD,
        description=(
            "After a heartbeat of a deployment's flow run, expects another heartbeat or an end "
            f"state within {silence}; otherwise marks the run Crashed, which the clients' "
            "'sync run failed' alerts then report. Watches runs tagged "
            f"'{RUN_TAG}', whose deployments set {HEARTBEAT_ENV}={HEARTBEAT_SECONDS}."
        ),
        enabled=True,
        tags=[OWNER_TAG, WORKSPACE_TAG, f"guard:{GUARD_KIND}"],
        trigger=EventTrigger(
            after={HEARTBEAT_EVENT},
            expect={HEARTBEAT_EVENT, *(f"prefect.flow-run.{state}" for state in END_STATES)},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "deployment"},
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"},
            ],
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=crashed_after,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED, message=CRASHED_MESSAGE.format(silence=silence)
            )
        ],
    )


def _same(existing: Any, desired: AutomationCore) -> bool:
    return existing.model_dump(include=_COMPARED) == desired.model_dump(include=_COMPARED)


async def owned_automations(client: PrefectClient, client_name: str) -> list[Any]:
    """The automations stokline created for this client, known by their tags."""
    return _owned(await client.read_automations(), client_name)


def _owned(automations: list[Any], client_name: str) -> list[Any]:
    return [a for a in automations if OWNER_TAG in a.tags and client_tag(client_name) in a.tags]


async def apply_guard(
    client: PrefectClient, result: ApplyResult, crashed_after: timedelta = CRASHED_AFTER
) -> None:
    """Make the workspace's crashed-run guard what ``crashed_after`` says; changes go in
    ``result``."""
    guard = [(GUARD_KIND, crashed_run_guard(crashed_after))]
    await _converge(client, result, await workspace_automations(client), guard, None)


async def workspace_automations(client: PrefectClient) -> list[Any]:
    """The automations stokline keeps for the whole workspace, known by their tags."""
    found = await client.read_automations()
    return [a for a in found if OWNER_TAG in a.tags and WORKSPACE_TAG in a.tags]


async def _converge(
    client: PrefectClient,
    result: ApplyResult,
    existing: list[Any],
    desired: Sequence[tuple[str, AutomationCore]],
    owner_resource: str | None,
) -> None:
    """Make ``existing`` (one owner's automations) exactly ``desired`` (``(kind, automation)``),
    by name: create what is missing, update what differs (keeping ``enabled``), delete the rest
    and any duplicate; each change recorded in ``result``, and made unless it is a dry run."""
    dry_run = result.dry_run
    by_name: dict[str, Any] = {}
    for automation in existing:
        if automation.name in by_name:  # a duplicate (two applies raced): keep the first
            result.changes.append(Change("remove", automation.name))
            if not dry_run:
                await client.delete_automation(automation.id)
        else:
            by_name[automation.name] = automation
    for kind, automation in desired:
        current = by_name.pop(automation.name, None)
        if current is None:
            result.changes.append(Change("create", automation.name, kind))
            if not dry_run:
                automation.owner_resource = owner_resource
                await client.create_automation(automation)
        elif _same(current, automation):
            result.changes.append(Change("unchanged", automation.name, kind))
        else:
            result.changes.append(Change("update", automation.name, kind))
            if not dry_run:
                automation.enabled = current.enabled
                await client.update_automation(current.id, automation)
    for stale in by_name.values():
        result.changes.append(Change("remove", stale.name))
        if not dry_run:
            await client.delete_automation(stale.id)


async def _missing_deployments(client: PrefectClient, names: list[str]) -> list[str]:
    found = await client.read_deployments(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=names))
    )
    present = {d.name for d in found}
    return [n for n in names if n not in present]


async def apply_alerts(
    mapping: Mapping,
    client: PrefectClient,
    *,
    dry_run: bool = False,
    crashed_after: timedelta = CRASHED_AFTER,
    guard: bool = True,
    automations: list[Any] | None = None,
) -> ApplyResult:
    """Make the server's automations for this client exactly what its mapping asks for, and
    (with ``guard``) the workspace's crashed-run guard what ``crashed_after`` says, whether or
    not the client has alerts.

    ``automations`` is the server's list when the caller has read it already: deploying many
    clients reads it once instead of twice per client (each client's own are found by tag, so
    clients applied at the same time do not touch each other's). ``guard=False`` leaves the
    guard to a caller that applies it once (`apply_guard`), not once per client at once."""
    name = mapping.client.name
    result = ApplyResult(name, dry_run)
    specs = alert_specs(mapping)
    if automations is None:
        existing = await owned_automations(client, name)
    else:
        existing = _owned(automations, name)
    targets = await notification_targets(mapping, client, dry_run, result.notes) if specs else []
    desired = [(spec.kind, automation_for(spec, targets)) for spec in specs]
    await _converge(client, result, existing, desired, client_resource(name))
    if guard:
        await apply_guard(client, result, crashed_after)
    if specs:
        missing = await _missing_deployments(client, _sync_deployments(mapping))
        if missing:
            result.notes.append(
                f"not deployed yet: {', '.join(missing)} (their alerts apply once they are; "
                "an overdue alert fires meanwhile if the sync has a schedule)"
            )
    return result


async def restart_overdue_windows(mapping: Mapping, client: PrefectClient) -> list[str]:
    """Start each ``sync_overdue`` window of this client afresh, now; returns the alerts' names.

    A Proactive trigger's window is kept by the server; after the stack was stopped for longer
    than the window, the server would fire it the moment it starts again, although the last run
    before the stop completed (and nothing was due while the stack was stopped). Writing the
    automation again with a new trigger starts its window now: a sync that then does not
    succeed within the window still alerts. `stokline up` calls this when it starts."""
    specs = [spec for spec in alert_specs(mapping) if spec.kind == "sync_overdue"]
    if not specs:
        return []
    existing = {a.name: a for a in await owned_automations(client, mapping.client.name)}
    notes: list[str] = []
    targets = await notification_targets(mapping, client, False, notes)
    restarted = []
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            continue
        automation = automation_for(spec, targets)  # a new trigger, so a new window
        automation.enabled = current.enabled
        await client.update_automation(current.id, automation)
        restarted.append(spec.name)
    return restarted

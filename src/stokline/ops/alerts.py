"""The alerts a client's mapping asks for, as Prefect automation definitions. No I/O here.

Five alerts per client (``operating_model.alerts``), each one Prefect `EventTrigger`:

| kind | fires on | quiet for the same cause |
|---|---|---|
| ``sync_failed`` | a flow run of one of the client's sync deployments Failed, Crashed or TimedOut | ``cooldown``, per deployment (``for_each``) |
| ``fulfilment_stale`` | a ``stokline.fulfilment.stale`` event of the client | ``cooldown`` |
| ``exception_spike`` | ``count`` ``stokline.exception.opened`` events of one reason code within ``within`` | ``within``, per code (``for_each``) |
| ``sync_overdue`` | no Completed run of a sync's deployment for ``missed_runs`` × its period (Proactive) | that window; one automation per sync |
| ``oversell_risk`` | a ``stokline.stock.oversell-risk`` event of the client | ``cooldown`` |

A Reactive trigger that has fired opens its next window only where the current one ends, so
events of the same cause inside the window are spent without a second alert: ``within`` is the
de-duplication, and ``for_each`` says what "the same cause" is.

Prefect triggers match event names and resource labels, never payload values. So oversell risk
is its own event, emitted by the stock pass only when it found rows at risk, rather than a
condition on the ``oversell_risk`` count of ``stokline.stock.synced``.

The notification text is a Jinja template rendered by the Prefect server when the alert fires
(``event``, ``firing``, ``automation`` are in scope). For a webhook it renders one JSON object,
with every value that comes from an event passed through ``tojson``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from prefect.events.schemas.automations import EventTrigger, Posture

from stokline.config import Mapping
from stokline.config.schedules import describe_duration
from stokline.ops.cadence import period

FULFILMENT_STALE = "stokline.fulfilment.stale"
OVERSELL_RISK = "stokline.stock.oversell-risk"
EXCEPTION_OPENED = "stokline.exception.opened"
CODE_LABEL = "stokline.exception.code"
FAILED_STATES = ("Failed", "Crashed", "TimedOut")
DEPLOYMENT_LABEL = "related:deployment:prefect.resource.name"
OWNER_TAG = "stokline"
KINDS = ("sync_failed", "fulfilment_stale", "exception_spike", "sync_overdue", "oversell_risk")
# Prefect's floor for a Proactive trigger's window.
MIN_PROACTIVE = timedelta(seconds=10)


def client_resource(client: str) -> str:
    """The Prefect resource id every ``stokline.*`` event of a client is about."""
    return f"stokline.client.{client}"


def deployment_name(sync: str, client: str) -> str:
    """The deployment of one sync for one client: ``orders-demo-outdoor``."""
    return f"{sync}-{client}"


def client_tag(client: str) -> str:
    return f"client:{client}"


def sync_deployments(mapping: Mapping) -> list[str]:
    """Every deployment of this client whose failed run is an alert: its syncs, the watchers
    (orders inbox, stock events) and the status dashboard, as `stokline deploy` derives them.
    Not the audit: someone who runs it by hand sees how it ended."""
    from stokline.ops.deployments import deployment_names

    return [
        n for n in deployment_names(mapping) if n != deployment_name("audit", mapping.client.name)
    ]


@dataclass(frozen=True)
class AlertSpec:
    """One automation to create: its name, trigger, and the words of its notification.

    ``summary`` is a Jinja template (rendered by Prefect) of one sentence saying what happened.
    """

    kind: str
    client: str
    name: str
    description: str
    title: str
    trigger: EventTrigger
    summary: str

    @property
    def tags(self) -> list[str]:
        """What marks the automation as stokline's, for this client: how stale ones are found."""
        return [OWNER_TAG, client_tag(self.client), f"alert:{self.kind}"]

    def webhook_payload(self) -> str:
        """The JSON body a webhook receives: fixed fields written here, event fields by tojson."""
        fixed = {"alert": self.kind, "client": self.client, "title": self.title}
        head = json.dumps(fixed)[:-1]
        return (
            "{% set summary %}" + self.summary + "{% endset %}"
            + head
            + ', "summary": {{ summary | trim | tojson }}'
            + ', "automation": {{ automation.name | tojson }}'
            + ', "event": {{ (event.event if event else none) | tojson }}'
            + ', "occurred": {{ (event.occurred.isoformat() if event else none) | tojson }}'
            + ', "resource": {{ (event.resource.id if event else none) | tojson }}'
            + ', "labels": {{ firing.triggering_labels | tojson }}'
            + ', "details": {{ (event.payload if event else {}) | tojson }}}'
        )  # fmt: skip

    def notification_subject(self) -> str:
        return f"[stokline] {self.client}: {self.title}"

    def notification_body(self) -> str:
        return (
            self.summary
            + "\n\nAutomation: {{ automation.name }}"
            + "{% if event %}\nEvent: {{ event.event }} at {{ event.occurred.isoformat() }}"
            + "{% if event.payload %}\nDetails: {{ event.payload | tojson }}{% endif %}{% endif %}"
        )


def _name(client: str, what: str) -> str:
    return f"stokline {client}: {what}"


def _sync_failed(mapping: Mapping, cooldown: timedelta) -> AlertSpec:
    client = mapping.client.name
    deployments = sync_deployments(mapping)
    return AlertSpec(
        kind="sync_failed",
        client=client,
        name=_name(client, "sync run failed"),
        description=(
            f"A flow run of {', '.join(deployments)} ended Failed, Crashed or TimedOut. "
            f"One alert per deployment per {describe_duration(cooldown)}."
        ),
        title="a sync run failed",
        trigger=EventTrigger(
            expect={f"prefect.flow-run.{state}" for state in FAILED_STATES},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployments,
            },
            for_each={DEPLOYMENT_LABEL},
            posture=Posture.Reactive,
            threshold=1,
            within=cooldown,
        ),
        summary=(
            "Flow run {{ event.resource.get('prefect.resource.name') }} of deployment "
            "{{ firing.triggering_labels.get('" + DEPLOYMENT_LABEL + "') }} is "
            "{{ event.resource.get('prefect.state-name') }}"
            "{% if event.resource.get('prefect.state-message') %}: "
            "{{ event.resource.get('prefect.state-message') }}{% endif %}"
        ),
    )


def _client_event(
    mapping: Mapping, kind: str, event: str, what: str, title: str, cooldown: timedelta, text: str
) -> AlertSpec:
    client = mapping.client.name
    return AlertSpec(
        kind=kind,
        client=client,
        name=_name(client, what),
        description=f"{text} One alert per {describe_duration(cooldown)}.",
        title=title,
        trigger=EventTrigger(
            expect={event},
            match={"prefect.resource.id": client_resource(client)},
            posture=Posture.Reactive,
            threshold=1,
            within=cooldown,
        ),
        summary=f"{client}: {text}",
    )


def _exception_spike(mapping: Mapping) -> AlertSpec:
    client = mapping.client.name
    spike = mapping.operating_model.alerts.exception_spike  # type: ignore[union-attr]
    window = describe_duration(spike.within)
    return AlertSpec(
        kind="exception_spike",
        client=client,
        name=_name(client, "exception spike"),
        description=(
            f"{spike.count} or more new exceptions of one reason code within {window}; then "
            f"quiet for that code for {window}."
        ),
        title="exception spike",
        trigger=EventTrigger(
            expect={EXCEPTION_OPENED},
            match={"prefect.resource.id": client_resource(client)},
            for_each={CODE_LABEL},
            posture=Posture.Reactive,
            threshold=spike.count,
            within=spike.within,
        ),
        summary=(
            f"{spike.count} or more new "
            "{{ firing.triggering_labels.get('" + CODE_LABEL + "') }} exceptions "
            f"within {window} ({client}); see `stokline exceptions list --client {client}`"
        ),
    )


def _sync_overdue(mapping: Mapping, sync: str, every: timedelta, runs: int) -> AlertSpec:
    client = mapping.client.name
    deployment = deployment_name(sync, client)
    window = max(every * runs, MIN_PROACTIVE)
    waited = describe_duration(window)
    return AlertSpec(
        kind="sync_overdue",
        client=client,
        name=_name(client, f"{sync} has not succeeded"),
        description=(
            f"No Completed run of {deployment} for {waited} ({runs} × its schedule). "
            f"Fires again every {waited} while that lasts."
        ),
        title=f"{sync} has not succeeded for {runs} runs",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.name": deployment,
            },
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        summary=(
            f"{deployment} has not completed a run for {waited} ({runs} × its schedule)"
            "{% if event %}; the last success was at {{ event.occurred.isoformat() }}{% endif %}"
        ),
    )


def alert_specs(mapping: Mapping) -> list[AlertSpec]:
    """Every automation the mapping's ``operating_model.alerts`` asks for (none without it)."""
    alerts = mapping.operating_model.alerts
    if alerts is None:
        return []
    cooldown = alerts.cooldown
    specs = [
        _sync_failed(mapping, cooldown),
        _client_event(
            mapping,
            "fulfilment_stale",
            FULFILMENT_STALE,
            "fulfilments stale",
            "fulfilments are stale",
            cooldown,
            "Orders shipped in Stokly are still unfulfilled in SHOPLINE past the stale limit.",
        ),
        _exception_spike(mapping),
    ]
    timezone = mapping.client.timezone
    for sync, settings in mapping.syncs.enabled().items():
        every = period(settings.schedule, timezone)
        if every is not None:
            specs.append(_sync_overdue(mapping, sync, every, alerts.missed_runs))
    if mapping.syncs.stock is not None and mapping.syncs.stock.enabled:
        specs.append(
            _client_event(
                mapping,
                "oversell_risk",
                OVERSELL_RISK,
                "oversell risk",
                "oversell risk",
                cooldown,
                "The stock pass found SHOPLINE offering more than Stokly can fulfil.",
            )
        )
    return specs

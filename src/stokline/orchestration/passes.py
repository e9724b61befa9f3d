"""The shape every coarse sync pass has under Prefect, written once.

A pass flow (catalogue, fulfilment, orders, stock, and finance's steps) reads the client's mapping,
runs one `stokline.sync` use case as one coarse task run with both API clients and the state
store open, retries that task only for transient failures while attempts are left, publishes
the report as artifacts, emits its event on the client's resource, and fails the run when the
pass did not finish. What each flow adds (its figures, its log line, its extra artifacts and
events) stays in the flow; what is the same for all of them is here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, Protocol, TypeVar

from prefect import Task, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient
from stokline.orchestration.common import (
    RETRIES,
    IncompleteRun,
    artifact_key,
    load_client_mapping,
    progress_logger,
    publish_exceptions,
    retry_when_transient,
    store_for,
    sync_settings,
)
from stokline.store import Store
from stokline.sync.clients import open_clients

P = ParamSpec("P")
R = TypeVar("R")

MAX_ROWS = 500
"""Rows of a list artifact: enough to act on, small enough for the UI to render."""


class PassReport(Protocol):
    """What the flows read of every pass's report (`stokline.sync.report.SyncReport` and its
    ``ok`` and ``summary_rows``)."""

    client: str
    trigger: str
    dry_run: bool
    exceptions: list[dict]
    errors: list[str]

    @property
    def ok(self) -> bool: ...

    def summary_rows(self) -> list[dict[str, Any]]: ...


# -- the task of a pass -------------------------------------------------------------------------


def pass_task(
    name: str, *, backoff_factor: float = 10, jitter: float | None = 0.2
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The Prefect task of a coarse step: `RETRIES` retries, for transient failures only, after
    ``backoff_factor`` seconds and then twice as long each time (with ``jitter``), and never
    cached: a step writes, or reads what must be current, and a cached write is silently
    skipped."""
    return task(
        name=name,
        retries=RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=backoff_factor),
        retry_jitter_factor=jitter,
        retry_condition_fn=retry_when_transient,
        cache_policy=NO_CACHE,
    )


def attempts_left() -> bool:
    """True while the running task has a retry left: failing now means another try."""
    return (task_run.run_count or 1) <= RETRIES


def retry_if_unfinished(report: Any, why: Callable[[Any], str]) -> None:
    """Fail the task with `IncompleteRun` (so it is retried) when ``report`` did not finish and
    attempts are left; the last attempt's report is returned and published as it is."""
    if not report.ok and attempts_left():
        raise IncompleteRun(why(report))


@asynccontextmanager
async def clients_and_store(
    mapping: Mapping, dry_run: bool
) -> AsyncIterator[tuple[ShoplineClient, StoklyClient, Store]]:
    """Both API clients and the state store (`store_for`: in memory for a first dry run)."""
    with store_for(dry_run) as store:
        async with open_clients(mapping) as (shopline, stokly):
            yield shopline, stokly, store


async def run_use_case(
    use_case: Callable[..., Awaitable[R]],
    mapping: Mapping,
    *,
    dry_run: bool,
    progress: str,
    **options: Any,
) -> R:
    """``use_case`` (a `stokline.sync` pass) with the clients and the store open, its writes'
    progress logged under the label ``progress``; ``options`` are the use case's own."""
    async with clients_and_store(mapping, dry_run) as (shopline, stokly, store):
        return await use_case(
            mapping,
            shopline=shopline,
            stokly=stokly,
            store=store,
            dry_run=dry_run,
            progress=progress_logger(progress),
            **options,
        )


# -- the flow around it -------------------------------------------------------------------------


def start_pass(sync: str, mapping: str, trigger: str, dry_run: bool) -> Mapping | None:
    """The client's mapping, read afresh, with the run's first log line; None (and a log line
    saying so) when ``sync`` is left out of the mapping's ``syncs:`` or paused."""
    logger = get_run_logger()
    loaded = load_client_mapping(mapping)
    client = loaded.client.name
    if sync_settings(loaded, sync) is None:
        logger.info("the %s sync of %s is not enabled in %s: nothing to do", sync, client, mapping)
        return None
    logger.info("%s for %s (%s)%s", sync, client, trigger, " — dry run" if dry_run else "")
    return loaded


async def publish_summary(sync: str, report: PassReport, what: str) -> None:
    """``<sync>-summary-<client>`` (the report's figures; ``what`` says which) and
    ``<sync>-exceptions-<client>``."""
    client = report.client
    mode = "dry run" if report.dry_run else "run"
    await acreate_table_artifact(
        key=artifact_key(f"{sync}-summary", client),
        table=report.summary_rows(),
        description=f"{sync.capitalize()} {mode} for **{client}** ({report.trigger}): {what}",
    )
    await publish_exceptions(sync, client, report.exceptions, mode)


async def publish_rows(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A list artifact of at most `MAX_ROWS` rows; the ``description`` (what the rows are) says
    when more were left out."""
    await acreate_table_artifact(
        key=key,
        table=rows[:MAX_ROWS],
        description=description
        + (f"; the first {MAX_ROWS} shown" if len(rows) > MAX_ROWS else "")
        + ".",
    )


def emit_client_event(event: str, client: str, payload: dict[str, Any]) -> None:
    """``event`` on the client's resource ``stokline.client.<client>``, which automations match."""
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"stokline.client.{client}"},
        payload=payload,
    )


def emit_synced_event(event: str, report: PassReport, numbers: dict[str, int]) -> None:
    """A pass's ``stokline.<sync>.synced``: why it ran (``trigger``), whether it finished
    (``ok``) and its whole numbers."""
    emit_client_event(event, report.client, {"trigger": report.trigger, "ok": report.ok, **numbers})


def fail_if_unfinished(report: Any, why: Callable[[Any], str]) -> None:
    """Fail the flow run when its pass did not finish.

    Called last, after the artifacts and the event, so the run shows what did get done; a failed
    run is what alerting automations watch, and the next pass picks the rest up.
    """
    if not report.ok:
        raise IncompleteRun(why(report))

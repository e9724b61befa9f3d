"""What the flows share: names, retry rules, the mapping and location look-ups, locks, artifacts.

Everything here is orchestration: which failures are worth a task retry (only transient ones: the
HTTP clients already retried each request), which look-ups may be cached (only the read-only
Stokly location list), how a run is named, how a per-client lock is taken, and how exceptions
are published. The work itself stays in `stokline.sync`. Built on these:
`stokline.orchestration.passes` (the shape of one coarse sync pass: its task, its artifacts, its
event) and `stokline.orchestration.watchers` (the poll loop of the two watcher flows, handing
over to the next run).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError, concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from stokline.config import Mapping, check_file, load_mapping
from stokline.connectors import is_transient
from stokline.store import Store
from stokline.store.db import DEFAULT_PATH, URL_VARIABLE
from stokline.sync.clients import open_clients
from stokline.sync.orders.importer import stokly_location_index

RETRIES = 2
"""Task retries of a coarse step; the HTTP clients already retried each request below it."""


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) made of ``parts``."""
    text = "-".join(parts).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")


def client_of(mapping_path: str) -> str:
    """The client named in a mapping file, or the file's stem when the file is not valid yet.

    Used to name the flow run before the mapping task reports its problems properly.
    """
    result = check_file(mapping_path)
    if result.mapping is not None:
        return result.mapping.client.name
    return Path(mapping_path).stem


def run_name_of(sync: str, *, with_trigger: bool = True) -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<sync>-<client>[-<trigger>][-dry-run]``."""

    def name() -> str:
        params = flow_run.parameters
        parts = [sync, client_of(str(params.get("mapping", "")))]
        if with_trigger:
            parts.append(str(params.get("trigger", "manual")))
        return artifact_key(*parts) + ("-dry-run" if params.get("dry_run") else "")

    return name


class IncompleteRun(Exception):
    """A transient failure left the batch unfinished (deferred work, a failed read or push):
    worth another try."""


def worth_retrying(error: object) -> bool:
    """True for what may pass: rate limits, 5xx, network trouble, an unfinished batch."""
    return isinstance(error, IncompleteRun) or (
        isinstance(error, BaseException) and is_transient(error)
    )


def retry_when_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a coarse step only for what may pass: rate limits, 5xx, network trouble.

    A 4xx, an invalid mapping or a bug fails at once: trying again would only repeat it.
    """
    return worth_retrying(state.data)


@task(name="load-mapping", cache_policy=NO_CACHE)
def load_client_mapping(path: str) -> Mapping:
    """Read and validate the mapping; a consultant's edit (a new SKU override) counts next run.

    Not cached on purpose: the path stays the same when the file's content changes.
    """
    return load_mapping(path)


def sync_settings(mapping: Mapping, sync: str) -> Any | None:
    """The mapping's settings of ``sync`` when it is to run; None when it is left out of
    ``syncs:`` or paused with ``enabled: false``."""
    return mapping.syncs.enabled().get(sync)


@task(
    name="stokly-locations",
    cache_policy=INPUTS + TASK_SOURCE,
    cache_expiration=timedelta(minutes=15),
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=retry_when_transient,
)
async def stokly_locations(mapping_path: str, stokly_url: str, account_key: str) -> dict[str, str]:
    """Stokly's locations, name → id. Keyed on the account (URL and key) as well as the file, so
    a mapping pointed at another account never reads a cached answer of the first."""
    async with open_clients(load_mapping(mapping_path)) as (_, stokly):
        return await stokly_location_index(stokly)


async def locations_for(mapping_path: str, mapping: Mapping) -> dict[str, str]:
    """`stokly_locations` of the account the mapping (read from ``mapping_path``) connects to."""
    stokly = mapping.connections.stokly
    return await stokly_locations(mapping_path, stokly.base_url, stokly.account_key)


def store_for(dry_run: bool) -> Store:
    """The state store; a dry run without one yet gets an empty in-memory store, so that it
    creates no database file either."""
    if dry_run and not os.environ.get(URL_VARIABLE) and not Path(DEFAULT_PATH).exists():
        return Store("sqlite://")
    return Store()


def progress_logger(label: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback logging each quarter of a run's writes."""
    logger = get_run_logger()
    steps: set[int] = set()

    def progress(done: int, total: int) -> None:
        quarter = done * 4 // total if total else 4
        if quarter not in steps:
            steps.add(quarter)
            logger.info("%s: %d/%d", label, done, total)

    return progress


# -- one client's passes, one at a time ---------------------------------------------------------


class LockBusy(IncompleteRun):
    """Another pass held the client's lock for longer than this one would wait."""


LOCK_LEASE_SECONDS = 60.0
"""How long a held slot outlives a holder that died without releasing it (Prefect renews the
lease every few seconds while the holder lives), so a crashed run blocks the next for at most
this long."""


def lock_name(sync: str, client: str) -> str:
    """The Prefect global concurrency limit that keeps one client's ``sync`` passes apart."""
    return artifact_key("stokline", sync, client)


async def _ensure_limit(name: str) -> None:
    """Create the limit (one slot) when it does not exist yet.

    Acquiring a limit that does not exist succeeds at once without locking anything (Prefect only
    logs a warning), so the limit is created first and acquired with ``strict=True``: a limit
    deleted in between is an error, never a silent pass without the lock. A limit an operator
    deactivated or widened is respected, with a warning, because that is a decision.
    """
    logger = get_run_logger()
    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            # Another run may have created it a moment ago: that one will do.
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            return
    if not limit.active or limit.limit != 1:
        logger.warning(
            "concurrency limit %s is %s with %d slot(s): passes of this client may overlap",
            name,
            "active" if limit.active else "inactive",
            limit.limit,
        )


@asynccontextmanager
async def exclusive(name: str, *, wait_seconds: float) -> AsyncIterator[None]:
    """Hold the one slot of the global concurrency limit ``name`` for the block.

    Waits at most ``wait_seconds`` for the slot, then raises `LockBusy` (a transient failure:
    the step is retried later) instead of blocking forever.
    """
    await _ensure_limit(name)
    try:
        async with concurrency(
            name,
            occupy=1,
            timeout_seconds=wait_seconds,
            lease_duration=LOCK_LEASE_SECONDS,
            strict=True,
            # A Prefect server hiccup while renewing must not kill a pass halfway: the pass is
            # idempotent and the lease expires on its own.
            raise_on_lease_renewal_failure=False,
        ):
            yield
    except AcquireConcurrencySlotTimeoutError:
        raise LockBusy(f"{name} stayed busy for {wait_seconds:g} s") from None


# -- artifacts ----------------------------------------------------------------------------------


async def publish_exceptions(sync: str, client: str, exceptions: list[dict], mode: str) -> None:
    """The exceptions a run opened or resolved, or a line saying there were none."""
    key = artifact_key(sync, "exceptions", client)
    if exceptions:
        await acreate_table_artifact(
            key=key,
            table=exceptions,
            description=f"Exceptions of this {sync} {mode} for **{client}**; act on them with "
            "`stokline exceptions list|show|retry|resolve|ignore`.",
        )
    else:
        await acreate_markdown_artifact(
            key=key,
            markdown=f"No exceptions in this {sync} {mode} for **{client}**.",
            description="Exceptions of this run",
        )

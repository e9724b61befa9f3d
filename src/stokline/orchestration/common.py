"""What the flows share: names, retry rules, the mapping and location look-ups, artifacts.

Everything here is orchestration: which failures are worth a task retry (only transient ones: the
HTTP clients already retried each request), which look-ups may be cached (only the read-only
Stokly location list), how a run is named, and how exceptions are published. The work itself stays in `stokline.sync`. Built on these:
`stokline.orchestration.passes` (the shape of one coarse sync pass: its task, its artifacts, its
event) and `stokline.orchestration.watchers` (the poll loop of the two watcher flows, handing
over to the next run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
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

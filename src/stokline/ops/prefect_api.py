"""Which Prefect API the operations commands talk to, and whether it answers.

The commands never fall back to Prefect's temporary server (it takes 10–20 s to start and has no
runs or automations worth reading): they use ``--prefect-url``, else ``PREFECT_API_URL`` (the
environment or the active Prefect profile), else the local stack's ``http://127.0.0.1:4200/api``,
and check it answers before doing anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

LOCAL_API = "http://127.0.0.1:4200/api"


def api_url(given: str | None = None) -> str:
    """The Prefect API URL to use (see the module docstring), without a trailing slash."""
    if given:
        return given.rstrip("/")
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    return (configured or LOCAL_API).rstrip("/")


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why the Prefect API at ``url`` cannot be used, or None when it answers its health check."""
    from prefect.settings import get_current_settings

    key = get_current_settings().api.key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    try:
        response = httpx.get(f"{url}/health", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"the Prefect API at {url} does not answer ({type(exc).__name__})"
    if response.status_code != 200:
        return f"the Prefect API at {url} answered {response.status_code} to its health check"
    return None


@asynccontextmanager
async def prefect_client(url: str) -> AsyncIterator:
    """A Prefect client bound to ``url`` (blocks saved through it go there too)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        async with get_client() as client:
            yield client

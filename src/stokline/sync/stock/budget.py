"""How long one stock pass may run: its time budget, and what it says when the budget runs out.

A pass must end before the next one is due, whatever SHOPLINE (or Stokly) does: requests that
hang until their timeout, 5xx answers retried with backoff, a 429's ``Retry-After``. So it runs
its requests under a deadline (`stokline.connectors.deadline`): **the schedule's interval
(``syncs.stock.every``, 5 minutes when unset) less one request timeout (30 s)**, at least 30 s.
Past it no request is started, retried or waited for; a request already sent gets its answer or
its timeout. So a pass ends within ``every`` — 5 minutes on the demo's schedule — having started
nothing after 4 min 30 s.

A level not pushed for lack of time is left exactly as a failed write is: not recorded as
pushed, so the next pass reads it afresh and pushes what is still missing (an adjust is never
resent blindly). The pass says so in one line, first among its errors.
"""

from __future__ import annotations

from datetime import timedelta

from stokline.config import Mapping
from stokline.connectors import ShoplineClient, StoklyClient

__all__ = ["DEFAULT_EVERY", "MIN_BUDGET", "WHAT", "answer_wait", "out_of_time", "pass_budget"]

DEFAULT_EVERY = timedelta(minutes=5)
"""The stock sync's default cadence (DESIGN.md), for a mapping whose schedule is not ``every``."""
MIN_BUDGET = 30.0
"""Seconds a pass may start requests in at the least, however short its schedule."""
WHAT = "the stock pass's time budget"


def answer_wait(*clients: ShoplineClient | StoklyClient) -> float:
    """The longest the clients wait for one answer (their request timeout), in seconds."""
    return max((client.timeout for client in clients), default=0.0)


def pass_budget(mapping: Mapping, *clients: ShoplineClient | StoklyClient) -> float:
    """Seconds after its start past which a pass of ``mapping``'s client starts no request:
    ``syncs.stock.every`` (or 5 minutes) less the clients' request timeout, at least 30 s."""
    settings = mapping.syncs.stock
    every = (settings.every if settings is not None else None) or DEFAULT_EVERY
    return max(every.total_seconds() - answer_wait(*clients), MIN_BUDGET)


def out_of_time(budget: float, not_pushed: int, reading: str | None = None) -> str:
    """The one line a pass cut short by its budget leaves (``reading``: the request it could
    not start while it was still reading)."""
    line = f"{WHAT} of {budget:g} s ran out"
    if reading is not None:
        line += f" while it was reading ({reading})"
    if not_pushed:
        line += f": {not_pushed} level(s) not pushed; the next pass pushes them"
    else:
        line += "; the next pass pushes what this one did not"
    return line

"""The client's operating model as a Markdown runbook, for the people who run the business.

`render_runbook(mapping)` turns one validated mapping into the page a consultant hands over:
which system is the master of what, what flows where and how often, who owns each kind of
exception and how to resolve it, the daily checks and the periodic reviews — each with the exact
`stokline` command, written for operations, e-commerce and finance rather than for engineers.

The facts come from `stokline.ops.operating_model`; this module adds the commands and renders
the Jinja2 template ``templates/runbook.md.j2`` shipped inside the package. The template runs in
a sandboxed environment, and nothing from the mapping is ever compiled as a template: names,
SKUs and addresses reach it as values, through the `md` and `code` filters, which escape them
for Markdown (a ``|`` in a name cannot break a table, a ``{{`` is shown as written).
"""

from __future__ import annotations

import re
import shlex
from datetime import date, datetime, timedelta
from typing import Any

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from stokline.config import Mapping
from stokline.ops import operating_model as model

__all__ = ["code", "md", "render_runbook", "runbook_context"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md(value: Any) -> str:
    """Text from the mapping, safe inside Markdown prose and tables: one line, no markup."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def code(value: Any) -> str:
    """Text from the mapping as an inline code span (SKUs, ids, patterns), safe in a table."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def shell(*words: str) -> str:
    """A command line, each word quoted for a POSIX shell only where it needs to be."""
    return " ".join(shlex.quote(w) for w in words)


def _previous_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def runbook_context(mapping: Mapping, *, today: date | None = None) -> dict[str, Any]:
    """Everything the runbook template shows, as plain data (strings not yet escaped)."""
    client = mapping.client
    source = mapping.source or f"mappings/{client.name}.yaml"
    today = today or datetime.now(client.tz).date()
    month_start, month_end = _previous_month(today)
    escalation = mapping.operating_model.escalation
    exceptions = model.exceptions(mapping)
    teams = {
        team: [r["code"] for r in exceptions if r["team"] == team]
        for team in model.TEAMS
        if any(r["team"] == team for r in exceptions)
    }
    stokly = mapping.connections.stokly
    commands = {
        "status": shell("stokline", "status", "--mapping", source),
        "exceptions_team": {
            team: shell("stokline", "exceptions", "list", "--client", client.name, "--team", team)
            for team in teams
        },
        "exceptions_all": shell("stokline", "exceptions", "list", "--client", client.name),
        "show": "stokline exceptions show 12",
        "retry": "stokline exceptions retry 12",
        "resolve": 'stokline exceptions resolve 12 --note "override added for the new SKU"',
        "ignore": 'stokline exceptions ignore 12 --note "test order, not to be imported"',
        "orders_dry_run": shell("stokline", "run", "orders", "--mapping", source, "--dry-run"),
        "orders_now": shell("stokline", "run", "orders", "--mapping", source),
        "dry_runs": [
            shell("stokline", "run", name, "--mapping", source, "--dry-run")
            for name in mapping.syncs.enabled()
        ],
        "stock_review": shell("stokline", "reconcile", "stock", "--mapping", source),
        "stock_review_diff": shell(
            "stokline", "reconcile", "stock", "--mapping", source, "--only-differences"
        ),
        "payouts_yesterday": shell("stokline", "reconcile", "payouts", "--mapping", source),
        "payouts_month": shell(
            "stokline",
            "reconcile",
            "payouts",
            "--mapping",
            source,
            "--from",
            month_start.isoformat(),
            "--to",
            month_end.isoformat(),
        ),
        "validate": shell("stokline", "validate", source),
        "plan": shell("stokline", "plan", source),
        "automations": shell("stokline", "automations", "apply", "--mapping", source),
        "runbook": shell("stokline", "runbook", source, "-o", f"{client.name}-runbook.md"),
    }
    return {
        "client": {
            "name": client.name,
            "title": client.title,
            "timezone": client.timezone,
            "currency": client.currency,
        },
        "source": source,
        "stokly": {"account": stokly.account_key, "channel": stokly.channel_id},
        "shopline_url": mapping.connections.shopline.url,
        "escalation": {
            "name": escalation.name,
            "email": escalation.email,
            "phone": escalation.phone,
        },
        "default_owner": mapping.operating_model.default_owner,
        "masters": model.masters(mapping),
        "syncs": model.flows(mapping),
        "finance_on": mapping.syncs.finance is not None and mapping.syncs.finance.enabled,
        "stock_on": mapping.syncs.stock is not None and mapping.syncs.stock.enabled,
        **model.translations(mapping),
        "exceptions": exceptions,
        "teams": teams,
        "team_titles": model.TEAM_TITLES,
        "alerts": model.alerts(mapping),
        "commands": commands,
    }


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=PackageLoader("stokline.ops", "templates"),
        autoescape=False,  # Markdown, not HTML: values are escaped by the filters below
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.filters["code"] = code
    return env


def render_runbook(mapping: Mapping, *, today: date | None = None) -> str:
    """The runbook of ``mapping``'s client, as Markdown."""
    template = _environment().get_template("runbook.md.j2")
    text = template.render(**runbook_context(mapping, today=today))
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"

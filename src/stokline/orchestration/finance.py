"""The Prefect glue of the finance flow (`flows/finance.py`): its run form, its run name, and the
words a finance user reads on its artifacts and above its approval form.

- **The run form.** Prefect builds the deployment's "Custom run" form from the flow's signature:
  each parameter's title comes from its annotation here (Prefect 3.9 titles a parameter with its
  name and keeps a title given through ``json_schema_extra``), its description from the flow's
  docstring (``Args:``). The period has no ``None`` in the form: a ``None`` option shows as
  'Property is type "None"'. ``start`` is a day or "yesterday" (in the client's timezone, the
  default), ``end`` a day or "same day" (as ``start``, the default); Python callers may still
  pass ``None`` for either, as before.
- **The run name** tells the runs of one period apart: the trigger and the time they started.
- **The stage** of what a run publishes: a dry run, a run awaiting approval, a run not approved,
  a live run. Each says what it did and did not write, so a run waiting for a person is never
  mistaken for a dry run and a refusal never for a posting.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from stokline.config import Mapping, check_file
from stokline.orchestration.common import artifact_key
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.sync import PeriodError, default_period, resolve_period

__all__ = [
    "AWAITING",
    "DRY_RUN",
    "LIVE",
    "NOT_APPROVED",
    "NOT_APPROVED_MESSAGE",
    "SAME_DAY",
    "YESTERDAY",
    "DryRun",
    "FirstDay",
    "LastDay",
    "MappingPath",
    "Stage",
    "StartedBy",
    "Trigger",
    "approval_request",
    "batch_rows",
    "cell",
    "finance_run_name",
    "form_period",
    "journals_markdown",
    "summary_rows",
    "unimported_text",
]

MAX_ORDERS_LISTED = 20
YESTERDAY = "yesterday"
"""``start``'s default: yesterday in the client's timezone, worked out when the run starts."""
SAME_DAY = "same day"
"""``end``'s default: the period is the one day ``start`` names."""
NOT_APPROVED_MESSAGE = "journals not approved: nothing posted"

Trigger = Literal["schedule", "manual", "automation"]
"""Why a run started: the nightly schedule, a person (the Run button, the CLI), an automation."""


def _titled(title: str) -> Any:
    # Prefect 3.9 replaces a Field's own title by the parameter's name; it keeps json_schema_extra.
    return Field(json_schema_extra={"title": title})


MappingPath = Annotated[str, _titled("Client mapping")]
FirstDay = Annotated[
    date | Literal["yesterday"] | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "title": "A day"},
                {"const": YESTERDAY, "type": "string", "title": "Yesterday"},
            ]
        }
    ),
    _titled("First day"),
]
LastDay = Annotated[
    date | Literal["same day"] | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "title": "A day"},
                {"const": SAME_DAY, "type": "string", "title": "Same day as the first"},
            ]
        }
    ),
    _titled("Last day"),
]
DryRun = Annotated[bool, _titled("Dry run: preview only, write nothing")]
StartedBy = Annotated[Trigger, _titled("Started by (set by the schedule; leave it)")]


def form_period(
    mapping: Mapping,
    start: date | str | None,
    end: date | str | None,
    now: datetime | None = None,
) -> tuple[date, date]:
    """The period a run posts, from its ``start`` and ``end`` as the form or a caller gives them.

    "yesterday" is yesterday in the client's timezone; "same day" (or no ``end``) is ``start``'s
    day; no ``start`` and no ``end`` is yesterday. Raises `PeriodError` as `resolve_period` does.
    """
    first = _day(start, mapping, now)
    last = None if end == SAME_DAY else _day(end, mapping, now)
    return resolve_period(mapping, first, last, now)


def _day(value: date | str | None, mapping: Mapping, now: datetime | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    if value == YESTERDAY:
        return default_period(mapping, now)[0]
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{value!r} is not a day (YYYY-MM-DD) nor {YESTERDAY!r}") from None


def finance_run_name(parameters: MappingType[str, Any], now: datetime | None = None) -> str:
    """``finance-<client>-<period>-<trigger>-<HHMM>[-dry-run]``, the time in the client's timezone.

    E.g. ``finance-demo-outdoor-2025-06-15-schedule-0200`` for the nightly run and
    ``finance-demo-outdoor-2025-06-15-manual-0912`` for a person's run of the same day, so the
    runs of one period are told apart in the UI. A mapping or period that cannot be read names
    the run with what was given; the run itself then fails saying why.
    """
    path = str(parameters.get("mapping", ""))
    mapping = check_file(path).mapping if path else None
    client = mapping.client.name if mapping is not None else Path(path).stem
    moment = now or datetime.now(UTC)
    start, end = parameters.get("start"), parameters.get("end")
    try:
        if mapping is None:
            raise PeriodError("no mapping")
        moment = moment.astimezone(mapping.client.tz)
        first, last = form_period(mapping, start, end, moment)
        period = str(first) if first == last else f"{first}-to-{last}"
    except PeriodError:
        given = [str(v) for v in (start, end) if v not in (None, SAME_DAY)]
        period = "-to-".join(dict.fromkeys(given)) or YESTERDAY
    trigger = str(parameters.get("trigger") or "manual")
    name = artifact_key("finance", client, period, trigger, moment.strftime("%H%M"))
    return name + ("-dry-run" if parameters.get("dry_run") else "")


# -- what a run publishes, by stage -------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Where a run is, in the words of its artifacts."""

    mode: str
    """The summary's ``mode`` row."""
    run: str
    """The run in a sentence: "No exceptions in this finance <run>"."""
    journals: str
    """The journals' pages and tables: "Journals for <client>, <period> — <journals>"."""
    outcome: dict[str, str]
    """The batches' outcomes as the report says them → as this stage says them."""


DRY_RUN = Stage("dry run (nothing written)", "dry run", "dry run: nothing posted", {})
AWAITING = Stage(
    "awaiting approval (nothing posted yet)",
    "run awaiting approval (nothing posted yet)",
    "awaiting approval: nothing posted yet",
    {"would post": "awaits approval", "would post adjustment": "adjustment, awaits approval"},
)
NOT_APPROVED = Stage(
    "not approved (nothing posted)",
    "run not approved (nothing posted)",
    "not approved: nothing posted",
    {"would post": "not approved", "would post adjustment": "adjustment not approved"},
)
LIVE = Stage("live", "run", "posted", {})


def batch_rows(report: LedgerReport, stage: Stage) -> list[dict[str, Any]]:
    """The report's batch rows, their outcomes as ``stage`` says them."""
    return [
        {**row, "outcome": stage.outcome.get(row.get("outcome", ""), row.get("outcome", ""))}
        for row in report.batches
    ]


def summary_rows(
    ledger: LedgerReport,
    stage: Stage,
    *,
    currency: str,
    payments: Any | None = None,
    reconciliation: Any | None = None,
    calls: int | None = None,
) -> list[dict[str, Any]]:
    """The finance summary: the run's one read, the ledger's figures (its mode as ``stage`` says
    it), the money of orders not in Stokly yet, the payments' figures, the reconciliation."""
    rows = (
        []
        if calls is None
        else [{"metric": "SHOPLINE requests (one read for the whole run)", "value": calls}]
    )
    for row in ledger.summary_rows():
        rows.append({**row, "value": stage.mode} if row["metric"] == "mode" else row)
    unimported = unimported_text(ledger, currency)
    if unimported:
        rows.append({"metric": "payments of orders not in Stokly yet", "value": unimported})
    if payments is not None:
        rows += [
            {"metric": f"payments: {r['metric']}", "value": r["value"]}
            for r in payments.summary_rows()
        ]
    if reconciliation is not None:
        rows.append({"metric": "reconciliation", "value": reconciliation.headline()})
    return rows


# -- words ---------------------------------------------------------------------------------------

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def amount_text(amount: Decimal, currency: str) -> str:
    """``£2,994.04``; ``1,000.00 SEK`` for a currency without a symbol here."""
    sign = "-" if amount < 0 else ""
    figure = f"{abs(amount):,.2f}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{figure}" if symbol else f"{sign}{figure} {currency}"


def _names(names: list[str], limit: int = MAX_ORDERS_LISTED) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def unimported_text(report: LedgerReport, currency: str, limit: int = MAX_ORDERS_LISTED) -> str:
    """The money of orders SHOPLINE has and Stokly not yet, what the run does with it, and up
    to ``limit`` of those orders; "" when there is none.

    E.g. "£2,994.04 of payments on 15 orders are not in Stokly yet: held for a later run
    (policy: hold). Orders: #1001, #1002 and 13 more."
    """
    if not report.unimported:
        return ""
    orders = list(
        dict.fromkeys(str(row.get("order") or row.get("shopline_id")) for row in report.unimported)
    )
    policy = report.unimported_policy
    if policy.startswith("suspense:"):
        account = policy.partition(":")[2]
        what = f"posted to the suspense account {account} until their order is in Stokly"
    else:
        what = "held for a later run, when their order is in Stokly"
    count = f"{len(orders)} order" + ("" if len(orders) == 1 else "s")
    return (
        f"{amount_text(report.unimported_total, currency)} of payments on {count} "
        f"are not in Stokly yet: {what} (policy: {policy}). "
        f"Orders: {_names(orders, limit)}."
    )


def set_aside_text(report: LedgerReport, currency: str, limit: int = MAX_ORDERS_LISTED) -> str:
    """The orders kept out of their day's journal (their money does not add up, or cannot be
    translated) with their amount and exception codes; "" when there is none."""
    if not report.set_aside:
        return ""
    orders = list(
        dict.fromkeys(str(row.get("order") or row.get("shopline_id")) for row in report.set_aside)
    )
    total = sum((Decimal(str(row.get("amount") or 0)) for row in report.set_aside), Decimal(0))
    codes = ", ".join(sorted({str(row.get("code")) for row in report.set_aside if row.get("code")}))
    one = len(orders) == 1
    count = f"{len(orders)} order" + (" is" if one else "s are")
    whose = "its exception" if one else "their exceptions"
    return (
        f"{amount_text(total, currency)} on {count} not in these journals until finance "
        f"resolves {whose} ({codes}). Orders: {_names(orders, limit)}."
    )


def approval_request(preview: LedgerReport, currency: str = "") -> str:
    """The text above the approval form: what is to be posted, what is not, and where to read it."""
    lines = [
        f"**{len(preview.journals)} journal(s)** for **{preview.client}**, {preview.period}:",
        "",
    ]
    for journal in preview.journals:
        lines.append(
            f"- `{journal.batch_key}`: {journal.debits} {journal.key.currency} "
            f"({len(journal.lines)} lines, hash `{journal.content_hash[:12]}`)"
        )
    if preview.refused:
        lines += ["", f"{len(preview.refused)} journal(s) are refused and will not be posted."]
    currency = currency or _currency_of(preview)
    aside = set_aside_text(preview, currency)
    if aside:
        lines += ["", f"**Set aside:** {aside}"]
    unimported = unimported_text(preview, currency)
    if unimported:
        lines += ["", f"**Not in these journals:** {unimported}"]
    lines += [
        "",
        "Read the lines in this run's **finance-journals** artifacts. Approve to post exactly "
        "these journals; a journal that changes before posting is left for the next run. "
        "Not approving posts nothing and ends the run Cancelled.",
    ]
    return "\n".join(lines)


def _currency_of(report: LedgerReport) -> str:
    currencies = sorted(report.totals())
    return currencies[0] if len(currencies) == 1 else ""


def cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def journals_markdown(report: LedgerReport, heading: str) -> str:
    """The journals of a report (and those refused) as a markdown page."""
    out = [f"# {heading}", ""]
    if not report.journals and not report.refused:
        out.append("No journal to post: nothing new moved in this period, or it is all posted.")
    for journal in [*report.journals, *report.refused]:
        title = f"## `{journal.batch_key}` — {journal.debits} {journal.key.currency}"
        out += [title + (" — **refused**" if journal.refused else ""), ""]
        for problem in journal.problems:
            out.append(f"> **{problem.code}**: {cell(problem.message)}")
        for note in journal.notes:
            out.append(f"> {cell(note)}")
        if journal.problems or journal.notes:
            out.append("")
        out += ["| account | description | debit | credit |", "|---|---|---:|---:|"]
        for line in journal.lines:
            debit = str(line.debit) if line.debit else ""
            credit = str(line.credit) if line.credit else ""
            out.append(f"| {line.account} | {cell(line.description)} | {debit} | {credit} |")
        out.append(f"| **total** | | **{journal.debits}** | **{journal.credits}** |")
        orders = _names(list(journal.orders))
        out += [
            "",
            f"Date {journal.key.day}, {journal.sales} sale(s), {journal.refunds} refund(s); "
            f"content hash `{journal.content_hash[:12]}`. Orders: {cell(orders) or '—'}",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"

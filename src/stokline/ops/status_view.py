"""A client's status as a terminal table, a Markdown page (the Prefect artifact) or JSON.

All three say the same things in the same order: the syncs (last success, lag, health, last run,
what moved), then open exceptions by team and severity, then the webhook inbox. Times are shown
in UTC with their age; JSON carries ISO times and seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stokline.ops.status import ClientStatus, SyncStatus

_SOURCE_WORDS = {
    "prefect": "Prefect",
    "store": "state store: last activity",
    "none": "",
}


def age(value: timedelta | None) -> str:
    """A duration for people: ``45 s``, ``3 min``, ``2 h 5 min``, ``4 d 3 h``."""
    if value is None:
        return "—"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _moved(row: SyncStatus) -> str:
    if row.moved is None:
        return "—"
    figures = [f"{name.replace('_', ' ')} {count}" for name, count in row.moved.items() if count]
    return ", ".join(figures) or "nothing"


def _last_run(row: SyncStatus) -> str:
    run = row.last_run
    if run is None:
        return "—"
    return f"{run.state} {_time(run.at)}"


def _success(row: SyncStatus) -> str:
    if row.health == "not deployed":
        return "not deployed"
    if row.last_success is None:
        return "never" if row.period else "—"
    suffix = " (store)" if row.source == "store" else ""
    return f"{_time(row.last_success)}{suffix}"


def _severities(counts: dict[str, int]) -> str:
    return ", ".join(f"{sev} {n}" for sev, n in counts.items())


def _headline(status: ClientStatus) -> str:
    return f"{status.client} ({status.title}) — {status.source_file} — at {_time(status.at)}"


def _exception_lines(status: ClientStatus) -> list[str]:
    ex = status.exceptions
    if not ex.total:
        return ["open exceptions: none"]
    lines = [f"open exceptions: {ex.total} ({_severities(ex.by_severity)})"]
    width = max(len(t) for t in ex.by_team)
    for team, counts in ex.by_team.items():
        lines.append(f"  {team:<{width}}  {sum(counts.values()):>4}  {_severities(counts)}")
    return lines


def _inbox_line(status: ClientStatus) -> str:
    box = status.inbox
    if not box.depth:
        text = "webhook inbox: empty"
    else:
        text = (
            f"webhook inbox: {box.depth} waiting ({box.pending} pending, {box.processing} "
            f"being processed), oldest {age(box.oldest_age)}"
        )
    return text + (f"; {box.poison} poison" if box.poison else "")


_COLUMNS = ("sync", "schedule", "last success", "lag", "health", "last run", "moved")


def _cells(row: SyncStatus) -> tuple[str, ...]:
    return (
        row.sync,
        row.schedule,
        _success(row),
        age(row.lag),
        row.health,
        _last_run(row),
        _moved(row),
    )


def render_table(status: ClientStatus) -> str:
    """The terminal view of one client."""
    lines = [_headline(status)]
    if status.note:
        lines.append(f"  note: {status.note}")
    rows = [_COLUMNS, *(_cells(r) for r in status.syncs)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        lines.append(f"  {head}  {row[-1]}".rstrip())
    lines += [f"  {line}" for line in _exception_lines(status)]
    lines.append(f"  {_inbox_line(status)}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(status: ClientStatus) -> str:
    """The Markdown artifact of one client: the operations dashboard in the Prefect UI."""
    lines = [
        f"# {_md(status.title)} ({status.client})",
        "",
        f"Status at {_time(status.at)}; runs from "
        f"{'Prefect' if status.runs_from == 'prefect' else 'the state store'}.",
    ]
    if status.note:
        lines += ["", f"> {_md(status.note)}"]
    lines += [
        "",
        "## Syncs",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    for row in status.syncs:
        cells = list(_cells(row))
        if row.health in ("late", "overdue", "never"):
            cells[4] = f"**{cells[4]}**"
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    ex = status.exceptions
    lines += ["", "## Open exceptions", ""]
    if not ex.total:
        lines.append("None.")
    else:
        lines += ["| team | open | " + " | ".join(_sev for _sev in ex.by_severity) + " |"]
        lines += ["|---|---|" + "---|" * len(ex.by_severity)]
        for team, counts in ex.by_team.items():
            cells = [str(counts.get(sev, 0)) for sev in ex.by_severity]
            lines.append(f"| {team} | {sum(counts.values())} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Act on them with `stokline exceptions list --client {status.client}`.",
        ]
    lines += ["", "## Webhook inbox", "", _md(_inbox_line(status)).removeprefix("webhook inbox: ")]
    return "\n".join(lines) + "\n"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _seconds(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


def as_json(status: ClientStatus) -> dict[str, Any]:
    """The status of one client as plain JSON data."""
    ex, box = status.exceptions, status.inbox
    return {
        "client": status.client,
        "title": status.title,
        "mapping": status.source_file,
        "at": _iso(status.at),
        "runs_from": status.runs_from,
        "note": status.note or None,
        "syncs": [
            {
                "sync": r.sync,
                "deployment": r.deployment,
                "schedule": r.schedule,
                "period_seconds": _seconds(r.period),
                "last_success": _iso(r.last_success),
                "last_success_source": _SOURCE_WORDS[r.source] or None,
                "lag_seconds": _seconds(r.lag),
                "health": r.health,
                "last_run": (
                    {"name": r.last_run.name, "state": r.last_run.state, "at": _iso(r.last_run.at)}
                    if r.last_run
                    else None
                ),
                "moved": r.moved,
                "moved_at": _iso(r.moved_at),
            }
            for r in status.syncs
        ],
        "exceptions": {
            "open": ex.total,
            "by_severity": ex.by_severity,
            "by_team": ex.by_team,
            "oldest_first_seen": _iso(ex.oldest),
        },
        "inbox": {
            "depth": box.depth,
            "pending": box.pending,
            "processing": box.processing,
            "poison": box.poison,
            "oldest_received": _iso(box.oldest),
            "oldest_age_seconds": _seconds(box.oldest_age),
        },
    }

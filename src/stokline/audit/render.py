"""The audit report for people (Markdown, HTML), tools (JSON) and spreadsheets (CSV).

The Markdown and HTML say the same in plain words, ranked by impact, each finding with its
count, what it costs if nothing is done, who owns it and a few examples. The CSVs carry every
record of every finding, one file each, beside ``findings.csv`` (one row per finding). Cells that
a spreadsheet would run as a formula are quoted.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from jinja2 import Environment, select_autoescape

from stokline.audit.findings import SECTIONS, AuditReport
from stokline.sync.report import spreadsheet_cell

__all__ = ["FORMATS", "to_csv_files", "to_html", "to_json", "to_markdown", "write"]

FORMATS = ("md", "html", "json", "csv")


def _summary_lines(report: AuditReport) -> list[str]:
    ranked = report.ranked()
    period = f"{report.since:%d %b %Y} to {report.until:%d %b %Y}"
    lines = [
        f"# Integration audit: {report.client}",
        "",
        f"Orders placed from {period}; both systems read, nothing written. "
        f"{len(ranked)} finding(s), most costly first.",
        "",
    ]
    if ranked:
        lines += ["| # | finding | how many | owner |", "|---|---|---|---|"]
        for number, finding in enumerate(ranked, 1):
            lines.append(
                f"| {number} | {finding.title} | {finding.count} | {finding.team or '—'} |"
            )
        lines.append("")
    return lines


def to_markdown(report: AuditReport) -> str:
    lines = _summary_lines(report)
    for section, heading in SECTIONS.items():
        found = report.in_section(section)
        lines += [f"## {heading}", ""]
        if not found:
            lines += ["Nothing found.", ""]
        for finding in found:
            lines += [f"### {finding.title}: {finding.count}", "", finding.impact, ""]
            if finding.team:
                lines.append(f"- **Owner:** {finding.team}")
            if finding.todo:
                lines.append(f"- **What to do:** {finding.todo}")
            if finding.examples:
                lines.append(f"- **For example:** {'; '.join(finding.examples)}")
            lines.append("")
        if section == "coverage" and report.inventory:
            lines += ["| kind | value seen | orders | mapped to |", "|---|---|---|---|"]
            for entry in report.inventory:
                mapped = entry.mapped_to if entry.mapped_to is not None else "**not mapped**"
                if entry.by_default:
                    mapped = f"**not mapped** (the default, {entry.mapped_to})"
                lines.append(
                    f"| {entry.kind} | {entry.value or '(none)'} | {entry.orders} | {mapped} |"
                )
            lines.append("")
    lines += ["## What was read", ""]
    lines += [f"- {what}: {count}" for what, count in report.read.items()]
    lines += [
        f"- API requests: {', '.join(f'{k} {v}' for k, v in report.requests.items())}",
        f"- Time: {report.seconds:.1f} s",
    ]
    lines += [f"- Note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Integration audit: {{ r.client }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60em; margin: 2em auto; color: #1d2733; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 2px solid #dde3ea; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e5e9ee; }
th { background: #f3f6f9; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.finding { border-left: 5px solid #9aa5b1; padding: .2em 1em; margin: 1em 0; background: #fafbfc; }
.k-oversell, .k-lost_order { border-color: #c62828; } .k-stranded_order { border-color: #ef6c00; }
.k-no_tracking, .k-ledger { border-color: #f9a825; } .k-customer { border-color: #1565c0; }
.owner { color: #52606d; } .none { color: #7b8794; } .gap { color: #c62828; font-weight: 600; }
</style></head><body>
<h1>Integration audit: {{ r.client }}</h1>
<p>Orders placed from {{ r.since.strftime("%d %b %Y") }} to {{ r.until.strftime("%d %b %Y") }}.
Both systems were read; nothing was written. {{ ranked|length }} finding(s), most costly first.</p>
<table><tr><th>#</th><th>Finding</th><th>How many</th><th>Owner</th></tr>
{% for f in ranked %}<tr><td class="n">{{ loop.index }}</td><td>{{ f.title }}</td>
<td class="n">{{ f.count }}</td><td>{{ f.team or "—" }}</td></tr>
{% endfor %}</table>
{% for key, heading in sections.items() %}<h2>{{ heading }}</h2>
{% set found = r.in_section(key) %}{% if not found %}<p class="none">Nothing found.</p>{% endif %}
{% for f in found %}<div class="finding k-{{ f.kind }}"><h3>{{ f.title }}: {{ f.count }}</h3>
<p>{{ f.impact }}</p>{% if f.team %}<p class="owner">Owner: {{ f.team }}</p>{% endif %}
{% if f.todo %}<p><strong>What to do:</strong> {{ f.todo }}</p>{% endif %}
{% if f.examples %}<p><strong>For example:</strong> {{ f.examples|join("; ") }}</p>{% endif %}
</div>{% endfor %}
{% if key == "coverage" and r.inventory %}<table><tr><th>Kind</th><th>Value seen</th>
<th>Orders</th><th>Mapped to</th></tr>{% for e in r.inventory %}<tr><td>{{ e.kind }}</td>
<td>{{ e.value or "(none)" }}</td><td class="n">{{ e.orders }}</td>
<td>{% if e.mapped_to is none %}<span class="gap">not mapped</span>{% elif e.by_default %}<span class="gap">not mapped</span> (the default, {{ e.mapped_to }}){% else %}{{ e.mapped_to }}{% endif %}</td>
</tr>{% endfor %}</table>{% endif %}
{% endfor %}
<h2>What was read</h2><ul>{% for what, count in r.read.items() %}<li>{{ what }}: {{ count }}</li>
{% endfor %}<li>API requests: {% for k, v in r.requests.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</li>
<li>Time: {{ "%.1f"|format(r.seconds) }} s</li>{% for n in r.notes %}<li>Note: {{ n }}</li>{% endfor %}</ul>
</body></html>
"""


def to_html(report: AuditReport) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(_HTML)
    return template.render(r=report, ranked=report.ranked(), sections=SECTIONS)


def to_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), indent=2, default=str) + "\n"


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_cell(v) for k, v in row.items()})
    return out.getvalue()


def to_csv_files(report: AuditReport) -> dict[str, str]:
    """File name → CSV text: ``findings.csv`` and one file per finding with records."""
    files = {
        "findings.csv": _csv(
            [
                {
                    "rank": n,
                    "section": f.section,
                    "key": f.key,
                    "finding": f.title,
                    "count": f.count,
                    "owner": f.team or "",
                    "impact": f.impact,
                    "todo": f.todo,
                }
                for n, f in enumerate(report.ranked(), 1)
            ]
        )
    }
    for finding in report.ranked():
        if finding.rows:
            files[f"{finding.key}.csv"] = _csv(finding.rows)
    return files


def write(report: AuditReport, fmt: str, folder: Path) -> list[Path]:
    """Write the report in ``fmt`` into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"audit-{report.client}"
    if fmt == "csv":
        written = []
        for name, text in to_csv_files(report).items():
            path = folder / f"{stem}-{name}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written
    text = {"md": to_markdown, "html": to_html, "json": to_json}[fmt](report)
    path = folder / f"{stem}.{fmt}"
    path.write_text(text, encoding="utf-8")
    return [path]

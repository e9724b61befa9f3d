"""operating_model.alerts in mapping files: what is accepted, and the one line for each mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stokline.config import check_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "mappings" / "demo.yaml").read_text(encoding="utf-8")
NOTIFY = '    notify:\n      webhook: {url: "http://127.0.0.1:8804/alerts"}\n'


def _with(notify: str = NOTIFY, rest: str = "") -> str:
    """The demo mapping with its alerts section's notify (and settings) replaced."""
    head, _, _ = DEMO.partition("  alerts:\n")
    return head + "  alerts:\n" + notify + rest


def test_the_demo_and_the_defaults() -> None:
    alerts = check_text(DEMO, "demo.yaml").mapping.operating_model.alerts  # type: ignore[union-attr]
    assert alerts.notify.webhook.url == "http://127.0.0.1:8804/alerts"  # type: ignore[union-attr]
    assert (alerts.cooldown, alerts.missed_runs) == (timedelta(minutes=30), 3)
    assert (alerts.exception_spike.count, alerts.exception_spike.within) == (
        5,
        timedelta(minutes=15),
    )
    bare = check_text(_with(), "demo.yaml").mapping.operating_model.alerts  # type: ignore[union-attr]
    assert bare == alerts  # the demo spells out the defaults


def test_a_prefect_block_a_webhook_or_both() -> None:
    block = "    notify: {prefect_block: slack-webhook/ops-alerts}\n"
    alerts = check_text(_with(block), "x.yaml").mapping.operating_model.alerts  # type: ignore[union-attr]
    assert alerts.notify.prefect_block == "slack-webhook/ops-alerts"
    assert alerts.notify.webhook is None
    both = NOTIFY + "      prefect_block: email/ops\n"
    alerts = check_text(_with(both), "x.yaml").mapping.operating_model.alerts  # type: ignore[union-attr]
    assert alerts.notify.webhook and alerts.notify.prefect_block == "email/ops"


@pytest.mark.parametrize(
    ("text", "pointer", "message"),
    [
        (
            _with("    notify: {}\n"),
            "/operating_model/alerts/notify",
            "missing required key 'webhook'",
        ),
        (
            _with("", "    cooldown: 1h\n"),
            "/operating_model/alerts",
            "missing required key 'notify'",
        ),
        (
            _with('    notify:\n      webhook: {url: "ftp://x"}\n'),
            "/operating_model/alerts/notify/webhook/url",
            "is not in the expected form",
        ),
        (
            _with("    notify: {prefect_block: Ops Slack}\n"),
            "/operating_model/alerts/notify/prefect_block",
            "is not in the expected form",
        ),
        (
            _with(NOTIFY, "    cooldown: 0m\n"),
            "/operating_model/alerts/cooldown",
            "is not in the expected form",
        ),
        (
            _with(NOTIFY, "    missed_runs: 1\n"),
            "/operating_model/alerts/missed_runs",
            "must be at least 2",
        ),
        (
            _with(NOTIFY, "    exception_spike: {count: 5, within: 15}\n"),
            "/operating_model/alerts/exception_spike/within",
            "expected a string, got a number",
        ),
        (
            _with(NOTIFY, "    exception_spike: {cuont: 5}\n"),
            "/operating_model/alerts/exception_spike/cuont",
            "unknown key 'cuont'",
        ),
        (
            _with("    notify:\n      webhok: {url: http://x}\n"),
            "/operating_model/alerts/notify/webhok",
            "unknown key 'webhok'",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else "",
)
def test_each_mistake_is_one_located_problem(text: str, pointer: str, message: str) -> None:
    problems = check_text(text, "demo.yaml").problems
    assert [p.pointer for p in problems] == [pointer], [p.format() for p in problems]
    assert message in problems[0].message
    assert problems[0].format().startswith("demo.yaml:")

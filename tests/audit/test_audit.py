"""`stokline audit` against the demo sandboxes served on loopback: read-only, every section of the
report found in the demo's data, every format written, bad arguments refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stokline.cli import main
from stokline.config import check_file
from stokline.sandbox.common import ServerThread
from tests.flows.sandboxes import DEMO_MAPPING, demo_apps, demo_credentials, point_mapping_at


class Requests:
    """A sandbox behind a record of every API request (method, path) it receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def writes(self) -> list[tuple[str, str]]:
        # Stokly's token grant is a POST that changes nothing in the account.
        return [(m, p) for m, p in self.seen if m != "GET" and not p.endswith("/v1/grant")]


@dataclass
class Demo:
    mapping: Path
    shopline: Requests
    stokly: Requests

    def audit(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(["audit", "--mapping", str(self.mapping), *argv])
        out, err = capsys.readouterr()
        return status, out, err


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("audit")
    with pytest.MonkeyPatch.context() as env:
        for name, value in demo_credentials().items():
            env.setenv(name, value)
        env.setenv("STOKLINE_DATABASE_URL", f"sqlite:///{tmp / 'state.db'}")
        env.chdir(tmp)
        shopline_app, stokly_app = demo_apps(120)  # the near-match SKUs need 100 or more
        shopline, stokly = Requests(shopline_app), Requests(stokly_app)
        try:
            with ServerThread(shopline) as shop, ServerThread(stokly) as stok:
                mapping = point_mapping_at(DEMO_MAPPING, tmp / "demo.yaml", shop.url, stok.url)
                yield Demo(mapping, shopline, stokly)
        finally:
            shopline_app.state.shopline.close()
            stokly_app.state.sandbox.close()


def test_the_audit_writes_nothing_to_either_system(
    demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = demo.audit(capsys)
    assert status == 0, err
    assert demo.shopline.seen and demo.stokly.seen  # both were read …
    assert demo.shopline.writes() == [] and demo.stokly.writes() == []  # … and nothing written
    assert "# Integration audit: demo-outdoor" in out


def test_every_format_is_written_and_says_the_same(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = demo.audit(capsys, "--days", "30", "-o", str(tmp_path), *(
        f"--format={f}" for f in ("md", "html", "json", "csv")))  # fmt: skip
    assert status == 0, err
    report = json.loads((tmp_path / "audit-demo-outdoor.json").read_text())
    findings = report["findings"]
    assert findings, "the demo's data has gaps to find"
    weights = [f["weight"] for f in findings]
    assert weights == sorted(weights, reverse=True)  # ranked, most costly first
    markdown = (tmp_path / "audit-demo-outdoor.md").read_text()
    html = (tmp_path / "audit-demo-outdoor.html").read_text()
    summary = (tmp_path / "audit-demo-outdoor-findings.csv").read_text().splitlines()
    assert len(summary) == len(findings) + 1
    for finding in findings:
        assert f"{finding['title']}: {finding['count']}" in markdown
        assert finding["count"] > 0 and finding["team"]
        if finding["rows"]:
            assert (tmp_path / f"audit-demo-outdoor-{finding['key']}.csv").exists()
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert report["requests"]["SHOPLINE"] > 0 and report["requests"]["Stokly"] > 0
    print(json.dumps({f["key"]: f["count"] for f in findings}, indent=1))


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--days", "0"), "from 1 to 365"),
        (("--days", "week"), "a whole number"),
        (("--format", "csv"), "need -o DIR"),
        (("--format", "pdf"), "invalid choice"),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_request(
    demo: Demo, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    before = len(demo.shopline.seen) + len(demo.stokly.seen)
    try:
        status, _, err = demo.audit(capsys, *argv)
    except SystemExit as exc:  # argparse's own refusals
        status, err = int(exc.code or 0), capsys.readouterr().err
    assert status == 2
    assert says in err
    assert len(demo.shopline.seen) + len(demo.stokly.seen) == before


def _entries(data: dict[str, Any]) -> dict[str, list[Any]]:
    """The lists the draft writes again, by name."""
    return {
        "locations": data.get("locations") or [],
        "overrides": (data.get("skus") or {}).get("overrides") or [],
        "methods": (data.get("shipping") or {}).get("methods") or [],
        "rules": (data.get("tax") or {}).get("rules") or [],
        "gateways": (data.get("payments") or {}).get("gateways") or [],
    }


def _has_todo(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_todo(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_todo(v) for v in value)
    return isinstance(value, str) and value.startswith("TODO:")


def test_the_draft_differs_from_the_mapping_only_by_decisions(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    draft = tmp_path / "draft.yaml"
    status, _, err = demo.audit(capsys, "--draft", str(draft), "-o", str(tmp_path), "--format=json")
    assert status == 0, err
    report = json.loads((tmp_path / "audit-demo-outdoor.json").read_text())
    problems = check_file(draft).problems
    assert problems, "the demo has gaps: the draft leaves decisions"
    assert all(p.message.startswith("a decision is left to make") for p in problems), problems
    assert f"{len(problems)} decision(s) left to make" in err

    mine = yaml.safe_load(demo.mapping.read_text())
    drafted = yaml.safe_load(draft.read_text())
    assert set(drafted) == set(mine)
    for key in mine:  # the sections an audit cannot see into are the mapping's, as written
        if key not in ("locations", "skus", "shipping", "tax", "payments"):
            assert drafted[key] == mine[key], key
    for key in ("skus", "shipping", "tax", "payments"):  # and so are their settings
        settings = {k: v for k, v in mine[key].items() if not isinstance(v, list)}
        assert {k: drafted[key][k] for k in settings} == settings, key
    near = {
        (row["shopline_sku"], row["stokly_sku"])
        for f in report["findings"]
        if f["key"] == "catalogue.near_match"
        for row in f["rows"]
    }
    for name, entries in _entries(drafted).items():
        kept = _entries(mine)[name]
        assert [e for e in entries if e in kept] == kept, name  # nothing of the mapping lost
        for extra in (e for e in entries if e not in kept):
            suggested = name == "overrides" and (extra["shopline_sku"], extra["stokly_sku"]) in near
            same_name = name == "locations" and extra["stokly_locations"] == [extra["name"]]
            assert _has_todo(extra) or suggested or same_name, (name, extra)

    # Drafting again does not replace the file unless asked.
    status, _, err = demo.audit(capsys, "--draft", str(draft))
    assert status == 2 and "--force" in err


def test_the_demo_shows_every_section_with_the_gaps_its_seed_holds(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What the sandboxes' seed puts in for the audit (src/stokline/sandbox/*/seed.py), found."""
    from stokline.audit.findings import SECTIONS
    from stokline.sandbox.shopline.seed import (
        DRIFTED_LEVELS,
        OLD_ORDERS_SHIPPING,
        UNMAPPED_GATEWAY,
    )

    status, _, err = demo.audit(capsys, "-o", str(tmp_path), "--format=json")
    assert status == 0, err
    report = json.loads((tmp_path / "audit-demo-outdoor.json").read_text())
    found = {f["key"]: f for f in report["findings"]}
    assert {f["section"] for f in report["findings"]} == set(SECTIONS)

    near = {(r["shopline_sku"], r["stokly_sku"]) for r in found["catalogue.near_match"]["rows"]}
    assert near == {
        ("ACME_TARP_3X3_OLIVE", "ACME-TARP-3X3-OLIVE"),
        ("ACME-FLASK-7", "ACME-FLASK-07"),
    }
    assert "ACME-HAMMOCK-XL-RED" in found["catalogue.unmatched_variant"]["examples"]
    shipping = {r["value"]: r for r in found["coverage.shipping"]["rows"]}
    assert shipping[OLD_ORDERS_SHIPPING]["orders"] == 3
    assert "RM48" in shipping[OLD_ORDERS_SHIPPING]["today"]  # the demo's default method
    assert [r["value"] for r in found["coverage.gateway"]["rows"]] == [UNMAPPED_GATEWAY]
    assert found["coverage.gateway"]["team"] == "finance"
    assert UNMAPPED_GATEWAY in found["finance.days_not_reconciling"]["examples"][0]
    assert found["customers.phone_matches_email_customer"]["count"] == 1
    assert found["customers.ambiguous_phone"]["count"] == 1
    over = {(r["shopline_sku"], r["location"]): r for r in found["stock.oversell_risk"]["rows"]}
    under = {(r["shopline_sku"], r["location"]): r for r in found["stock.under_offered"]["rows"]}
    for (sku, location), shown in DRIFTED_LEVELS.items():
        row = over.get((sku, location)) or under[(sku, location)]
        assert row["shopline_available"] == shown
    assert ("STOVE-MINI", "7002") in over and ("acme-bottle-1l", "7002") in under
    assert found["orders.not_in_stokly"]["count"] > 0
    # Customers' emails and phones never appear whole in a report.
    text = json.dumps(report)
    assert "morgan.hale@example.com" not in text and "7700900123" not in text


def test_the_audit_counts_the_orders_import_from_keeps_out(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    go_live = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    text = demo.mapping.read_text().replace(
        "    lookback: 2h\n", f"    lookback: 2h\n    import_from: {go_live.isoformat()}\n", 1
    )
    mapping = tmp_path / "golive.yaml"
    mapping.write_text(text)
    capsys.readouterr()
    status = main(["audit", "--mapping", str(mapping), "-o", str(tmp_path), "--format=json"])
    err = capsys.readouterr().err
    assert status == 0, err
    report = json.loads((tmp_path / "audit-demo-outdoor.json").read_text())
    found = {f["key"]: f for f in report["findings"]}
    kept_out = found["orders.before_go_live"]
    placed = [datetime.fromisoformat(r["placed"]) for r in kept_out["rows"]]
    assert kept_out["count"] == len(placed) > 0  # the seed's orders of 4 to 8 days ago at least
    assert all(p < go_live for p in placed)
    missing = {r["order"] for r in found.get("orders.not_in_stokly", {"rows": []})["rows"]}
    assert not missing & {r["order"] for r in kept_out["rows"]}  # not counted as missing too

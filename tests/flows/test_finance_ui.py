"""The finance flow as a finance user meets it in the Prefect UI, without a server: the deployment's
"Custom run" form, the run names, and the words above the approval form and on the summary."""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema, parameter_schema_from_entrypoint
from prefect.utilities.schema_tools.validation import validate

from stokline.config import load_mapping
from stokline.ops.deployments import client_deployments, load_project
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.translate import GroupKey, JournalDraft, JournalLine

from .sandboxes import DEMO_MAPPING, ROOT

ENTRYPOINT = f"{ROOT / 'flows' / 'finance.py'}:finance_flow"
PARAMETERS = ("mapping", "start", "end", "dry_run", "trigger")


@pytest.fixture(scope="module")
def finance_module() -> Any:
    flow = load_flow_from_entrypoint(ENTRYPOINT)
    return sys.modules[flow.fn.__module__]


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    # The deployment `stokline deploy` derives from the demo mapping.
    specs = client_deployments(load_mapping(DEMO_MAPPING), DEMO_MAPPING, load_project(ROOT))
    (found,) = [s for s in specs if s.name == "finance-demo-outdoor"]
    return {
        "parameters": found.parameters,
        "schedules": [{"parameters": s.parameters} for s in found.schedules],
    }


def _types(schema: Any) -> list[str]:
    """Every ``type`` anywhere in a JSON schema."""
    if isinstance(schema, dict):
        found = [schema["type"]] if isinstance(schema.get("type"), str) else []
        return found + [t for value in schema.values() for t in _types(value)]
    if isinstance(schema, list):
        return [t for value in schema for t in _types(value)]
    return []


# -- the run form (defect 14) -------------------------------------------------------------------


@pytest.mark.parametrize("built_by", ["flow", "entrypoint"])
def test_the_run_form_explains_every_parameter_and_offers_no_none(
    finance_module: Any, built_by: str
) -> None:
    # `prefect deploy` builds the schema from the entrypoint's source; a flow object from itself.
    flow = finance_module.finance_flow
    schema = (
        parameter_schema(flow.fn)
        if built_by == "flow"
        else parameter_schema_from_entrypoint(ENTRYPOINT)
    ).model_dump()
    properties = schema["properties"]
    assert tuple(sorted(properties, key=lambda p: properties[p]["position"])) == PARAMETERS
    for name, prop in properties.items():
        assert prop.get("title") and prop["title"] != name, f"{name} has no title of its own"
        assert len(prop.get("description") or "") > 40, f"{name} has no description"
        assert prop.get("default") is not None, f"{name} defaults to None"
    # A None option shows as 'Property is type "None"' in the form.
    assert "null" not in _types(schema), schema
    # The period: a date, or the default that needs none.
    for name, default in (("start", "yesterday"), ("end", "same day")):
        options = properties[name]["anyOf"]
        assert {"type": "string", "format": "date", "title": "A day"} in options
        assert any(o.get("const") == default for o in options)
        assert properties[name]["default"] == default
    assert "yesterday" in properties["start"]["description"].lower()
    assert "timezone" in properties["start"]["description"]
    # trigger is the last field, and says it is not the person's to set.
    assert properties["trigger"]["position"] == len(PARAMETERS) - 1
    assert properties["trigger"]["default"] == "manual"
    assert "schedule" in properties["trigger"]["description"]
    assert "leave" in properties["trigger"]["title"].lower()


def test_the_deployments_defaults_fill_the_form_without_a_none(
    finance_module: Any, deployment: dict[str, Any]
) -> None:
    schema = finance_module.finance_flow.parameters.model_dump()
    defaults = deployment["parameters"]
    assert None not in defaults.values(), defaults  # a null default selects the "None" option
    assert "trigger" not in defaults  # a person's run is "manual", the flow's default
    # What the server checks before it creates a run (enforce_parameter_schema).
    validate(defaults, schema, raise_on_error=True)
    for schedule in deployment["schedules"]:
        validate({**defaults, **schedule["parameters"]}, schema, raise_on_error=True)
    validate({**defaults, "start": "2025-06-01", "end": "2025-06-30"}, schema, raise_on_error=True)
    # And the flow accepts them, as a worker validates them.
    checked = finance_module.finance_flow.validate_parameters(dict(defaults))
    assert checked["start"] == "yesterday" and checked["end"] == "same day"
    assert finance_module.finance_flow.validate_parameters({"start": "2025-06-01"})["start"] == (
        date(2025, 6, 1)
    )


def test_the_default_period_is_yesterday_in_the_clients_timezone() -> None:
    from stokline.orchestration.finance import form_period

    demo = load_mapping(DEMO_MAPPING)  # Europe/London
    late = datetime(2025, 6, 15, 23, 30, tzinfo=UTC)  # 00:30 on the 16th in London
    yesterday = (date(2025, 6, 15), date(2025, 6, 15))
    assert form_period(demo, "yesterday", "same day", late) == yesterday
    assert form_period(demo, None, None, late) == yesterday  # Python callers, as before
    assert form_period(demo, date(2025, 6, 1), "same day", late) == (date(2025, 6, 1),) * 2
    assert form_period(demo, "2025-06-01", "2025-06-03", late) == (
        date(2025, 6, 1),
        date(2025, 6, 3),
    )
    assert form_period(demo, None, date(2025, 6, 2), late) == (date(2025, 6, 2),) * 2
    assert form_period(demo, "yesterday", date(2025, 6, 16), late) == (
        date(2025, 6, 15),
        date(2025, 6, 16),
    )


# -- run names (defect 13) ----------------------------------------------------------------------


def test_each_run_of_a_period_has_its_own_name(
    finance_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def name(**parameters: Any) -> str:
        monkeypatch.setattr(finance_module, "flow_run", SimpleNamespace(parameters=parameters))
        return finance_module.run_name()

    mapping = str(DEMO_MAPPING)
    nightly = name(mapping=mapping, start="2025-06-15", trigger="schedule")
    by_hand = name(mapping=mapping, start="2025-06-15", trigger="manual")
    assert nightly != by_hand
    assert re.fullmatch(r"finance-demo-outdoor-2025-06-15-schedule-\d{4}", nightly), nightly
    assert re.fullmatch(r"finance-demo-outdoor-2025-06-15-manual-\d{4}", by_hand), by_hand
    preview = name(mapping=mapping, start="2025-06-15", end="2025-06-17", dry_run=True)
    assert re.fullmatch(
        r"finance-demo-outdoor-2025-06-15-to-2025-06-17-manual-\d{4}-dry-run", preview
    )


def test_a_run_name_says_the_trigger_and_the_clients_time() -> None:
    from stokline.orchestration.finance import finance_run_name

    demo = str(DEMO_MAPPING)
    summer = datetime(2025, 6, 16, 1, 0, tzinfo=UTC)  # 02:00 in London
    assert (
        finance_run_name({"mapping": demo, "start": "yesterday", "trigger": "schedule"}, summer)
        == "finance-demo-outdoor-2025-06-15-schedule-0200"
    )
    later = datetime(2025, 6, 16, 8, 12, tzinfo=UTC)
    assert (
        finance_run_name({"mapping": demo, "start": "yesterday", "end": "same day"}, later)
        == "finance-demo-outdoor-2025-06-15-manual-0912"
    )
    assert (
        finance_run_name({"mapping": demo, "start": date(2025, 6, 1), "dry_run": True}, later)
        == "finance-demo-outdoor-2025-06-01-manual-0912-dry-run"
    )
    # A period that cannot be posted, or a mapping that cannot be read, still names the run
    # with what was given; the run then fails saying why.
    assert (
        finance_run_name({"mapping": demo, "start": "2999-01-01"}, later)
        == "finance-demo-outdoor-2999-01-01-manual-0912"
    )
    assert (
        finance_run_name({"mapping": "mappings/missing.yaml", "start": "2025-06-01"}, later)
        == "finance-missing-2025-06-01-manual-0812"
    )


# -- the approval text and the summary (defects 11 and 12) --------------------------------------

D = Decimal("5.00")


def _preview(unimported: int = 0, policy: str = "hold") -> LedgerReport:
    journal = JournalDraft(
        "demo-outdoor",
        GroupKey(date(2025, 4, 3), "paypal", "GBP"),
        "demo-outdoor:2025-04-03:paypal:GBP",
        (JournalLine("1220", "receipts paypal", debit=D), JournalLine("4000", "sales", credit=D)),
    )
    rows = [
        {
            "order": f"#{1001 + i}",
            "shopline_id": str(9000 + i),
            "gateway": "paypal",
            "day": "2025-04-03",
            "amount": "199.60" if i < unimported - 1 else "199.64",
        }
        for i in range(unimported)
    ]
    return LedgerReport(
        client="demo-outdoor",
        trigger="manual",
        dry_run=True,
        start=date(2025, 4, 3),
        end=date(2025, 4, 3),
        journals=[journal],
        batches=[{"batch": journal.batch_key, "outcome": "would post"}],
        unimported=rows,
        unimported_total=sum((Decimal(r["amount"]) for r in rows), Decimal(0)),
        unimported_policy=policy,
    )


def test_the_approval_text_says_what_money_is_held_back(finance_module: Any) -> None:
    preview = _preview(unimported=15)
    assert preview.unimported_total == Decimal("2994.04")
    text = finance_module.approval_request(preview)
    assert (
        "£2,994.04 of payments on 15 orders are not in Stokly yet: held for a later run, when "
        "their order is in Stokly (policy: hold)"
    ) in text
    assert "#1001, #1002" in text and "#1015" in text
    listed = finance_module.approval_request(_preview(unimported=25))
    assert "#1020 and 5 more" in listed and "#1021" not in listed
    suspense = finance_module.approval_request(_preview(unimported=1, policy="suspense:9990"))
    assert "on 1 order are not in Stokly yet: posted to the suspense account 9990" in suspense
    assert "(policy: suspense:9990)" in suspense
    assert "not in Stokly" not in finance_module.approval_request(_preview())


def test_the_approval_form_says_what_off_does(finance_module: Any) -> None:
    fields = finance_module.JournalApproval.model_json_schema()["properties"]
    assert "post nothing" in fields["approve"]["description"]
    assert "Cancelled" in fields["approve"]["description"]


def test_the_summary_says_the_runs_stage_and_the_money_held_back() -> None:
    from stokline.orchestration import finance as glue

    preview = _preview(unimported=2)

    def mode(stage: Any) -> str:
        rows = glue.summary_rows(preview, stage, currency="GBP")
        (value,) = [r["value"] for r in rows if r["metric"] == "mode"]
        return value

    assert mode(glue.AWAITING) == "awaiting approval (nothing posted yet)"
    assert mode(glue.NOT_APPROVED) == "not approved (nothing posted)"
    assert mode(glue.DRY_RUN) == "dry run (nothing written)"
    assert "dry run" not in glue.AWAITING.run and "dry run" not in glue.NOT_APPROVED.run
    rows = glue.summary_rows(preview, glue.AWAITING, currency="GBP", calls=3)
    assert rows[0] == {"metric": "SHOPLINE requests (one read for the whole run)", "value": 3}
    (held,) = [r["value"] for r in rows if r["metric"] == "payments of orders not in Stokly yet"]
    assert held.startswith("£399.24 of payments on 2 orders are not in Stokly yet")
    assert glue.batch_rows(preview, glue.AWAITING)[0]["outcome"] == "awaits approval"
    assert glue.batch_rows(preview, glue.NOT_APPROVED)[0]["outcome"] == "not approved"
    assert glue.batch_rows(preview, glue.DRY_RUN)[0]["outcome"] == "would post"


def test_the_approval_text_names_the_orders_set_aside(finance_module: Any) -> None:
    preview = _preview()
    assert "set aside" not in finance_module.approval_request(preview)
    preview.set_aside = [
        {
            "order": "#1313",
            "shopline_id": "9313",
            "gateway": "paypal",
            "day": "2025-04-03",
            "amount": "123.95",
            "code": "ledger_imbalance",
        }
    ]
    text = finance_module.approval_request(preview)
    assert (
        "**Set aside:** £123.95 on 1 order is not in these journals until finance resolves its"
        " exception (ledger_imbalance). Orders: #1313."
    ) in text

"""The real finance flow under a Prefect test server, against both sandboxes.

One module-scoped server (starting one costs ~11 s): a dry run that publishes the journals and
writes nothing, then the demo mapping's approval — the run pauses with its journals published
(saying they await approval, not that it is a dry run), is refused (nothing posted, the run ends
Cancelled, not Completed), and a second run is approved through the same form the UI shows and
posts exactly the journals it published. The approval decision itself is unit-tested too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.flow_runs import aresume_flow_run
from prefect.flows import load_flow_from_entrypoint
from prefect.input.run_input import keyset_from_paused_state
from pydantic import SecretStr

from stokline.config import load_mapping
from stokline.connectors.stokly.auth import grant_signature
from stokline.store import Store
from stokline.sync.clients import open_clients
from stokline.sync.finance.ledger.report import LedgerReport
from stokline.sync.finance.ledger.translate import GroupKey, JournalDraft, JournalLine
from stokline.sync.orders.sync import sync_orders

from .sandboxes import ROOT, Sandboxes, demo_credentials, sandboxes_under_prefect

pytestmark = pytest.mark.slow

ENTRYPOINT = f"{ROOT / 'flows' / 'finance.py'}:finance_flow"
D = Decimal("5.00")


@pytest.fixture(scope="module")
def finance_module() -> Any:
    """flows/finance.py loaded by its entrypoint, as a worker loads it."""
    flow = load_flow_from_entrypoint(ENTRYPOINT)
    return sys.modules[flow.fn.__module__]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandboxes, Path]]:
    """Sandboxes, the demo secrets and a private state store, under a Prefect test server."""
    work = tmp_path_factory.mktemp("finance-flow")
    with sandboxes_under_prefect(work) as sandboxes:
        yield sandboxes, work


def sell(
    sandboxes: Sandboxes, day: date, gateway: str, price: str, *, imported: bool = True
) -> str:
    """A paid order of ``day`` on SHOPLINE, and in Stokly too unless ``imported`` is False (money
    of an order not in Stokly is held out of the journals). Returns the order's SHOPLINE name."""
    body = {
        "lines": [{"sku": "TENT-2P-GRN", "quantity": 1, "price": price}],
        "customer": {"email": "finance-flow@example.com"},
        "gateway": gateway,
        "created_at": f"{day.isoformat()}T10:00:00+00:00",
    }
    placed = httpx.post(f"{sandboxes.shopline.url}/_sandbox/orders", json=body, timeout=10)
    placed.raise_for_status()
    order = placed.json()["order"]
    if imported:
        import_order(sandboxes, order)
    return str(order["name"])


def import_order(sandboxes: Sandboxes, order: dict[str, Any]) -> None:
    """The order into Stokly through the orders sync, delivered as a webhook (the sweep does not
    look back to a day this old)."""
    mapping = load_mapping(sandboxes.mapping)
    with Store() as store:
        body = json.dumps(order).encode()
        store.inbox.add("demo-outdoor", f"wh-{order['id']}", "orders/paid", body)

        async def run() -> None:
            async with open_clients(mapping) as (shopline, stokly):
                await sync_orders(mapping, shopline=shopline, stokly=stokly, store=store)

        asyncio.run(run())
        assert store.links.get("demo-outdoor", "order", str(order["id"])) is not None


def stokly_journals(sandboxes: Sandboxes) -> dict[str, dict[str, Any]]:
    response = httpx.post(
        f"{sandboxes.stokly.url}/v1/grant",
        json={
            "accountkey": "demo-outdoor",
            "clientId": demo_credentials()["STOKLY_CLIENT_ID"],
            "signature": _signature(),
        },
        timeout=10,
    )
    token = response.json()["data"]["authenticationResult"]["accessToken"]
    listed = httpx.get(
        f"{sandboxes.stokly.url}/v0/journals",
        headers={"Authorization": f"Bearer {token}"},
        params={"size": 1000},
        timeout=10,
    )
    return {j["reference"]: j for j in listed.json()["data"]}


def _signature() -> str:
    creds = demo_credentials()
    return grant_signature(creds["STOKLY_CLIENT_ID"], SecretStr(creds["STOKLY_CLIENT_SECRET"]))


async def artifacts_of(run_id: Any) -> dict[str, Any]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    # A key published twice in a run (awaiting approval, then posted): the latest counts.
    return {a.key: a for a in sorted(found, key=lambda a: a.created)}


def figures(artifact: Any) -> dict[str, Any]:
    """A summary table artifact's rows as metric → value (the API keeps a table as JSON text)."""
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return {row["metric"]: row["value"] for row in rows}


async def read_run(run_id: Any) -> Any:
    """A flow run as the server holds it (its name and state, as the UI shows them)."""
    async with get_client() as client:
        return await client.read_flow_run(run_id)


async def task_names(run_id: Any) -> list[str]:
    """The task runs of a flow run, by task name (``read-shopline-money``, ...)."""
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return sorted(run.name.rsplit("-", 1)[0] for run in runs)


class Paused:
    """A run paused for approval, as the UI showed it: the run, its artifacts, the form's text."""

    def __init__(self, run: Any, artifacts: dict[str, Any], description: str) -> None:
        self.run, self.id, self.name = run, run.id, run.name
        self.artifacts, self.description = artifacts, description


async def run_with_answer(flow: Any, answer: dict[str, Any] | None, **parameters: Any) -> Any:
    """Run the flow; when it pauses, answer its form as a finance user would in the UI."""
    running = asyncio.create_task(flow(return_state=True, **parameters))
    paused = None
    async with get_client() as client:
        for _ in range(600):
            if running.done():
                break
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            if runs:
                paused = runs[0]
                break
            await asyncio.sleep(0.2)
        if paused is not None:
            # What the UI shows above the form (saved just after the run paused).
            keys = keyset_from_paused_state(paused.state)
            description = ""
            for _ in range(50):
                with contextlib.suppress(ObjectNotFound, PrefectHTTPStatusError):
                    description = await client.read_flow_run_input(paused.id, keys["description"])
                    break
                await asyncio.sleep(0.2)
            assert "journal(s)" in description and "finance-journals" in description
            shown = await artifacts_of(paused.id)  # what finance reads before answering
            await aresume_flow_run(paused.id, run_input=answer)
            paused = Paused(paused, shown, description)
    return await running, paused


def test_a_dry_run_publishes_the_journals_and_writes_nothing(
    served: tuple[Sandboxes, Path], finance_module: Any
) -> None:
    sandboxes, _ = served
    day = date(2025, 4, 1)
    sell(sandboxes, day, "paypal", "24.00")
    before = sandboxes.stokly_writes()
    state = asyncio.run(
        finance_module.finance_flow(
            mapping=str(sandboxes.mapping), start=day, dry_run=True, return_state=True
        )
    )
    assert state.is_completed(), state.message
    numbers = state.result()
    assert numbers["journals"] == 1 and numbers["posted"] == 0
    assert sandboxes.stokly_writes() == before
    with Store() as store:
        assert not store.batches.list("demo-outdoor")
    run = asyncio.run(read_run(state.state_details.flow_run_id))
    assert re.fullmatch(r"finance-demo-outdoor-2025-04-01-manual-\d{4}-dry-run", run.name)
    artifacts = asyncio.run(artifacts_of(state.state_details.flow_run_id))
    lines = artifacts["finance-journals-demo-outdoor"]
    assert lines.type == "table"
    assert "receipts paypal" in str(lines.data) and "27.95" in str(lines.data)
    page = artifacts["finance-journal-pages-demo-outdoor"]
    assert page.type == "markdown"
    assert "demo-outdoor:2025-04-01:paypal:GBP" in page.data and "dry run" in page.data
    assert "would post" in str(artifacts["finance-batches-demo-outdoor"].data)
    assert {
        "finance-summary-demo-outdoor",
        "finance-reconciliation-demo-outdoor",
        "finance-reconciliation-report-demo-outdoor",
    } <= set(artifacts)
    assert "SHOPLINE requests (one read for the whole run)" in str(
        artifacts["finance-summary-demo-outdoor"].data
    )
    # SHOPLINE is read once, by one task; the steps work on that read.
    names = asyncio.run(task_names(state.state_details.flow_run_id))
    assert names.count("read-shopline-money") == 1, names
    assert {"record-payments", "post-journals", "reconcile-payouts"} <= set(names)


def test_a_run_awaiting_approval_says_so_and_not_that_it_is_a_dry_run(
    served: tuple[Sandboxes, Path], finance_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxes, _ = served
    monkeypatch.setattr(finance_module, "APPROVAL_POLL_SECONDS", 1)
    day = date(2025, 4, 4)
    sell(sandboxes, day, "paypal", "12.00")
    held = sell(sandboxes, day, "klarna", "20.00", imported=False)  # 20.00 + 3.95 delivery
    _, paused = asyncio.run(
        run_with_answer(
            finance_module.finance_flow,
            {"approve": False, "note": ""},
            mapping=str(sandboxes.mapping),
            start=day,
        )
    )
    assert paused is not None, "the run did not pause for approval"
    # What finance reads while the run waits: nothing is posted yet, and it is no dry run.
    waiting = paused.artifacts
    summary = waiting["finance-summary-demo-outdoor"]
    assert figures(summary)["mode"] == "awaiting approval (nothing posted yet)"
    assert "awaiting approval" in str(summary.description)
    exceptions = waiting["finance-exceptions-demo-outdoor"]
    words = str(exceptions.data) + str(exceptions.description)
    assert "dry run" not in words and "awaiting approval (nothing posted yet)" in words
    assert "awaiting approval" in waiting["finance-journal-pages-demo-outdoor"].data
    assert "awaits approval" in str(waiting["finance-batches-demo-outdoor"].data)
    assert "would post" not in str(waiting["finance-batches-demo-outdoor"].data)
    # The money of an order not in Stokly yet is named above the form and on the summary.
    sentence = "£23.95 of payments on 1 order are not in Stokly yet: held for a later run"
    assert sentence in paused.description and held in paused.description
    assert figures(summary)["payments of orders not in Stokly yet"].startswith(sentence)


def test_a_refusal_posts_nothing_and_ends_the_run_cancelled_an_approval_posts(
    served: tuple[Sandboxes, Path], finance_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandboxes, _ = served
    monkeypatch.setattr(finance_module, "APPROVAL_POLL_SECONDS", 1)
    flow = finance_module.finance_flow
    day = date(2025, 4, 2)
    sell(sandboxes, day, "klarna", "10.00")
    key = "demo-outdoor:2025-04-02:klarna:GBP"

    state, paused = asyncio.run(
        run_with_answer(
            flow, {"approve": False, "note": "wrong day"}, mapping=str(sandboxes.mapping), start=day
        )
    )
    assert paused is not None, "the run did not pause for approval"
    # Refused: nothing posted, and the run ends Cancelled (grey), not Completed (green).
    assert state.is_cancelled(), (state.type, state.message)
    assert state.message == "journals not approved: nothing posted (wrong day)"
    assert asyncio.run(read_run(paused.id)).state.type == StateType.CANCELLED
    assert key not in stokly_journals(sandboxes)
    artifacts = asyncio.run(artifacts_of(paused.id))
    summary = figures(artifacts["finance-summary-demo-outdoor"])
    assert summary["mode"] == "not approved (nothing posted)"
    assert "not approved" in str(artifacts["finance-batches-demo-outdoor"].data)
    assert (
        "Journals not approved: nothing posted" in artifacts["finance-approval-demo-outdoor"].data
    )
    # Each run of the period has its own name: its trigger and the time it started.
    refused_name = paused.name
    assert re.fullmatch(r"finance-demo-outdoor-2025-04-02-manual-\d{4}", refused_name)

    state, paused = asyncio.run(
        run_with_answer(
            flow,
            {"approve": True, "note": "checked by finance"},
            mapping=str(sandboxes.mapping),
            start=day,
        )
    )
    assert paused is not None and state.is_completed(), state.message
    assert re.fullmatch(r"finance-demo-outdoor-2025-04-02-manual-\d{4}", paused.name)
    numbers = state.result()
    assert numbers["posted"] == 1
    # The preview and the post are built from the same one read.
    names = asyncio.run(task_names(paused.id))
    assert names.count("read-shopline-money") == 1 and names.count("post-journals") == 2, names
    journal = stokly_journals(sandboxes)[key]
    assert journal["date"] == "2025-04-02"
    artifacts = asyncio.run(artifacts_of(paused.id))
    assert "posted" in str(artifacts["finance-batches-demo-outdoor"].data)
    assert "Approved" in artifacts["finance-approval-demo-outdoor"].data
    with Store() as store:
        (entry,) = [e for e in store.audit.list("demo-outdoor") if e.business_key == key]
    assert (
        entry.details["approved"] is True and entry.details["approval_note"] == "checked by finance"
    )


# -- the approval decision, without a server ----------------------------------------------------


def _report(dry_run: bool, journals: int) -> LedgerReport:
    drafts = [
        JournalDraft(
            "demo-outdoor",
            GroupKey(date(2025, 4, 3), "paypal", "GBP"),
            f"demo-outdoor:2025-04-03:paypal:GBP{':adj' + str(i) if i else ''}",
            (
                JournalLine("1220", "receipts paypal", debit=D),
                JournalLine("4000", "sales", credit=D),
            ),
        )
        for i in range(journals)
    ]
    return LedgerReport(client="demo-outdoor", trigger="manual", dry_run=dry_run, journals=drafts)


def test_the_approval_decision(finance_module: Any) -> None:
    demo = load_mapping(ROOT / "mappings" / "demo.yaml")
    assert demo.syncs.finance is not None and demo.syncs.finance.approval == "required"
    needs, approved = finance_module.needs_approval, finance_module.approved_hashes
    preview = _report(True, 2)
    assert needs(demo, False, preview)
    assert not needs(demo, True, preview)  # a dry run writes nothing: nothing to approve
    assert not needs(demo, False, _report(True, 0))  # nothing to post: no pause
    no_approval = demo.model_copy(
        update={
            "syncs": demo.syncs.model_copy(
                update={"finance": demo.syncs.finance.model_copy(update={"approval": "none"})}
            )
        }
    )
    assert not needs(no_approval, False, preview)
    form = finance_module.JournalApproval
    assert approved(form(approve=True, note="ok"), preview) == preview.approval()
    assert len(preview.approval()) == 2
    assert approved(form(approve=False, note="no"), preview) is None
    assert approved(None, preview) is None
    assert form().approve is False  # the form's default posts nothing
    text = finance_module.approval_request(preview)
    assert "2 journal(s)" in text and "demo-outdoor:2025-04-03:paypal:GBP" in text

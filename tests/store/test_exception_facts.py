"""The key fact of each exception, read from what the syncs store: their payloads and sentences.

Where a sentence comes from a pure function (the mapping's rules, the SKU matcher, the customer
decision, the fulfilment translation, the templates), the test takes it from that function, so a
change of wording there fails here rather than leaving `stokline exceptions list` blank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stokline.config import Mapping, load_mapping
from stokline.config.templates import Template, TemplateError
from stokline.mapping.translate import (
    SkuMatcher,
    Untranslatable,
    resolve_gateway,
    resolve_location,
    resolve_shipping,
    resolve_tax_class,
)
from stokline.store import Store
from stokline.store.exceptions import KEY_FACTS, REASONS, ExceptionRecord
from stokline.sync.fulfilment.translate import shipped_quantities, translate_shipment
from stokline.sync.orders.identity import Identity, decide_customer
from stokline.sync.orders.translate import OrderUntranslatable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(f"sqlite:///{tmp_path / 'state.db'}") as s:
        yield s


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    """demo.yaml, with unmapped shipping lines raised instead of sent as the default."""
    text = (ROOT / "mappings/demo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace("on_unmapped: default", "on_unmapped: exception"))
    return load_mapping(path)


def raised(
    store: Store,
    exc: Untranslatable,
    payload: Any = None,
    kind: str = "order",
    entity: str = "21050224312121887324667162",
) -> ExceptionRecord:
    return store.exceptions.raise_(
        "demo-outdoor", exc.code, kind, entity, exc.message, team="ecommerce", payload=payload
    )


def failure(call: Any, *args: Any) -> Untranslatable:
    with pytest.raises(Untranslatable) as caught:
        call(*args)
    return caught.value


def test_every_reason_code_has_a_key_fact() -> None:
    assert set(KEY_FACTS) == set(REASONS)


def test_skus_from_the_matcher(store: Store, mapping: Mapping) -> None:
    matcher = SkuMatcher(mapping, ["ACME-TENT-2P-ORANGE", "ABC-1", "abc-1"])
    cases = {
        "NOPE-1": "NOPE-1",
        "TENT-2P-GRN": "TENT-2P-GRN",  # overridden to a SKU Stokly does not have
        "Abc-1": "Abc-1",  # two Stokly items under case-insensitive matching
        "": "no SKU",
    }
    for sku, fact in cases.items():
        exc = failure(matcher.match, sku)
        record = raised(store, exc, {"order": "#1001"}, entity=f"order-{sku}")
        assert (record.key_fact, record.order) == (fact, "#1001"), exc.message


def test_an_order_with_several_problems_names_the_skus_of_its_code(
    store: Store, mapping: Mapping
) -> None:
    matcher = SkuMatcher(mapping, [])
    exc = OrderUntranslatable(
        [
            failure(matcher.match, "NOPE-1"),
            failure(resolve_shipping, mapping, "Carrier Pigeon"),
            failure(matcher.match, "NOPE-2"),
        ]
    )
    # As the orders sync stores it: the order's name and every problem.
    problems = [{"code": p.code, "message": p.message} for p in exc.problems]
    record = raised(store, exc, {"order": "#1001", "problems": problems})
    assert record.code == "unmapped_sku" and record.key_fact == "NOPE-1, NOPE-2"
    # Without the list (an older row), the message still gives them.
    bare = raised(store, exc, {"order": "#1001"}, entity="2")
    assert bare.key_fact == "NOPE-1, NOPE-2"


def test_the_mapping_rules(store: Store, mapping: Mapping) -> None:
    tax = failure(resolve_tax_class, mapping, "VAT 17.5%", "0.175")
    line_tax = Untranslatable(tax.code, f"line ACME-TENT-2P-ORANGE: {tax.message}")
    cases = [
        (failure(resolve_shipping, mapping, "Carrier Pigeon", "pigeon"), "Carrier Pigeon"),
        (tax, "VAT 17.5% @ 0.175"),
        (line_tax, "VAT 17.5% @ 0.175"),
        (failure(resolve_gateway, mapping, "cash_on_delivery"), "cash_on_delivery"),
        (failure(resolve_gateway, mapping, None), "(none)"),
        (failure(resolve_location, mapping, "7009"), "7009"),
    ]
    for n, (exc, fact) in enumerate(cases):
        assert raised(store, exc, entity=str(n)).key_fact == fact, exc.message


def test_a_customer_conflict_names_the_customers(store: Store, mapping: Mapping) -> None:
    rules = mapping.customers.model_copy(update={"on_conflict": "exception"})
    strict = mapping.model_copy(update={"customers": rules})
    exc = failure(
        decide_customer,
        strict,
        Identity("ada@example.com", "+447700900123"),
        {"email": ["C-1"], "phone": ["C-2"]},
    )
    assert raised(store, exc).key_fact == "email → C-1; phone → C-2"


def test_shipments_whose_skus_match_no_line(store: Store, mapping: Mapping) -> None:
    order = {
        "id": "1",
        "name": "#1001",
        "line_items": [{"id": "417", "sku": "ACME-TENT-2P-ORANGE"}],
    }
    shipment = {"shipmentId": "S1", "items": [{"lineId": "L1", "itemSku": "NOPE-1", "quantity": 2}]}
    exc = failure(translate_shipment, mapping, shipment, order)
    assert raised(store, exc, {"order": "#1001"}, "shipment", "S1").key_fact == "NOPE-1 x2"
    blank = {"shipmentId": "S2", "items": [{"lineId": "L9", "itemSku": " ", "quantity": 1}]}
    exc = failure(shipped_quantities, blank)
    assert raised(store, exc, None, "shipment", "S2").key_fact == "no SKU (line L9)"


def test_a_failed_template_is_named(store: Store) -> None:
    template = Template.compile("SL{{ order.missing.deeper }}")
    with pytest.raises(TemplateError) as caught:
        template.render(order={})
    exc = Untranslatable("template_failed", str(caught.value))
    assert raised(store, exc).key_fact == "'SL{{ order.missing.deeper }}'"


@pytest.mark.parametrize(
    ("code", "kind", "message", "payload", "fact"),
    [
        (  # the stock sync: a level SHOPLINE refused
            "api_rejected",
            "inventory_level",
            "SHOPLINE refused level 5 for ACME-TENT-2P-ORANGE at location 7001: 422 bad",
            {"sku": "ACME-TENT-2P-ORANGE", "location_id": "7001"},
            "ACME-TENT-2P-ORANGE at 7001",
        ),
        (  # the orders sync: a sale order Stokly refused
            "api_rejected",
            "order",
            "Stokly refused the sale order: items[0].referenceId is unknown",
            {"order": "#1001", "status": 422},
            "Stokly: sale order (422)",
        ),
        (  # the fulfilment sync: the order is gone
            "api_rejected",
            "shipment",
            "SHOPLINE has no order 2105 (deleted?) for shipment S1; fulfil it by hand",
            {"order": None},
            "SHOPLINE order 2105 missing",
        ),
        (
            "order_changed",
            "order",
            "#1001 was cancelled in SHOPLINE (customer) after it was imported as Stokly sale"
            " order SO-1; on_cancelled is 'exception'",
            {"order": "#1001"},
            "cancelled (customer)",
        ),
        (
            "order_changed",
            "order",
            "#1001 was edited in SHOPLINE (its lines and its delivery) after it was imported as"
            " Stokly sale order SO-1; on_edited is 'exception'",
            {"order": "#1001"},
            "edited (its lines and its delivery)",
        ),
        (
            "order_changed",
            "shipment",
            "shipment S1 was cancelled in Stokly after it reached SHOPLINE as fulfillment 1001-F1",
            {"order": "#1001"},
            "shipment cancelled in Stokly",
        ),
        (
            "stale_fulfilment",
            "shipment",
            "shipped in Stokly 5.2 h ago (2025-06-01 10:02 UTC) but not fulfilled in SHOPLINE",
            {"order": "#1001", "dispatched_at": "2025-06-01T10:02:33+00:00"},
            "shipped 2025-06-01 10:02",
        ),
        (
            "poison_message",
            "webhook",
            "a signed orders/paid delivery could not be read: not JSON",
            {"topic": "orders/paid", "bytes": 12},
            "webhook orders/paid",
        ),
        (
            "ledger_imbalance",
            "ledger_batch",
            "journal demo-outdoor:2025-06-01:paypal:GBP does not balance: debits 10.00 != credits"
            " 9.99 (difference 0.01)",
            {
                "date": "2025-06-01",
                "gateway": "paypal",
                "currency": "GBP",
                "debits": "10.00",
                "credits": "9.99",
            },
            "2025-06-01 paypal GBP: debits 10.00, credits 9.99",
        ),
        (  # a tax problem of a journal: the tax line, not the journal
            "tax_mismatch",
            "ledger_batch",
            "#1001: line X: tax line VAT 7% at rate 0.07 matches no tax rule within 0.005",
            {"date": "2025-06-01", "gateway": "paypal", "currency": "GBP"},
            "VAT 7% @ 0.07",
        ),
        (  # wording no family knows: nothing rather than a guess
            "unmapped_shipping",
            "order",
            "something nobody wrote yet",
            {"order": "#1001"},
            None,
        ),
    ],
)
def test_what_the_syncs_write_in_their_own_words(
    store: Store, code: str, kind: str, message: str, payload: Any, fact: str | None
) -> None:
    record = raised(store, Untranslatable(code, message), payload, kind)
    assert record.key_fact == fact

"""Templates run sandboxed and strict; secrets resolve late and never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.config import SecretRef, SecretUnavailable, load_mapping
from stokline.config.schedules import check_cron, parse_duration
from stokline.config.templates import Template, TemplateError, check_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "payload",
    [
        "{{ order.__class__ }}",
        "{{ order['__class__'] }}",
        "{{ _private }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_template_injection_is_refused_at_load(payload):
    with pytest.raises(TemplateError):
        check_template(payload, frozenset({"order", "cycler", "_private"}))


def test_sandbox_blocks_internals_at_render_too():
    template = Template.compile("{{ order.mro() }}")
    with pytest.raises(TemplateError):
        template.render(order=dict)


def test_strict_undefined_fails_instead_of_printing_nothing():
    template = Template.compile("{{ order.nmae }}")
    with pytest.raises(TemplateError, match="nmae"):
        template.render(order={"name": "#1"})


def test_templates_are_compiled_once_at_load():
    mapping = load_mapping(ROOT / "mappings/demo.yaml")
    reference = mapping.fields.sale_order.customer_reference
    assert isinstance(reference, Template)
    assert reference.render(order={"name": "#1042"}) == "SL1042"


def test_secret_refs_resolve_only_when_asked(monkeypatch):
    ref = SecretRef(env="STOKLINE_TEST_SECRET")
    monkeypatch.delenv("STOKLINE_TEST_SECRET", raising=False)
    assert ref.is_available() is False
    with pytest.raises(
        SecretUnavailable, match="environment variable STOKLINE_TEST_SECRET is not set"
    ):
        ref.resolve()
    monkeypatch.setenv("STOKLINE_TEST_SECRET", "s3cret-value")
    value = ref.resolve()
    assert value.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(value) and "s3cret-value" not in str(value)


def test_loading_a_mapping_reads_no_secret(monkeypatch):
    for name in (
        "STOKLY_CLIENT_ID",
        "STOKLY_CLIENT_SECRET",
        "SHOPLINE_ACCESS_TOKEN",
        "SHOPLINE_APP_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    mapping = load_mapping(ROOT / "mappings/demo.yaml")
    assert (
        mapping.connections.shopline.access_token.describe()
        == "environment variable SHOPLINE_ACCESS_TOKEN"
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(
    "expr", ["*/5 * * * *", "0 2 * * *", "30 3 * * 1-5", "0 9 1 jan,jul *", "@daily", "0 0 * * sun"]
)
def test_valid_cron(expr):
    check_cron(expr)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute 60"),
        ("0 0 0 * *", "day of month 0"),
        ("0 0 * * 8", "day of week 8"),
        ("*/0 * * * *", "step"),
        ("0 5-2 * * *", "runs backwards"),
        ("0 0 * foo *", "month 'foo' is not a number"),
    ],
)
def test_invalid_cron(expr, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_cron(expr)


def test_models_are_frozen():
    mapping = load_mapping(ROOT / "mappings/demo.yaml")
    with pytest.raises(ValueError):
        mapping.client.name = "other"  # type: ignore[misc]
    assert mapping.tax.rules[0].rate == __import__("decimal").Decimal("0.2")
    assert mapping.operating_model.owner_of("tax_mismatch") == "finance"
    assert mapping.operating_model.owner_of("template_failed") == "operations"

"""Field templates cannot reach Python internals nor exhaust the worker, even past validation.

Mapping files are checked at load (the payloads of tests/corpus/mappings/template-*.yaml are
refused there); these tests compile templates directly, as if a payload had slipped through, and
check that rendering still refuses it — with a `TemplateError`, never another exception, never the
internals — while the templates real mappings use keep working.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.config import check_file
from stokline.config.templates import (
    ALLOWED_FILTERS,
    MAX_OUTPUT,
    TEMPLATE_VARIABLES,
    Template,
    TemplateError,
    check_template,
    environment,
)

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"name": "#1042", "line_items": [{"sku": "TENT-2P-GRN", "quantity": 2}], "qty": 10**9}


@pytest.mark.parametrize(
    "source",
    [
        "{{ order.__class__ }}",
        "{{ order['__class__'] }}",
        "{{ order.line_items|map(attribute='__class__')|list }}",
        "{{ order.line_items|selectattr('__class__')|list }}",
        "{{ order.items() }}",
        "{{ order.name.format(order) }}",
        "{{ order.name.__len__() }}",
        "{{ range(10)|list }}",
        "{{ lipsum() }}",
        "{{ cycler }}",
        "{{ namespace }}",
        "{{ dict(a=1) }}",
        "{% import 'os' as os %}{{ os }}",
        "{% include 'x' %}",
        "{{ order|attr('name') }}",
        "{{ order.name|format('x') }}",
        "{{ order.line_items|batch(1000000000)|list }}",
    ],
)
def test_what_validation_refuses_also_fails_at_render(source: str) -> None:
    with pytest.raises(TemplateError):
        check_template(source, TEMPLATE_VARIABLES["sale_order"])
    try:
        template = Template.compile(source)
    except ValueError:  # an unknown filter is already a compile error
        return
    try:  # refused, or rendered harmlessly (a StrictUndefined in a list prints as Undefined)
        output = template.render(order=ORDER, customer={}, client={})
    except TemplateError as exc:
        output = str(exc)
    assert not any(leak in output for leak in LEAKS), output


LEAKS = ("<class", "<function", "<built-in", "<bound", "<module", "__globals__", "os.system")


@pytest.mark.parametrize(
    "source",
    [
        "{{ order[('_', '_class__')|join] }}",
        "{{ order[order.name ~ '_class__'] }}",
        "{{ order.line_items|map(attribute=('_', '_class__')|join)|first }}",
    ],
)
def test_names_built_at_render_are_refused_by_the_sandbox(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template.compile(source).render(order={**ORDER, "name": "_"})
    assert "unsafe" in str(info.value)
    assert not any(leak in str(info.value) for leak in LEAKS)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ order.name * order.qty }}", "'*' would make more than"),
        ("{{ order.line_items * order.qty }}", "'*' would make more than"),
        ("{{ 9 ** order.qty }}", "exponent"),
        ("{{ order.name|center(order.qty) }}", "the number 1000000000"),
        ("{{ order.name|truncate(order.qty) }}", "the number 1000000000"),
        ("{{ order.name|replace('', order.name * 100000) }}", "more than"),
        ("{{ ('%' ~ order.qty ~ 's') % order.name }}", "pads a %-format"),
        ("{{ '%*s' % (order.qty, order.name) }}", "pads a %-format"),
    ],
)
def test_denial_of_service_through_data_is_stopped_at_render(source: str, fragment: str) -> None:
    template = Template.compile(source)
    with pytest.raises(TemplateError, match="failed") as info:
        template.render(order=ORDER, customer={}, client={})
    assert fragment in str(info.value)


def test_output_is_capped_even_when_each_step_is_small() -> None:
    items = [{"sku": "x" * 9_000} for _ in range(200)]  # 1.8 million characters in all
    template = Template.compile("{% for l in order.line_items %}{{ l.sku }}{% endfor %}")
    with pytest.raises(TemplateError, match="output longer than"):
        template.render(order={"line_items": items})
    assert len(template.render(order={"line_items": items[:100]})) == 900_000 < MAX_OUTPUT


def test_errors_of_the_data_are_template_errors_not_crashes() -> None:
    template = Template.compile("{{ order.name + 1 }}")
    with pytest.raises(TemplateError, match="TypeError"):
        template.render(order={"name": "#1"})


def test_the_environment_has_no_globals_and_only_the_allowed_filters() -> None:
    env = environment()
    assert env.globals == {}
    assert set(env.filters) == set(ALLOWED_FILTERS)
    assert not {"attr", "format", "batch", "slice", "indent", "pprint", "random"} & set(env.filters)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("SL{{ order.name | replace('#', '') }}", "SL1042"),
        ("{{ order.order_source or 'web' }}", "web"),
        (
            "{% for l in order.line_items %}{{ l.sku }}x{{ l.quantity }} {% endfor %}",
            "TENT-2P-GRNx2 ",
        ),
        ("{{ order.line_items|map(attribute='sku')|join(', ') }}", "TENT-2P-GRN"),
        ("{{ order.name|lower|truncate(10) }}", "#1042"),
        ("{{ '%s-%s' % (order.name, 'x') }}", "#1042-x"),
        ("{{ order.name * 2 }}", "#1042#1042"),
        ("{{ 'cod' if 'cash' in order.name else '' }}", ""),
        ("{% set n = order.name %}{{ n|title }}", "#1042"),
    ],
)
def test_what_field_templates_need_still_works(source: str, expected: str) -> None:
    check_template(source, TEMPLATE_VARIABLES["sale_order"])
    assert Template.compile(source).render(order={**ORDER, "order_source": None}) == expected


def test_every_shipped_mapping_still_validates() -> None:
    for path in sorted((ROOT / "mappings").glob("*.yaml")):
        assert check_file(path).problems == [], path

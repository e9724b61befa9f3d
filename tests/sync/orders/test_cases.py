"""Run every mapping case file under mappings/cases/ (input record → expected translation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.sync.orders.cases import CaseFileError, case_files, load_cases, run_case

ROOT = Path(__file__).resolve().parents[3]
CASES = [case for path in case_files(ROOT / "mappings") for case in load_cases(path)]


def test_every_example_mapping_has_cases():
    mappings = {p.stem for p in (ROOT / "mappings").glob("*.yaml")}
    with_cases = {p.name.removesuffix(".cases.yaml") for p in case_files(ROOT / "mappings")}
    assert mappings == with_cases
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_mapping_case(case):
    result = run_case(case)
    assert result.ok, result.explain()


def test_a_wrong_expectation_fails(tmp_path):
    (tmp_path / "m.yaml").write_text((ROOT / "mappings/demo.yaml").read_text())
    (tmp_path / "m.cases.yaml").write_text(
        "mapping: m.yaml\ncases:\n"
        "  - {name: wrong, translate: gateway, input: {gateway: paypal}, expect: {stokly_method: 4}}\n"
    )
    [case] = load_cases(tmp_path / "m.cases.yaml")
    result = run_case(case)
    assert not result.ok
    assert 'expected {"stokly_method": 4}' in result.explain()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("cases: []\n", "a case file has 'mapping:'"),
        ("mapping: m.yaml\ncases:\n  - {name: x}\n", "needs name, translate, input and expect"),
        (
            "mapping: m.yaml\ncases:\n  - {name: x, translate: nope, input: {}, expect: {}}\n",
            "unknown translator 'nope'",
        ),
        ("mapping: m.yaml\ncases: [\n", "cannot read"),
    ],
)
def test_bad_case_files_say_why(tmp_path, body, fragment):
    (tmp_path / "m.yaml").write_text((ROOT / "mappings/demo.yaml").read_text())
    (tmp_path / "m.cases.yaml").write_text(body)
    with pytest.raises(CaseFileError, match=fragment):
        load_cases(tmp_path / "m.cases.yaml")

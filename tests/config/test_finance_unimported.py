"""syncs.finance.unimported: what the ledger does with the money of orders not yet in Stokly.

hold is the default and needs nothing else; suspense needs accounts.suspense, and a mapping that
asks for suspense without naming the account is refused at load, at the finance section's line.
"""

from __future__ import annotations

from pathlib import Path

from stokline.config import check_text

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "mappings" / "demo.yaml").read_text(encoding="utf-8")
ANCHOR = "    approval: required\n"


def test_hold_is_the_default() -> None:
    result = check_text(TEXT, "demo.yaml")
    assert result.mapping is not None, result.problems
    finance = result.mapping.syncs.finance
    assert finance is not None
    assert finance.unimported == "hold" and finance.unimported_policy == "hold"


def test_suspense_names_its_account() -> None:
    text = TEXT.replace(ANCHOR, ANCHOR + "    unimported: suspense\n").replace(
        '      refunds: "4090"\n', '      refunds: "4090"\n      suspense: "1290"\n'
    )
    result = check_text(text, "demo.yaml")
    assert result.mapping is not None, result.problems
    finance = result.mapping.syncs.finance
    assert finance is not None and finance.unimported_policy == "suspense:1290"


def test_suspense_without_an_account_is_refused_where_it_is_asked_for() -> None:
    text = TEXT.replace(ANCHOR, ANCHOR + "    unimported: suspense\n")
    result = check_text(text, "demo.yaml")
    assert result.mapping is None
    (problem,) = result.problems
    assert "suspense" in problem.format()
    assert "demo.yaml:" in problem.format()


def test_an_unknown_policy_is_refused() -> None:
    text = TEXT.replace(ANCHOR, ANCHOR + "    unimported: post\n")
    result = check_text(text, "demo.yaml")
    assert result.mapping is None
    assert "hold" in result.problems[0].format()

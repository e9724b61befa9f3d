"""Broken mappings beyond one problem per file: all problems in one pass, secrets never repeated.

Single broken files, each with the one located problem it must give, are the corpus in
``tests/corpus/mappings/`` (run by ``test_mapping_corpus.py``); ``minimal.yaml`` is the small valid
mapping most of them were made from.
"""

from __future__ import annotations

from pathlib import Path

from stokline.config import check_text

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    assert MINIMAL.count(old) == 1, f"edit target must occur once: {old!r}"
    return MINIMAL.replace(old, new)


def test_minimal_mapping_is_valid():
    result = check_text(MINIMAL, "acme.yaml")
    assert result.problems == []
    assert result.mapping is not None and result.mapping.client.name == "acme"


def test_all_problems_are_collected_in_one_pass():
    text = (
        edited("  currency: GBP", "  currency: pounds")
        .replace("buffer: 2", "buffer: -3")
        .replace("match: case_insensitive", "match: fuzzy")
    )
    result = check_text(text, "acme.yaml")
    assert [p.pointer for p in result.problems] == [
        "/client/currency",
        "/locations/0/stock/buffer",
        "/skus/match",
    ]


def test_a_literal_secret_is_never_repeated_in_the_report():
    result = check_text(
        edited("{env: SHOPLINE_APP_SECRET}", "sk_live_do-not-print-me"), "acme.yaml"
    )
    assert len(result.problems) == 1
    assert "do-not-print-me" not in result.problems[0].format()

"""What a mapping file cannot be read as, said once and plainly.

A file that is not UTF-8 names what it looks like (UTF-16 from a Windows editor) or the byte that
is wrong; an unknown YAML tag is one problem, not two; characters that hide or reorder text are
shown as escapes; a URL with a password in it is refused and the password never repeated.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from stokline.config import check_file, check_text
from stokline.config.schema import hide_url_credentials
from stokline.config.yamlpos import decode_text, visible

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "mappings" / "demo.yaml").read_text(encoding="utf-8")


def only_problem(text: str) -> str:
    result = check_text(text, "m.yaml")
    assert result.mapping is None
    [problem] = result.problems
    return problem.format()


@pytest.mark.parametrize(
    ("encoding", "looks_like"),
    [
        ("utf-16", "UTF-16 (little-endian, with a byte-order mark)"),
        ("utf-16-be", "UTF-16 (no byte-order mark)"),
        ("utf-16-le", "UTF-16 (no byte-order mark)"),
        ("utf-32", "UTF-32 (little-endian, with a byte-order mark)"),
    ],
)
def test_a_file_in_utf16_or_utf32_says_so_and_how_to_fix_it(
    tmp_path: Path, encoding: str, looks_like: str
) -> None:
    path = tmp_path / "m.yaml"
    raw = DEMO.encode(encoding)
    if encoding == "utf-16" and not raw.startswith(codecs.BOM_UTF16_LE):
        pytest.skip("a big-endian machine writes the other byte order")
    path.write_bytes(raw)
    [problem] = check_file(path).problems
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == f"cannot read the file: it is not UTF-8, it looks like {looks_like}"
    assert problem.hint is not None and "save it as UTF-8" in problem.hint
    assert "codec" not in problem.format()


def test_a_latin1_byte_is_pointed_at_by_line_and_column() -> None:
    raw = b"version: 1\nclient:\n  name: caf\xe9\n"
    text, problem = decode_text(raw, "m.yaml")
    assert text is None and problem is not None
    assert (problem.line, problem.column) == (3, 12)
    assert "byte 0xe9 here; saved as Latin-1 or Windows-1252?" in problem.message


def test_utf8_with_or_without_a_byte_order_mark_is_read() -> None:
    assert decode_text("a: é\n".encode(), "m.yaml") == ("a: é\n", None)
    text, problem = decode_text(codecs.BOM_UTF8 + b"a: 1\n", "m.yaml")
    assert problem is None and text is not None and text.lstrip("\ufeff") == "a: 1\n"


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("!env STOKLY_CLIENT_SECRET", "write {env: STOKLY_CLIENT_SECRET} — a mapping, not a tag"),
        ("!secret stokly-secret", "write {secret: stokly-secret} — a mapping, not a tag"),
        ("!vault [a, b]", "remove the tag; a mapping file uses plain YAML values only"),
        ("!!binary aGVsbG8=", None),
    ],
)
def test_a_tagged_value_is_one_problem(written: str, hint: str | None) -> None:
    text = DEMO.replace("client_secret: {env: STOKLY_CLIENT_SECRET}", f"client_secret: {written}")
    assert text != DEMO
    line = only_problem(text)
    assert "/connections/stokly/client_secret: " in line
    if hint is not None:
        assert line.endswith(hint)
        assert "is not supported" in line


def test_hidden_and_reordering_characters_are_shown_as_escapes() -> None:
    assert (
        visible("acme\u202e\u2066x\ufeff\u200b\x07") == "acme\\u202e\\u2066x\\ufeff\\u200b\\u0007"
    )
    assert visible("Café → Zürich 東京") == "Café → Zürich 東京"
    assert visible("\U000e0041") == "\\U000e0041"  # a tag character, invisible
    line = only_problem(DEMO.replace("timezone: Europe/London", "timezone: Europe/Lon\u202edon"))
    assert "unknown timezone 'Europe/Lon\\u202edon'" in line
    assert "\u202e" not in line


@pytest.mark.parametrize(
    "url",
    [
        "https://ops:Pa55-word-xyz@api.stok.ly",
        "https://:Pa55-word-xyz@api.stok.ly/",
        "http://Pa55-word-xyz@127.0.0.1:8802",
    ],
)
def test_a_url_with_credentials_is_refused_without_repeating_them(url: str) -> None:
    text = DEMO.replace("base_url: http://127.0.0.1:8802", f'base_url: "{url}"')
    assert text != DEMO
    line = only_problem(text)
    assert "/connections/stokly/base_url: a URL must not carry a user name or password" in line
    assert "Pa55" not in line


def test_a_url_that_fails_its_pattern_never_shows_its_password() -> None:
    bad = 'base_url: "ftp://ops:Pa55-word-xyz@files.example/x"'
    text = DEMO.replace("base_url: http://127.0.0.1:8802", bad)
    assert text != DEMO
    result = check_text(text, "m.yaml")
    lines = [p.format() for p in result.problems]
    assert any("is not in the expected form" in line for line in lines), lines
    assert all("Pa55" not in line for line in lines)
    assert hide_url_credentials("see https://a:b@c.example and http://x@y") == (
        "see https://***@c.example and http://***@y"
    )


@pytest.mark.parametrize(
    ("currency", "says"),
    [
        ("ABC", "'ABC' is not an ISO 4217 currency code; use a code such as GBP, EUR or USD"),
        ("GPB", "did you mean 'GBP'?"),
        ("EUE", "did you mean 'EUR'?"),
    ],
)
def test_a_currency_must_be_iso_4217(currency: str, says: str) -> None:
    text = DEMO.replace("currency: GBP", f"currency: {currency}", 1)
    assert text != DEMO
    assert only_problem(text).endswith(says)
    for real in ("GBP", "EUR", "USD", "JPY", "CHF", "HKD", "XCG"):
        result = check_text(DEMO.replace("currency: GBP", f"currency: {real}", 1), "m.yaml")
        assert not [p for p in result.problems if "currency" in p.pointer], real

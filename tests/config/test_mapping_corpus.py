"""The corpus of broken mapping files: each gives exactly the one problem its header names.

Every file in ``tests/corpus/mappings/`` is a whole mapping file, broken in one way, that starts
with its expectation (see ``tests/corpus/README.md``)::

    # Problem: what is wrong, in words
    # Expect: LINE:COLUMN: /json/pointer: a fragment of the message (or its hint)
    # Never printed: a value no output may show (a secret pasted into the file)

The files go through `check_file` one by one and through `stokline validate` (text and JSON) all
at once: one problem each, at that line, column and pointer, on one line, never echoing a secret.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stokline.cli import main
from stokline.config import check_file

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "mappings"
FILES = sorted(CORPUS.glob("*.yaml"))
# A file with nothing in it cannot carry its own header.
HEADERLESS = {"empty.yaml": "1:1: /: the file is empty"}

_EXPECT = re.compile(r"^(\d+):(\d+): (/\S*): (.+)$")
_ONE_LINE_PROBLEM = re.compile(r"^.+:\d+:\d+: /\S*: \S.*$")


@dataclass(frozen=True)
class Expectation:
    problem: str
    line: int
    column: int
    pointer: str
    fragment: str
    never: tuple[str, ...] = field(default=())


def _header_text(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    # Files in other encodings still carry an ASCII header.
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


def expectation(path: Path) -> Expectation:
    """The expectation written at the top of ``path``."""
    if path.name in HEADERLESS:
        header = {"Problem": path.stem, "Expect": HEADERLESS[path.name]}
        never: list[str] = []
    else:
        header, never = {}, []
        for line in _header_text(path.read_bytes()).splitlines():
            if not line.startswith("# "):
                break
            key, _, value = line[2:].partition(": ")
            if key == "Never printed":
                never.append(value)
            else:
                header[key] = value
    assert header.get("Problem"), f"{path.name}: no '# Problem:' line"
    match = _EXPECT.match(header.get("Expect", ""))
    assert match, f"{path.name}: no '# Expect: LINE:COLUMN: /pointer: fragment' line"
    line, column, pointer, fragment = match.groups()
    return Expectation(header["Problem"], int(line), int(column), pointer, fragment, tuple(never))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_broken_file_gives_its_one_located_problem(path: Path) -> None:
    expected = expectation(path)
    result = check_file(path)
    assert result.mapping is None
    formatted = [p.format() for p in result.problems]
    assert len(result.problems) == 1, formatted
    problem = result.problems[0]
    text = problem.format()
    where = (problem.line, problem.column, problem.pointer)
    assert where == (expected.line, expected.column, expected.pointer), text
    assert text.startswith(f"{path}:{expected.line}:{expected.column}: {expected.pointer}: ")
    assert expected.fragment in text
    assert "\n" not in text and "\r" not in text, "a problem is one line"
    assert "Traceback" not in text
    for secret in expected.never:
        assert secret not in text


def test_the_corpus_is_large_enough_and_every_file_says_what_it_expects() -> None:
    assert len(FILES) >= 50
    problems = [expectation(path).problem for path in FILES]
    assert len(problems) == len(FILES)


def _never_printed() -> list[str]:
    return [secret for path in FILES for secret in expectation(path).never]


def test_stokline_validate_reports_every_file_in_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(CORPUS)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(FILES)
    for line in lines:
        assert _ONE_LINE_PROBLEM.match(line), line
    for path in FILES:
        expected = expectation(path)
        [mine] = [line for line in lines if line.startswith(f"{path}:")]
        assert mine.startswith(f"{path}:{expected.line}:{expected.column}: {expected.pointer}: ")
    assert f"{len(FILES)} problem(s) in {len(FILES)} of {len(FILES)} file(s)" in captured.err
    assert _never_printed()
    for secret in _never_printed():
        assert secret not in captured.out + captured.err


def test_stokline_validate_json_agrees_with_check_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(CORPUS)]) == 1
    output = capsys.readouterr().out
    report = json.loads(output)
    assert report["valid"] is False
    by_path = {entry["path"]: entry for entry in report["files"]}
    assert set(by_path) == {str(p) for p in FILES}
    for path in FILES:
        entry = by_path[str(path)]
        assert entry["valid"] is False and entry["client"] is None
        [problem] = entry["problems"]
        [direct] = check_file(path).problems
        assert problem == direct.as_dict()
    for secret in _never_printed():
        assert secret not in output

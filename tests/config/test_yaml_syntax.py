"""YAML syntax errors come out as located problems, like every other problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from stokline.config import check_file, check_text

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")

SYNTAX = [
    ("tab indentation", "client:\n\tname: acme\n", 2, 1, "indent with spaces, not tabs"),
    (
        "unclosed double quote",
        'client:\n  name: "acme\n  timezone: UTC\n',
        2,
        9,
        "a quote or bracket is not closed",
    ),
    ("unclosed flow mapping", "client: {name: acme\nversion: 1\n", 2, 8, "expected ',' or '}'"),
    (
        "bad indentation",
        "client:\n  name: acme\n   timezone: UTC\n",
        3,
        12,
        "mapping values are not allowed",
    ),
    ("dedent into a sequence", "locations:\n  - a: 1\n - b: 2\n", 3, 2, "YAML syntax error"),
    ("two documents", "version: 1\n---\nversion: 1\n", 2, 1, "expected a single document"),
    (
        "a key without a value separator",
        "client:\n  name acme\n  timezone: UTC\n",
        3,
        11,
        "YAML syntax error",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"), [c[1:] for c in SYNTAX], ids=[c[0] for c in SYNTAX]
)
def test_syntax_error_is_one_located_problem(text, line, column, fragment):
    result = check_text(text, "broken.yaml")
    assert result.mapping is None
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.line, problem.column) == (line, column), problem.format()
    assert fragment in problem.format()
    assert problem.format().startswith(f"broken.yaml:{line}:{column}: /: ")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "a mapping of keys"),
    ],
)
def test_not_a_mapping(text, fragment):
    result = check_text(text, "x.yaml")
    assert len(result.problems) == 1 and fragment in result.problems[0].message


def test_unreadable_files_are_problems_too(tmp_path):
    assert check_file(tmp_path / "absent.yaml").problems[0].message == "no such file"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert "cannot read the file" in check_file(binary).problems[0].message


def test_anchors_and_aliases_are_fine():
    text = MINIMAL.replace(
        "    stokly_locations: [Bristol DC]", "    stokly_locations: &bristol [Bristol DC]"
    )
    text = text.replace(
        '  - shopline_location: "7002"', '  - shopline_location: "7002"\n    name: *x'
    ).replace("name: *x", "name: Bristol")
    assert check_text(text, "x.yaml").problems == []


def test_hostile_sizes_and_depths_are_problems_not_crashes():
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert "nests too deeply" in check_text(deep, "x.yaml").problems[0].message
    deep_block = "".join(" " * i + "k:\n" for i in range(0, 3000, 1)) + " " * 3000 + "k: 1\n"
    assert check_text(deep_block, "x.yaml").problems  # located, not raised
    huge = "a: " + "x" * 1_100_000 + "\n"
    assert "too large" in check_text(huge, "x.yaml").problems[0].message

"""YAML that cannot be read comes out as located problems, like every other problem, never a traceback.

Syntax errors, encodings, empty files and hostile nesting are files of the corpus in
``tests/corpus/mappings/``; what cannot be a file there (a missing file, a file too large to
commit) is tested here.
"""

from __future__ import annotations

from pathlib import Path

from stokline.config import check_file, check_text

MINIMAL = (Path(__file__).parent / "minimal.yaml").read_text(encoding="utf-8")


def test_unreadable_files_are_problems_too(tmp_path):
    assert check_file(tmp_path / "absent.yaml").problems[0].message == "no such file"


def test_anchors_and_aliases_are_fine():
    text = MINIMAL.replace(
        "    stokly_locations: [Bristol DC]", "    stokly_locations: &bristol [Bristol DC]"
    )
    text = text.replace(
        '  - shopline_location: "7002"', '  - shopline_location: "7002"\n    name: *x'
    ).replace("name: *x", "name: Bristol")
    assert check_text(text, "x.yaml").problems == []


def test_hostile_sizes_and_depths_are_problems_not_crashes():
    deep_block = "".join(" " * i + "k:\n" for i in range(0, 3000, 1)) + " " * 3000 + "k: 1\n"
    assert check_text(deep_block, "x.yaml").problems  # located, not raised
    huge = "a: " + "x" * 1_100_000 + "\n"
    assert "too large" in check_text(huge, "x.yaml").problems[0].message

"""Break every key of mappings/demo.yaml, one at a time, three ways.

For each key: misspell it, give its value the wrong type, and write it twice. Each broken file must
produce exactly one problem, naming the file, the line of that key, and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stokline.config import check_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mappings" / "demo.yaml"
TEXT = DEMO.read_text(encoding="utf-8")
NAME = "mappings/demo.yaml"

# Keys that are data, not language: a class → account map. Misspelling one is a different
# (semantic) problem, reported at the map itself.
FREE_FORM = ("/syncs/finance/accounts/tax/",)


@dataclass(frozen=True)
class Key:
    path: str
    key: ScalarNode
    value: Node
    flow: bool  # inside a {flow: mapping}

    @property
    def line(self) -> int:
        return self.key.start_mark.line + 1


def _last_index(node: Node) -> int:
    """End of the last token of ``node``'s text (block collections end at the next token)."""
    if isinstance(node, ScalarNode) or getattr(node, "flow_style", False):
        return node.end_mark.index
    children = node.value if isinstance(node, SequenceNode) else [v for _, v in node.value]
    return _last_index(children[-1]) if children else node.end_mark.index


def _keys(node: Node, path: str, flow: bool = False) -> list[Key]:
    found: list[Key] = []
    if isinstance(node, MappingNode):
        for k, v in node.value:
            child = f"{path}/{k.value}"
            found.append(Key(child, k, v, flow or bool(node.flow_style)))
            found += _keys(v, child, flow or bool(node.flow_style))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            found += _keys(item, f"{path}/{i}", flow or bool(node.flow_style))
    return found


KEYS = _keys(yaml.compose(TEXT, Loader=yaml.SafeLoader), "")


def _misspell(k: Key) -> str:
    start, end = k.key.start_mark.index, k.key.end_mark.index
    return TEXT[:start] + k.key.value + "x" + TEXT[end:]


def _wrong_type(k: Key) -> str:
    value = k.value
    if isinstance(value, ScalarNode) and value.tag.endswith(":str"):
        replacement = "[wrong, type]"
    elif isinstance(value, ScalarNode):  # numbers and booleans
        replacement = "[1, 2]"
    else:
        replacement = "12345"
    return TEXT[: k.key.end_mark.index] + ": " + replacement + TEXT[_last_index(value) :]


def _duplicate(k: Key) -> tuple[str, int]:
    """The text with the key written twice, and the line of the second one."""
    start, end = k.key.start_mark.index, _last_index(k.value)
    source = TEXT[start:end]
    if k.flow:
        return TEXT[:end] + ", " + source + TEXT[end:], k.value.end_mark.line + 1
    line_end = TEXT.index("\n", end)
    indent = " " * k.key.start_mark.column
    dup_line = TEXT[:line_end].count("\n") + 2
    return TEXT[:line_end] + "\n" + indent + source + TEXT[line_end:], dup_line


def _one_problem(text: str):
    result = check_text(text, NAME)
    formatted = [p.format() for p in result.problems]
    assert len(result.problems) == 1, formatted
    return result.problems[0]


def test_demo_is_valid_and_has_many_keys():
    assert check_text(TEXT, NAME).problems == []
    assert len(KEYS) > 150


@pytest.mark.parametrize(
    "k", [k for k in KEYS if not k.path.startswith(FREE_FORM)], ids=lambda k: k.path
)
def test_misspelt_key(k: Key):
    problem = _one_problem(_misspell(k))
    assert problem.line == k.line
    assert f"unknown key '{k.key.value}x'" in problem.message
    assert f"did you mean '{k.key.value}'?" in (problem.hint or "")
    assert problem.format().startswith(f"{NAME}:{k.line}:")


@pytest.mark.parametrize("k", KEYS, ids=lambda k: k.path)
def test_wrong_type(k: Key):
    problem = _one_problem(_wrong_type(k))
    assert problem.line == k.line
    assert problem.pointer == k.path
    assert any(word in problem.message for word in ("expected", "must be")), problem.format()


@pytest.mark.parametrize("k", KEYS, ids=lambda k: k.path)
def test_duplicated_key(k: Key):
    text, dup_line = _duplicate(k)
    problem = _one_problem(text)
    assert problem.line == dup_line
    assert problem.pointer == k.path
    assert f"duplicate key '{k.key.value}' (first at line {k.line})" in problem.message

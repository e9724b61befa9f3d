"""Loading and validating mapping files.

``load_mapping(path)`` is the one way into a mapping: it parses the YAML with positions, checks it
against ``schemas/mapping.schema.json`` and the semantic rules, collecting every problem, and returns
frozen `Mapping` models — or raises `MappingInvalid` carrying all problems, each one line long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from stokline.config.models import Mapping, SecretRef, SecretUnavailable
from stokline.config.problems import MappingInvalid, Problem, pointer_of
from stokline.config.schema import schema_problems, unknown_key_parents
from stokline.config.semantics import semantic_problems
from stokline.config.yamlpos import SourceMap, decode_text, parse_yaml

__all__ = [
    "PLACEHOLDER",
    "CheckResult",
    "Mapping",
    "MappingInvalid",
    "Problem",
    "SecretRef",
    "SecretUnavailable",
    "check_file",
    "check_text",
    "is_decision",
    "load_mapping",
    "unset_secrets",
]


@dataclass
class CheckResult:
    """The outcome of checking one file: the mapping when valid, and every problem found."""

    file: str
    mapping: Mapping | None
    problems: list[Problem] = field(default_factory=list)
    data: object = None
    srcmap: SourceMap = field(default_factory=SourceMap)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_text(text: str, filename: str) -> CheckResult:
    """Check the text of a mapping file; ``filename`` is only used in the problems' locations."""
    data, srcmap, problems = parse_yaml(text, filename)
    if data is None:
        return CheckResult(filename, None, problems)
    if not isinstance(data, dict):
        problems.append(
            Problem(
                filename,
                1,
                1,
                "/",
                "a mapping file is a mapping of keys (client:, connections:, ...)",
            )
        )
        return CheckResult(filename, None, problems, data, srcmap)
    decisions = placeholder_problems(data, srcmap, filename)
    found = schema_problems(data, srcmap, filename)
    # An object with an unknown key is most likely missing that key under its right name:
    # semantic rules about that object's absent keys would only repeat the same mistake.
    confused = unknown_key_parents(found)
    found += [
        p
        for p in semantic_problems(data, srcmap, filename)
        if not any(p.pointer == c or p.pointer.startswith(c + "/") for c in confused if c != "/")
    ]
    problems += decisions + [p for p in found if not caused_by(p, decisions)]
    mapping = None
    if not problems:
        try:
            mapping = Mapping.model_validate(data)
            mapping._source = filename
        except ValidationError as exc:  # schema and models disagree: still a located problem
            for err in exc.errors():
                path = tuple(p for p in err["loc"])
                where = srcmap.value(path)
                problems.append(
                    Problem(filename, where.line, where.column, pointer_of(path), err["msg"])
                )
    return CheckResult(filename, mapping, sorted(set(problems)), data, srcmap)


PLACEHOLDER = "TODO:"
"""How a value a person must still decide starts (`stokline audit --draft` writes them)."""
DECISION = "a decision is left to make"
"""How the problem of a placeholder starts: `is_decision` tells it from the others."""


def is_decision(problem: Problem) -> bool:
    """Whether ``problem`` is a placeholder still to replace, not something wrong."""
    return problem.message.startswith(DECISION)


def placeholder_problems(data: object, srcmap: SourceMap, filename: str) -> list[Problem]:
    """One problem per placeholder value (``"TODO: …"``): a decision left to make, at its line."""
    found: list[Problem] = []

    def walk(value: object, path: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, (*path, key))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, (*path, index))
        elif isinstance(value, str) and value.strip().startswith(PLACEHOLDER):
            where = srcmap.value(path)
            what = value.strip()[len(PLACEHOLDER) :].strip()
            found.append(
                Problem(
                    filename,
                    where.line,
                    where.column,
                    pointer_of(path),
                    f"{DECISION}: {what}",
                    "replace the placeholder with the value (the comment above it says what "
                    "the audit found)",
                )
            )

    walk(data, ())
    return found


def caused_by(problem: Problem, decisions: list[Problem]) -> bool:
    """Whether ``problem`` only repeats that a placeholder is not yet a value (a placeholder
    where a number is expected, or a rule about a field whose value is a placeholder)."""
    if PLACEHOLDER in problem.message:
        return True
    return any(problem.pointer == decision.pointer for decision in decisions)


def check_file(path: str | Path) -> CheckResult:
    """Check one mapping file. A file that cannot be read is itself a problem."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return CheckResult(name, None, [Problem(name, 1, 1, "/", "no such file")])
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return CheckResult(
            name, None, [Problem(name, 1, 1, "/", f"cannot read the file: {reason}")]
        )
    text, problem = decode_text(raw, name)
    if text is None:
        return CheckResult(name, None, [problem] if problem else [])
    return check_text(text, name)


def load_mapping(path: str | Path) -> Mapping:
    """The validated mapping in ``path``; raises `MappingInvalid` with every problem otherwise."""
    result = check_file(path)
    if result.mapping is None:
        raise MappingInvalid(result.problems)
    return result.mapping


def unset_secrets(result: CheckResult) -> list[Problem]:
    """Problems for secret references whose environment variable is unset (values never read out)."""
    problems: list[Problem] = []
    if result.mapping is None:
        return problems
    conns = result.mapping.connections
    refs = {
        ("connections", "stokly", "client_id"): conns.stokly.client_id,
        ("connections", "stokly", "client_secret"): conns.stokly.client_secret,
        ("connections", "shopline", "access_token"): conns.shopline.access_token,
        ("connections", "shopline", "webhook_secret"): conns.shopline.webhook_secret,
    }
    for path, ref in refs.items():
        if ref.is_available() is False:
            where = result.srcmap.value(path)
            problems.append(
                Problem(
                    result.file,
                    where.line,
                    where.column,
                    pointer_of(path),
                    f"{ref.describe()} is not set",
                    "export it before running a sync (the demo's values are in .env.demo)",
                )
            )
    return problems

"""A problem found in a mapping file, and how it is shown.

Every check (YAML syntax, duplicate keys, the JSON Schema, the semantic checks, templates) reports
`Problem`s; nothing raises past the loader. One problem is one line:
``path:line:col: /json/pointer: message; hint``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


def pointer_of(path: tuple[str | int, ...]) -> str:
    """The JSON pointer (RFC 6901) of a path in the document; ``/`` for the root."""
    if not path:
        return "/"
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a mapping file, located to a line and column (both 1-based)."""

    file: str
    line: int
    column: int
    pointer: str
    message: str
    hint: str | None = None

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.pointer}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class MappingInvalid(Exception):
    """Raised by `load_mapping` when a file has problems; carries all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        lines = "\n".join(p.format() for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in mapping file:\n{lines}")

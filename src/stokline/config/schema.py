"""The JSON Schema of mapping files, and its errors turned into located, human problems.

jsonschema's own messages repeat whole values and say nothing about lines; here each error is
rewritten: an unknown key points at the key with a did-you-mean, a missing key at its parent, a
wrong type names both types and how YAML got there (``02:00`` is a number to YAML 1.1), and a value
given where a secret reference belongs is refused without ever repeating the value (nor is the
password of a ``user:password@`` URL ever shown). A value YAML itself could not read (an unknown
tag) was reported by the parser already and is not reported again. Every message shows invisible
and direction-changing characters as escapes (`stokline.config.yamlpos.visible`).
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from stokline.config.problems import Problem, pointer_of
from stokline.config.yamlpos import SourceMap, visible

SECRET_MARK = "x-stokline-secret"


def schema_path() -> Path:
    """Where the schema file is: the repository's ``schemas/`` or, installed, the package copy."""
    repo = Path(__file__).resolve().parents[3] / "schemas" / "mapping.schema.json"
    if repo.is_file():
        return repo
    return Path(str(resources.files("stokline") / "_schemas" / "mapping.schema.json"))


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            return lowered[word.lower()]
    return close[0] if close else None


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _expected(types: str | list[str]) -> str:
    if isinstance(types, str):
        types = [types]
    return " or ".join(_TYPE_WORDS.get(t, t) for t in types)


# The credentials part of a URL (scheme://user:password@host): never shown in a message.
_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def hide_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def _show(value: object) -> str:
    text = hide_url_credentials(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= 60 else text[:57] + "..."


class _Reporter:
    def __init__(self, filename: str, srcmap: SourceMap):
        self.filename = filename
        self.srcmap = srcmap
        self.problems: list[Problem] = []
        # Per object path: keys not allowed there, and required keys missing there.
        self.unknown: dict[tuple, list[str]] = {}
        self.missing: dict[tuple, list[tuple[str, str | None]]] = {}
        self.allowed: dict[tuple, list[str]] = {}
        self.typed: set[tuple] = set()

    def add_at_value(self, path: tuple, message: str, hint: str | None = None) -> None:
        self._add(self.srcmap.value(path), path, message, hint)

    def add_at_key(self, path: tuple, message: str, hint: str | None = None) -> None:
        self._add(self.srcmap.key(path), path, message, hint)

    def _add(self, where: Any, path: tuple, message: str, hint: str | None) -> None:
        self.problems.append(
            Problem(
                self.filename,
                where.line,
                where.column,
                visible(pointer_of(path)),
                visible(message),
                visible(hint) if hint else hint,
            )
        )

    def error(self, err: ValidationError) -> None:
        path = tuple(err.absolute_path)
        if self.srcmap.is_unreadable(path):
            return  # YAML could not read the value: the parser said so, once
        if err.validator != "type" and path in self.typed:
            return  # a value of the wrong type: that is the one thing to say about it
        schema = err.schema if isinstance(err.schema, dict) else {}
        kind = err.validator
        value = err.instance
        if kind == "additionalProperties":
            allowed = list(schema.get("properties", {}))
            extras = [k for k in value if k not in allowed] if isinstance(value, dict) else []
            self.unknown.setdefault(path, []).extend(extras)
            self.allowed[path] = allowed
        elif kind == "required":
            props = schema.get("properties", {})
            for name in err.validator_value:
                if isinstance(value, dict) and name not in value:
                    desc = props.get(name, {}).get("description")
                    self.missing.setdefault(path, []).append((name, desc))
                    self.allowed[path] = list(props)
        elif kind == "type":
            self._type_error(path, schema, value, err.validator_value)
        elif kind == "enum":
            choices = [str(c) for c in err.validator_value]
            guess = did_you_mean(str(value), choices) if isinstance(value, str) else None
            hint = f"did you mean '{guess}'?" if guess else "allowed: " + ", ".join(choices)
            self.add_at_value(path, f"{_show(value)} is not one of the allowed values", hint)
        elif kind == "const":
            self.add_at_value(path, f"must be {_show(err.validator_value)}, not {_show(value)}")
        elif kind == "pattern":
            self.add_at_value(
                path, f"{_show(value)} is not in the expected form", schema.get("description")
            )
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            word = {"minimum": "at least", "maximum": "at most"}.get(kind, kind)
            self.add_at_value(
                path, f"{_show(value)} is out of range: must be {word} {err.validator_value}"
            )
        elif kind == "minItems":
            self.add_at_value(path, f"needs at least {err.validator_value} item(s)")
        elif kind == "uniqueItems":
            self.add_at_value(path, "lists the same item twice", "remove the repeated entry")
        elif kind == "minLength":
            self.add_at_value(path, "must not be empty")
        elif kind == "maxLength":
            self.add_at_value(path, f"is too long: at most {err.validator_value} characters")
        elif kind in ("minProperties", "maxProperties") and schema.get(SECRET_MARK):
            self.add_at_value(
                path,
                "a secret reference names exactly one source",
                "write {env: NAME} or {prefect_secret: block-name}",
            )
        elif kind == "minProperties":
            n = err.validator_value
            self.add_at_value(path, f"needs at least {n} entr{'y' if n == 1 else 'ies'}")
        elif kind == "maxProperties":
            n = err.validator_value
            self.add_at_value(path, f"allows at most {n} entr{'y' if n == 1 else 'ies'}")
        elif kind == "anyOf":
            needs = [next(iter(s.get("required", [])), "?") for s in err.validator_value]
            self.add_at_value(path, "give " + " or ".join(needs) + " (or both)")
        else:  # a keyword this reporter has no words for: jsonschema's own message
            self.add_at_value(path, err.message)

    def _type_error(self, path: tuple, schema: dict, value: object, types: Any) -> None:
        if schema.get(SECRET_MARK):
            # Never repeat the value: it may be the very secret that must not be written here.
            self.add_at_value(
                path,
                "a secret must be a reference, not a value written in the file",
                "write {env: VARIABLE_NAME} (or {prefect_secret: block-name}) and keep the value there",
            )
            return
        message = f"expected {_expected(types)}, got {_kind(value)}"
        hint = None
        raw = self.srcmap.plain.get(path)
        wants_string = types == "string" or (isinstance(types, list) and "string" in types)
        if wants_string and raw is not None and not isinstance(value, str):
            message += f" ({raw})"
            if ":" in raw and isinstance(value, int):
                hint = f'YAML reads an unquoted {raw} as the number {value}; quote it: "{raw}"'
            elif isinstance(value, bool):
                hint = f'YAML reads an unquoted {raw} as {str(value).lower()}; quote it: "{raw}"'
            else:
                hint = f'quote it: "{raw}"'
        elif types == "array" and isinstance(value, dict):
            # A list of small objects written as one mapping (SKU: SKU): show an entry's shape.
            item = schema.get("items", {})
            keys = list(dict.fromkeys([*item.get("required", []), *item.get("properties", {})]))[:2]
            if item.get("type") == "object" and keys:
                hint = "write one list entry each: - {" + ", ".join(f"{k}: ..." for k in keys) + "}"
        self.add_at_value(path, message, hint)

    def finish(self) -> list[Problem]:
        for path, extras in self.unknown.items():
            allowed = self.allowed.get(path, [])
            missing = {name for name, _ in self.missing.get(path, [])}
            for key in extras:
                guess = did_you_mean(key, allowed)
                if guess in missing:
                    missing.discard(guess)
                    # One mistake, one line: the misspelt key explains the missing one.
                    self.missing[path] = [(n, d) for n, d in self.missing[path] if n != guess]
                hint = (
                    f"did you mean '{guess}'?" if guess else "allowed keys: " + ", ".join(allowed)
                )
                self.add_at_key((*path, key), f"unknown key '{key}'", hint)
        for path, names in self.missing.items():
            for name, desc in names:
                self.add_at_key(path, f"missing required key '{name}'", desc)
        return self.problems


def schema_problems(data: object, srcmap: SourceMap, filename: str) -> list[Problem]:
    """Every schema violation of ``data``, each located and worded for a person."""
    reporter = _Reporter(filename, srcmap)
    errors = list(_validator().iter_errors(data))
    reporter.typed = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    for err in errors:
        reporter.error(err)
    return reporter.finish()


def unknown_key_parents(problems: list[Problem]) -> set[str]:
    """Pointers of the objects that hold an unknown key (the problems of `schema_problems`)."""
    return {
        p.pointer.rsplit("/", 1)[0] or "/" for p in problems if p.message.startswith("unknown key")
    }

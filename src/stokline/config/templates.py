"""Field templates: Jinja2 in a sandbox, compiled once when the mapping is loaded.

Templates come from mapping files, which consultants write and clients may edit, so they run in
Jinja2's immutable sandbox (no attribute of Python internals, no mutation of the records) with
``StrictUndefined`` (a misspelt field is an error, never an empty string). At load time each
template is parsed, its variables are checked against the ones its place allows, and names that
start with an underscore are refused outright, since they only serve to reach Python internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

# Which variables each kind of template may use (the key is the template's place in the file).
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "sale_order": frozenset({"order", "customer", "client"}),
    "shopline_product": frozenset({"item", "client"}),
    "tracking_url": frozenset({"tracking_number", "carrier", "order"}),
}


class TemplateError(Exception):
    """A template that cannot be compiled, uses what it may not, or failed to render."""

    def __init__(self, message: str, lineno: int | None = None):
        super().__init__(message)
        self.lineno = lineno


@cache
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def _private_names(tree: nodes.Template) -> list[str]:
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            name = arg.value if isinstance(arg, nodes.Const) and isinstance(arg.value, str) else ""
        else:
            name = node.name
        if name.startswith("_"):
            found.append(name)
    return found


def check_template(source: str, allowed: frozenset[str]) -> None:
    """Raise `TemplateError` when ``source`` does not parse or reaches beyond ``allowed``."""
    env = environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template does not parse: {exc.message}", exc.lineno) from None
    private = _private_names(tree)
    if private:
        raise TemplateError(
            f"template uses '{private[0]}': names starting with '_' are not allowed in templates"
        )
    unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
    if unknown:
        raise TemplateError(f"template uses unknown variable '{unknown[0]}'")


@dataclass(frozen=True, eq=False)
class Template:
    """A compiled field template. Render with the variables of its place."""

    source: str
    _compiled: jinja2.Template

    @classmethod
    def compile(cls, source: str) -> Template:
        try:
            compiled = environment().from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"template does not parse: {exc.message}") from None
        return cls(source, compiled)

    def render(self, **variables: Any) -> str:
        try:
            return self._compiled.render(**variables)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {self.source!r} failed: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls.compile,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda t: t.source),
        )

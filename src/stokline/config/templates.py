"""Field templates: Jinja2 in a sandbox, compiled once when the mapping is loaded.

Templates come from mapping files, which consultants write and clients may edit, so they are
treated as untrusted code. Two layers keep them to what a field template needs — reading fields of
the record and shaping text — and away from Python's internals and from denial of service:

* **At load** (`check_template`), the parsed template may only use the constructs of a field
  template: output, ``if``, one level of ``for``, ``set``/``with``, the allowed filters and tests,
  and its place's variables. Refused with a clear problem: names starting with ``_`` (the way into
  Python internals), calls of functions or methods, ``import``/``include``/``extends``/macros,
  ``**``, the filters that reach attributes by name (``attr``) or can blow up (``batch``,
  ``slice``, ``indent``, ``format``, ...), nested loops, and numbers beyond `MAX_ARGUMENT` given
  to filters or to ``*``.
* **At render**, Jinja2's immutable sandbox (no unsafe attribute, no mutation of the records)
  runs with ``StrictUndefined`` (a misspelt field is an error, never an empty string), without
  Jinja's global functions (``range``, ``lipsum``, ``cycler``, ``namespace``, ...), refusing every
  call, bounding ``*``/``**``/``%``, ``replace`` and filter arguments, and stopping output past
  `MAX_OUTPUT` characters. Anything that goes wrong is a `TemplateError`, never another exception.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

# Which variables each kind of template may use (the key is the template's place in the file).
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "sale_order": frozenset({"order", "customer", "client"}),
    "shopline_product": frozenset({"item", "client"}),
    "tracking_url": frozenset({"tracking_number", "carrier", "order"}),
}

# Characters one render may produce, and the longest text or list one operation may build.
MAX_OUTPUT = 1_000_000
# The largest number a template may give a filter (a width, a length) or multiply text by.
MAX_ARGUMENT = 10_000
# The largest exponent ``**`` may use at render (templates that write ``**`` are refused at load).
MAX_EXPONENT = 64

# Filters whose output is at most about as large as their input; their numeric arguments are
# bounded by MAX_ARGUMENT. Left out: attr (reaches attributes by a computed name), batch and
# slice (fill to a given size), indent (width times lines), format (printf widths), pprint,
# random, urlize and xmlattr (no use in a field, more surface).
ALLOWED_FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "center",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "forceescape",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "safe",
        "select",
        "selectattr",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "wordwrap",
    }
)

# The syntax a field template may use; anything else is refused at load, by name.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.If,
    nodes.For,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
    nodes.FilterBlock,
    nodes.Scope,
    nodes.ScopedEvalContextModifier,
)
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Call: "template calls a function or method; use filters instead, e.g. {{ x | upper }}",
    nodes.Import: "template uses {% import %}: templates cannot import anything",
    nodes.FromImport: "template uses {% from ... import %}: templates cannot import anything",
    nodes.Include: "template uses {% include %}: templates cannot include other templates",
    nodes.Extends: "template uses {% extends %}: templates cannot extend other templates",
    nodes.Block: "template uses {% block %}: field templates have no blocks",
    nodes.Macro: "template uses {% macro %}: field templates cannot define macros",
    nodes.CallBlock: "template uses {% call %}: field templates cannot call macros",
    nodes.Pow: "template uses the ** operator, which field templates do not allow",
}
# Names Jinja gives a meaning of its own; none is a field.
_RESERVED_NAMES = frozenset({"self", "caller", "varargs", "kwargs"})
# Filters whose (first positional or ``attribute=``) argument names an attribute to read.
_ATTRIBUTE_FILTERS = frozenset({"selectattr", "rejectattr"})

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateError(Exception):
    """A template that cannot be compiled, uses what it may not, or failed to render."""

    def __init__(self, message: str, lineno: int | None = None):
        super().__init__(message)
        self.lineno = lineno


# ---------------------------------------------------------------------------------------------
# Render-time guards
# ---------------------------------------------------------------------------------------------


def _check_number(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
        raise SecurityError(f"{what} {value}; at most {MAX_ARGUMENT:,}")


def _check_printf(text: str) -> None:
    """Refuse a ``%`` format whose width or precision would pad text to gigabytes."""
    for width, precision in _PRINTF_SPEC.findall(text):
        for part in (width, precision):
            if part == "*" or (part and int(part) > MAX_ARGUMENT):
                raise SecurityError(
                    f"pads a %-format to {part} characters; at most {MAX_ARGUMENT:,}"
                )


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its numeric arguments bounded (a width of 10**9 would allocate gigabytes).

    Keeps the wrapped filter's ``jinja_pass_arg`` marker, so Jinja still hands it the context or
    environment it asks for.
    """

    # The filtered value comes first, after the context Jinja passes to some filters.
    skip = 2 if getattr(func, "jinja_pass_arg", None) else 1

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            _check_number(value, f"gives the filter '{name}' the number")
        return func(*args, **kwargs)

    return guarded


def _replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
    """Jinja's ``replace``, refused when its result would be larger than MAX_OUTPUT."""
    text, old_s, new_s = str(s), str(old), str(new)
    hits = len(text) + 1 if not old_s else text.count(old_s)
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(0, len(new_s) - len(old_s)) > MAX_OUTPUT:
        raise SecurityError(f"replace would make more than {MAX_OUTPUT:,} characters")
    return _JINJA_REPLACE(eval_ctx, s, old, new, count)


_JINJA_REPLACE = jinja2.filters.do_replace
_replace.jinja_pass_arg = _JINJA_REPLACE.jinja_pass_arg  # type: ignore[attr-defined]


class FieldTemplateEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, narrowed to what field templates need (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.globals.clear()
        self.filters = {
            name: _guarded_filter(name, func)
            for name, func in self.filters.items()
            if name in ALLOWED_FILTERS
        }
        self.filters["replace"] = _guarded_filter("replace", _replace)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("templates cannot call functions or methods")

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for size, times in ((_sized(left), right), (_sized(right), left)):
                if size is not None and isinstance(times, int) and size * times > MAX_OUTPUT:
                    raise SecurityError(f"'*' would make more than {MAX_OUTPUT:,} items")
            return operator.mul(left, right)
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return operator.pow(left, right)
        if operator_ == "%" and isinstance(left, str):
            _check_printf(left)
        return super().call_binop(context, operator_, left, right)


@cache
def environment() -> FieldTemplateEnvironment:
    return FieldTemplateEnvironment()


# ---------------------------------------------------------------------------------------------
# Load-time checks
# ---------------------------------------------------------------------------------------------


def _attribute_names(node: nodes.Filter | nodes.Test) -> Iterator[nodes.Expr]:
    """The arguments of a filter or test that name attributes to read."""
    for kw in node.kwargs:
        if kw.key == "attribute":
            yield kw.value
    if isinstance(node, nodes.Filter) and node.name in _ATTRIBUTE_FILTERS and node.args:
        yield node.args[0]


def _refusal(tree: nodes.Template) -> str | None:
    """Why the parsed template may not be used, or None."""
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            return _REFUSED.get(
                type(node),
                f"template uses '{type(node).__name__}', which field templates do not allow",
            )
        if isinstance(node, nodes.Name) and node.name in _RESERVED_NAMES:
            return f"template uses '{node.name}', which is not a field of the record"
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            name = (
                node.attr
                if isinstance(node, nodes.Getattr)
                else node.name
                if isinstance(node, nodes.Name)
                else node.arg.value
                if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)
                else ""
            )
            if name.startswith("_"):
                return (
                    f"template uses '{name}': names starting with '_' are not allowed in templates"
                )
        if isinstance(node, nodes.Filter | nodes.Test):
            if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
                return f"template uses the filter '{node.name}', which field templates do not allow"
            if isinstance(node, nodes.Test) and node.name not in environment().tests:
                return f"template uses the test 'is {node.name}', which Jinja does not have"
            for arg in _attribute_names(node):
                if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
                    return f"template gives '{node.name}' a computed attribute name; write it out"
                if any(part.startswith("_") for part in arg.value.split(".")):
                    return (
                        f"template uses '{arg.value}': names starting with '_' are not allowed"
                        " in templates"
                    )
            for arg in (*node.args, *(kw.value for kw in node.kwargs)):
                if isinstance(arg, nodes.Const):
                    try:
                        _check_number(arg.value, f"gives the filter '{node.name}' the number")
                    except SecurityError as exc:
                        return f"template {exc}"
        if isinstance(node, nodes.Mul):
            for side in (node.left, node.right):
                if isinstance(side, nodes.Const):
                    try:
                        _check_number(side.value, "multiplies by")
                    except SecurityError as exc:
                        return f"template {exc}"
        if (
            isinstance(node, nodes.Mod)
            and isinstance(node.left, nodes.Const)
            and isinstance(node.left.value, str)
        ):
            try:
                _check_printf(node.left.value)
            except SecurityError as exc:
                return f"template {exc}"
        if isinstance(node, nodes.For) and any(True for _ in node.find_all(nodes.For)):
            return "template nests a loop inside a loop, which field templates do not allow"
    return None


def check_template(source: str, allowed: frozenset[str]) -> None:
    """Raise `TemplateError` when ``source`` does not parse or reaches beyond ``allowed``."""
    env = environment()
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template does not parse: {exc.message}", exc.lineno) from None
    refusal = _refusal(tree)
    if refusal:
        raise TemplateError(refusal)
    unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
    if unknown:
        raise TemplateError(f"template uses unknown variable '{unknown[0]}'")
    try:
        env.from_string(tree)  # unknown tests are only found when compiling
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template does not compile: {exc.message}", exc.lineno) from None


# ---------------------------------------------------------------------------------------------
# The compiled template
# ---------------------------------------------------------------------------------------------


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
        """The rendered text; a `TemplateError` for any failure, including output too long."""
        try:
            parts: list[str] = []
            size = 0
            for chunk in self._compiled.generate(**variables):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise SecurityError(f"output longer than {MAX_OUTPUT:,} characters")
                parts.append(chunk)
            return "".join(parts)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {self.source!r} failed: {exc}") from None
        except Exception as exc:  # a TypeError of the data, a RecursionError: still the template's
            raise TemplateError(
                f"template {self.source!r} failed: {type(exc).__name__}: {exc}"
            ) from None

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

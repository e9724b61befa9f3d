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

Which fields a template reads is checked too (`check_template_fields`), against the `Shape` of
each of its variables — built from the record's model with `shape_of`. This module knows no
record of its own: whoever validates (`stokline validate`) passes the shapes of the records the
syncs render templates with, so that a template reading ``order.nonexistent`` is refused once,
at validation, rather than failing on every order (templates render with ``StrictUndefined``).
"""

from __future__ import annotations

import functools
import operator
import re
import types
import typing
from collections.abc import Callable, Iterator
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence as AbcSequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, NamedTuple, Union

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from pydantic import BaseModel, GetCoreSchemaHandler
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
# Fields a template reads
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Shape:
    """What a template may read below a value of a record.

    ``fields``: a record's named fields (anything else is refused); ``item``: a list's element;
    ``open``: anything (a free-form dict, ``Any``). A value with none of them is a plain value
    (text, number, date): it may be indexed or sliced, but has no fields.
    """

    fields: AbcMapping[str, Shape] | None = None
    item: Shape | None = None
    open: bool = False
    described: str = field(default="", compare=False)


class UnknownField(NamedTuple):
    """A field a template reads that its record does not have: the message, the line in the
    template, the name read, and the names the record does have (for a "did you mean")."""

    message: str
    line: int
    name: str
    choices: tuple[str, ...] = ()


OPEN = Shape(open=True)
PLAIN = Shape()
_MAX_DEPTH = 8


def _merge(shapes: list[Shape]) -> Shape:
    """One shape for a union of types: a field or an element any of them has is allowed."""
    if not shapes:
        return PLAIN
    if any(s.open for s in shapes):
        return OPEN
    records = [s for s in shapes if s.fields is not None]
    lists = [s.item for s in shapes if s.item is not None]
    fields = None
    if records:
        fields = {name: shape for r in records for name, shape in (r.fields or {}).items()}
    item = _merge(lists) if lists else None
    return Shape(fields, item, described=next((s.described for s in records), ""))


def shape_of(annotation: Any, *, _depth: int = 0) -> Shape:
    """The `Shape` of a value of type ``annotation`` (a pydantic model, a list of them, ...)."""
    if _depth > _MAX_DEPTH or annotation is Any:
        return OPEN
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return shape_of(args[0], _depth=_depth)
    if origin is Union or origin is types.UnionType:
        return _merge([shape_of(a, _depth=_depth) for a in args if a is not type(None)])
    if origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, AbcSequence) and origin is not str
    ):
        return Shape(item=shape_of(args[0], _depth=_depth + 1) if args else OPEN)
    if origin in (dict,) or (isinstance(origin, type) and issubclass(origin, AbcMapping)):
        return OPEN
    if annotation in (dict, list):
        return OPEN if annotation is dict else Shape(item=OPEN)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {
            name: shape_of(info.annotation, _depth=_depth + 1)
            for name, info in annotation.model_fields.items()
        }
        return Shape(fields, described=annotation.__name__)
    return PLAIN


def _outermost(tree: nodes.Template) -> list[nodes.Getattr | nodes.Getitem]:
    reads = list(tree.find_all((nodes.Getattr, nodes.Getitem)))
    inner = {id(r.node) for r in reads}
    return [r for r in reads if id(r) not in inner]


def _guarded(tree: nodes.Template) -> list[nodes.Node]:
    """The reads a template tests with ``is defined``/``is undefined``: it handles their absence
    itself, so they (and the same reads elsewhere in it) are not checked."""
    return [
        test.node for test in tree.find_all(nodes.Test) if test.name in ("defined", "undefined")
    ]


def _bindings(tree: nodes.Template) -> dict[str, nodes.Expr]:
    """Names a template binds to a read: ``for x in <read>`` (x is its element) and ``set``."""
    bound: dict[str, nodes.Expr] = {}
    for loop in tree.find_all(nodes.For):
        if isinstance(loop.target, nodes.Name):
            bound[loop.target.name] = nodes.Getitem(loop.iter, nodes.Const(0), "load")
    for assign in tree.find_all(nodes.Assign):
        if isinstance(assign.target, nodes.Name):
            bound[assign.target.name] = assign.node
    return bound


class _FieldCheck:
    def __init__(self, tree: nodes.Template, variables: AbcMapping[str, Shape]):
        self.variables = variables
        self.bound = _bindings(tree)
        self.problems: list[UnknownField] = []
        self._resolving: set[str] = set()

    def resolve(self, node: nodes.Node, report: bool = True) -> tuple[Shape | None, str]:
        """The shape of the value ``node`` reads (None: not known, so not checked) and its text."""
        if isinstance(node, nodes.Name):
            if node.name in self.bound and node.name not in self._resolving:
                self._resolving.add(node.name)
                try:
                    shape, _ = self.resolve(self.bound[node.name], report=False)
                finally:
                    self._resolving.discard(node.name)
                return shape, node.name
            return self.variables.get(node.name), node.name
        if isinstance(node, nodes.Getattr):
            return self._field(node, node.attr, report)
        if isinstance(node, nodes.Getitem):
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                return self._field(node, arg.value, report)
            base, text = self.resolve(node.node, report)
            if base is None or base.open:
                return base, f"{text}[]"
            if base.item is not None:
                return base.item, f"{text}[]"
            return (PLAIN if base.fields is None else None), f"{text}[]"
        return None, ""

    def _field(self, node: nodes.Getattr | nodes.Getitem, name: str, report: bool):
        base, text = self.resolve(node.node, report)
        path = f"{text}.{name}" if text else name
        if base is None or base.open:
            return (None if base is None else OPEN), path
        if base.fields is not None and name in base.fields:
            return base.fields[name], path
        if report:
            message = self._unknown(path, name, base)
            self.problems.append(UnknownField(message, node.lineno, name, field_names(base)))
        return None, path

    @staticmethod
    def _unknown(path: str, name: str, base: Shape) -> str:
        if base.fields is not None:
            what = f"a {base.described}" if base.described else "this record"
            return f"template reads {path}, which {what} does not have"
        if base.item is not None:
            return f"template reads {path}, but {path.rsplit('.', 1)[0]} is a list: loop over it"
        return f"template reads {path}, but {path.rsplit('.', 1)[0]} is a plain value, no record"

    def attributes(self, tree: nodes.Template) -> None:
        """Attribute names given to filters (``map(attribute='sku')``) over a list of records."""
        for node in tree.find_all((nodes.Filter, nodes.Test)):
            names = [a for a in _attribute_names(node) if isinstance(a, nodes.Const)]
            if not names or node.node is None:
                continue
            base, text = self.resolve(node.node, report=False)
            element = base.item if base is not None else None
            for arg in names:
                shape = element
                for part in str(arg.value).split("."):
                    if shape is None or shape.open or shape.fields is None:
                        break
                    if part not in shape.fields:
                        what = f"a {shape.described}" if shape.described else "its elements"
                        message = (
                            f"template gives '{node.name}' the attribute '{arg.value}' of"
                            f" {text}, which {what} does not have"
                        )
                        self.problems.append(
                            UnknownField(message, node.lineno, part, field_names(shape))
                        )
                        break
                    shape = shape.fields[part]


def check_template_fields(source: str, variables: AbcMapping[str, Shape]) -> list[tuple[str, int]]:
    """(message, line in the template) for each field ``source`` reads that its variable's
    `Shape` does not have; variables not in ``variables`` are not checked. A read guarded by
    ``is defined`` is allowed (the template handles its absence itself)."""
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError:
        return []  # check_template reports it
    check = _FieldCheck(tree, variables)
    guarded = {check.resolve(node, report=False)[1] for node in _guarded(tree)} - {""}
    for read in _outermost(tree):
        text = check.resolve(read, report=False)[1]
        if not any(text == g or text.startswith((f"{g}.", f"{g}[")) for g in guarded):
            check.resolve(read)
    check.attributes(tree)
    return list(dict.fromkeys(check.problems))


def field_names(shape: Shape | None) -> tuple[str, ...]:
    """The fields of a record shape, for hints ("did you mean ...")."""
    return tuple(sorted(shape.fields)) if shape is not None and shape.fields is not None else ()


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

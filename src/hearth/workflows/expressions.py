"""Templates and conditions in workflow files, evaluated in Jinja's immutable sandbox.

Threat model: templates come from workflow files, which the owner writes; the data they see
(inputs, step outputs, model answers, fetched web pages) may come from anyone. So the rules are:

- data is never compiled: a template's output is not rendered again, and a step output that
  contains "{{ ... }}" stays plain text;
- a template cannot reach Python internals (dunder attributes, `str.format` field tricks, mutating
  methods of lists and dicts) — the sandbox raises at once instead of handing back an Undefined
  that a condition could test;
- every failure — syntax, undefined name, sandbox violation, a type error, a division by zero —
  comes out as `ExpressionError` naming the expression, so the engine fails one step and never
  crashes, and a condition that fails is never taken as true.

Resources are bounded too (see `render_limits`): every rendering has an operation budget, a
size cap and a time limit, and the engine renders in a worker thread (`arender`, `aevaluate`),
so a template that loops a hundred million times or pads a string to 200 MB fails its step with
a clear reason while the gateway goes on answering.
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial, update_wrapper
from typing import Any, NoReturn, TypeVar

from jinja2 import StrictUndefined, Template, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from hearth.workflows import render_limits
from hearth.workflows.render_limits import (
    BudgetCodeGenerator,
    RenderBudget,
    RenderLimitError,
    charge,
    check_call,
    check_format_spec,
    check_printf,
    check_size,
    spend,
)

__all__ = ["ExpressionError", "Expressions", "RenderBudget", "expression_context"]

T = TypeVar("T")

#: Longest expression text quoted in an error message; prompts can be pages long.
_QUOTE_LIMIT = 160
#: Largest string/list a `*` may build, and the largest integer (in bits) `**` may build.
_MAX_REPEAT_LENGTH = 1_000_000
_MAX_POWER_BITS = 4096
#: Compiled templates are kept per source text; a workflow has a bounded number of them.
_CACHE_LIMIT = 2048


class ExpressionError(Exception):
    """A template or condition failed to compile or evaluate.

    `expression` is the source text (shortened when very long, so a failing multi-page prompt
    still gives a readable step error); `source` is always the full text.
    """

    def __init__(self, expression: str, reason: str) -> None:
        self.source = expression
        self.expression = _shorten(expression)
        self.reason = reason
        super().__init__(f"expression {self.expression!r}: {reason}")

    def __str__(self) -> str:
        return f"expression {self.expression!r}: {self.reason}"


def _shorten(text: str) -> str:
    if len(text) <= _QUOTE_LIMIT:
        return text
    return text[: _QUOTE_LIMIT - 1] + "…"


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong; Jinja's own errors need no exception class name."""
    if isinstance(exc, RenderLimitError):
        return f"render limit: {exc}"
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message} (line {exc.lineno})"
    if isinstance(exc, SecurityError):
        return f"not allowed in the sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined: {exc.message or exc}"
    if isinstance(exc, RecursionError):
        return "too deeply nested"
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _from_json(text: str) -> Any:
    return json.loads(text)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with workflow-specific adjustments (see the methods), and every
    lookup, call, operator, loop iteration and `~` paid for from the render budget."""

    intercepted_binops = frozenset({"**", "*", "%", "+", "-", "/", "//"})
    code_generator_class = BudgetCodeGenerator
    #: Called by the code BudgetCodeGenerator emits for `{% for %}` and `~`.
    hearth_iterate = staticmethod(render_limits.iterate)
    hearth_concat = staticmethod(render_limits.concat)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`steps.items.output` must mean the step called "items", not `dict.items`.

        Jinja tries the Python attribute before the key, so a step id or output field named like a
        dict method (`items`, `keys`, `update`, ...) would be shadowed — or, for mutating ones in
        the immutable sandbox, refused. Keys are data, so for mappings they win.
        """
        spend()
        if isinstance(obj, Mapping):
            try:
                if attribute in obj:
                    return obj[attribute]
            except TypeError:
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        spend()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        spend()
        args = check_call(__obj, args, kwargs)
        return charge(super().call(__context, __obj, *args, **kwargs))

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        """Raise at the violation instead of returning an Undefined.

        Jinja's default hands back an Undefined, which `is undefined`, `default(...)` or a
        container could swallow; a condition must never turn a sandbox escape into True.
        """
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse results so large that computing them would hang the gateway."""
        spend()
        if (
            operator == "**"
            and _is_int(left)
            and _is_int(right)
            and right > 0
            and abs(left) > 1
            and abs(left).bit_length() * right > _MAX_POWER_BITS
        ):
            raise SecurityError(f"{left} ** {right} is too large")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and _is_int(count)
                    and len(seq) * count > _MAX_REPEAT_LENGTH
                ):
                    raise SecurityError(f"'*' would build a sequence of {len(seq) * count} items")
        elif operator == "%" and isinstance(left, str | bytes):
            check_printf(left, right)
        elif operator == "+" and isinstance(left, str | bytes | list | tuple):
            check_size(len(left) + (len(right) if isinstance(right, type(left)) else 0), "'+'")
        return charge(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` / `format_map` with widths and the total length bounded."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        owner: Any = value.__self__
        if not isinstance(owner, str):
            return None
        formatter: SandboxedFormatter = (
            _BoundedEscapeFormatter(self, escape=owner.escape)
            if isinstance(owner, Markup)
            else _BoundedFormatter(self)
        )
        is_map = value.__name__ == "format_map"
        kind = type(owner)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                kwargs, args = args[0], ()
            return kind(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)


class _BoundedFormatter(SandboxedFormatter):
    """Checks each field's format spec before formatting, and the running total after."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        spend()
        check_format_spec(format_spec)
        text = super().format_field(value, format_spec)
        self._total += len(text)
        check_size(self._total, "format()")
        return charge(text)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Compiled:
    """A template plus, when the template is exactly one `{{ expr }}`, that expression."""

    __slots__ = ("native", "template")

    def __init__(self, template: Template, native: TemplateExpression | None) -> None:
        self.template = template
        self.native = native


class Expressions:
    """Compiles and evaluates templates (`args`, `prompt`, `approval_prompt`, `until`) and
    conditions (`when`, `branches[].condition`).

    One instance is cheap to share: it holds no per-execution state, only a compile cache.
    """

    def __init__(self, limits: Callable[[], RenderBudget] | None = None) -> None:
        """`limits` makes the budget of each rendering (default: `RenderBudget()`)."""
        # optimized=False: the optimizer folds constant filter calls at compile time, so merely
        # loading `{{ 'x' | center(10 ** 9) }}` would allocate a gigabyte.
        # keep_trailing_newline: a YAML block (`content: |`) ends with a newline on purpose, and
        # a file written by a step should end with it too.
        self._env = _Sandbox(
            undefined=StrictUndefined,
            autoescape=False,
            optimized=False,
            keep_trailing_newline=True,
        )
        # lipsum is useless in a workflow and `lipsum(10**6)` is a cheap way to burn memory.
        self._env.globals.pop("lipsum", None)
        self._env.filters["fromjson"] = _from_json
        # Filters and tests are plain function calls in compiled code (no sandbox hook), so
        # each is wrapped to pay for itself and to check what it would build.
        filters: dict[str, Any] = dict(self._env.filters)
        tests: dict[str, Any] = dict(self._env.tests)
        for name, func in filters.items():
            self._env.filters[name] = render_limits.guard(name, func)
        for name, func in tests.items():
            self._env.tests[name] = render_limits.guard(name, func, check=False)
        self._templates: dict[str, _Compiled] = {}
        self._conditions: dict[str, TemplateExpression] = {}
        self._limits = limits or RenderBudget
        #: Renderings run here, off the event loop; made on first use.
        self._pool: ThreadPoolExecutor | None = None

    # -- compiling -------------------------------------------------------------------------

    def check_template(self, source: str) -> None:
        """Compile only, so a workflow file with a broken template is rejected at load time."""
        self._template(source)

    def check_condition(self, source: str) -> None:
        self._condition(source)

    def check_value(self, value: Any) -> None:
        """Compile every string inside `value` (dict values and list items; keys are literal)."""
        for text in _strings(value):
            self.check_template(text)

    def _template(self, source: str) -> _Compiled:
        cached = self._templates.get(source)
        if cached is not None:
            return cached
        try:
            template = self._env.from_string(source)
            expr = _single_expression(self._env.parse(source), strict=True)
            native = self._expression_from_node(expr) if expr is not None else None
        except Exception as exc:
            raise ExpressionError(source, _reason(exc)) from exc
        compiled = _Compiled(template, native)
        self._remember(self._templates, source, compiled)
        return compiled

    def _condition(self, source: str) -> TemplateExpression:
        """A condition is a bare expression; `{{ expr }}` is accepted too since people write it."""
        cached = self._conditions.get(source)
        if cached is not None:
            return cached
        try:
            if not source.strip():
                raise TemplateSyntaxError("a condition cannot be empty", 1)
            if source.lstrip().startswith("{{"):
                expr = _single_expression(self._env.parse(source), strict=False)
                if expr is None:
                    raise TemplateSyntaxError(
                        "a condition must be a single expression such as "
                        "'steps.fetch.output.status == 200'",
                        1,
                    )
                compiled = self._expression_from_node(expr)
            else:
                compiled = self._env.compile_expression(source, undefined_to_none=False)
        except Exception as exc:
            raise ExpressionError(source, _reason(exc)) from exc
        self._remember(self._conditions, source, compiled)
        return compiled

    def _expression_from_node(self, expr: nodes.Expr) -> TemplateExpression:
        # The same construction as Environment.compile_expression, from an already parsed node.
        body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
        template = self._env.from_string(nodes.Template(body, lineno=1))
        return TemplateExpression(template, False)

    @staticmethod
    def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value

    def references(self, source: str, *, condition: bool = False) -> list[tuple[str, str]]:
        """The `(root, name)` pairs a template or condition reads by a literal name.

        `input.city`, `input["city"]`, `steps.fetch.output` and `steps["my-step"]` give
        `("input", "city")`, `("steps", "fetch")`, ...; a computed key (`input[name]`) cannot be
        known before running and is left out, and so is a root the template assigns itself
        (`{% set input = ... %}`, a loop variable or a macro parameter of that name). Lets the
        loader say "input 'whoo' is not declared" before anything runs. Raises ExpressionError
        when the text does not compile.
        """
        try:
            tree: nodes.Node
            if condition and not source.lstrip().startswith("{{"):
                tree = Parser(self._env, source, state="variable").parse_expression()
            else:
                tree = self._env.parse(source)
        except Exception as exc:
            raise ExpressionError(source, _reason(exc)) from exc
        roots = {"input", "steps"}
        for name in tree.find_all(nodes.Name):
            if name.ctx != "load":
                roots.discard(name.name)
        found: list[tuple[str, str]] = []
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            key: object
            if isinstance(node, nodes.Getattr):
                base, key = node.node, node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                base, key = node.node, node.arg.value
            else:
                continue
            if not isinstance(base, nodes.Name) or base.name not in roots:
                continue
            if isinstance(key, str) and (base.name, key) not in found:
                found.append((base.name, key))
        return found

    # -- evaluating ------------------------------------------------------------------------

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside `value`; containers are rebuilt, other values kept.

        A string that is exactly one `{{ expr }}`, with nothing around it, yields the
        expression's own value when it is JSON-like (None, bool, int, float, str, list, dict with
        string keys), so `count: "{{ steps.a.output.n }}"` stays an int and
        `json: "{{ steps.a.output }}"` stays a dict. Any other value (a datetime, a range, ...)
        renders as text, exactly as it would inside a longer string, so tool arguments stay
        JSON-serialisable. Any text around the expression, whitespace and newlines included,
        is kept and makes the result a string: `"{{ n }}\n"` is `"3\n"`, never `3`.
        """
        return self._budgeted(self._limits(), self._render, value, context)

    def evaluate(self, condition: str, context: Mapping[str, Any]) -> bool:
        """Truthiness of `condition`; undefined values and sandbox violations raise, never pass."""
        return self._budgeted(self._limits(), self._evaluate, condition, context)

    async def arender(self, value: Any, context: Mapping[str, Any]) -> Any:
        """`render` in a worker thread, so the event loop keeps serving while it runs.

        Cancelling the caller (a step's `timeout`, a cancelled execution) stops the rendering
        at its next operation. Values without any template are copied right here.
        """
        if not _has_template(value):
            return self.render(value, context)
        return await self._off_loop(self._render, value, context)

    async def aevaluate(self, condition: str, context: Mapping[str, Any]) -> bool:
        """`evaluate` in a worker thread (see `arender`)."""
        result: bool = await self._off_loop(self._evaluate, condition, context)
        return result

    async def _off_loop(self, func: Callable[..., T], *args: Any) -> T:
        budget = self._limits()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hearth-render")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, partial(self._budgeted, budget, func, *args))
        try:
            return await future
        except asyncio.CancelledError:
            budget.cancelled = True
            raise

    @staticmethod
    def _budgeted(budget: RenderBudget, func: Callable[..., T], *args: Any) -> T:
        """Run `func` with `budget` as the budget of this thread's rendering."""
        variable = render_limits.active_budget()
        token = variable.set(budget)
        try:
            return func(*args)
        finally:
            variable.reset(token)

    def _render(self, value: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            return self._render_string(value, context)
        if isinstance(value, Mapping):
            return {key: self._render(item, context) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._render(item, context) for item in value]
        return value

    def _render_string(self, source: str, context: Mapping[str, Any]) -> Any:
        compiled = self._template(source)
        try:
            if compiled.native is not None:
                result = compiled.native(**context)
                native = _jsonlike(result)
                if native is not _NOT_JSON:
                    return native
            return _text(compiled.template, context)
        except Exception as exc:
            raise ExpressionError(source, _reason(exc)) from exc

    def _evaluate(self, condition: str, context: Mapping[str, Any]) -> bool:
        compiled = self._condition(condition)
        try:
            result = compiled(**context)
            _reject_undefined(result)
            return bool(result)
        except Exception as exc:
            raise ExpressionError(condition, _reason(exc)) from exc


def _text(template: Template, context: Mapping[str, Any]) -> str:
    """The template's text, refused as soon as it grows past the size limit."""
    parts: list[str] = []
    total = 0
    for chunk in template.root_render_func(template.new_context(dict(context))):
        total += len(chunk)
        check_size(total, "the rendered text")
        spend(1 + len(chunk) // 1000)
        parts.append(chunk)
    return "".join(parts)


def _has_template(value: Any) -> bool:
    return any("{{" in text or "{%" in text for text in _strings(value))


def _single_expression(template: nodes.Template, *, strict: bool) -> nodes.Expr | None:
    """The expression of a template that is exactly one `{{ expr }}`, else None.

    `strict` (templates): nothing may surround it, not even a newline, because that text is
    part of what the person wrote (`content: "{{ line }}\n"` appends a line, not a bare value);
    whitespace removed by Jinja's own `{{-`/`-}}` is gone before this looks. Not strict
    (conditions): surrounding whitespace is ignored, since a condition is never text.
    """
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    found: nodes.Expr | None = None
    for node in template.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            if node.data if strict else node.data.strip():
                return None
            continue
        if found is not None:
            return None
        found = node
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class _NotJson:
    """Marker for "this value has no faithful JSON form; render it as text instead"."""


_NOT_JSON: Any = _NotJson()


def _jsonlike(value: Any) -> Any:
    """A JSON-shaped copy of `value`, or `_NOT_JSON`; any Undefined inside raises."""
    if isinstance(value, Undefined):
        _fail(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # drops Markup and other str subclasses
    if isinstance(value, list | tuple):
        items = [_jsonlike(item) for item in value]
        return _NOT_JSON if any(item is _NOT_JSON for item in items) else items
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, Undefined):
                _fail(key)
            converted = _jsonlike(item)
            if not isinstance(key, str) or converted is _NOT_JSON:
                return _NOT_JSON
            result[str(key)] = converted
        return result
    return _NOT_JSON


def _reject_undefined(value: Any) -> None:
    """Raise if an Undefined hides in a condition's result, e.g. `[missing]` would be truthy."""
    if isinstance(value, Undefined):
        _fail(value)
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _reject_undefined(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _reject_undefined(key)
            _reject_undefined(item)


def _fail(value: Undefined) -> NoReturn:
    # Every Undefined raises its own error (with Jinja's hint) when turned into text.
    str(value)
    raise UndefinedError("undefined value")


def expression_context(
    *,
    input: Mapping[str, Any],
    steps: Mapping[str, Mapping[str, Any]],
    execution: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The names a template sees: `input`, `steps.<id>.status|output|error`, `execution`, `now`.

    Plain dicts are enough for dotted access (`steps.fetch.output.field`): the sandbox falls back
    from attributes to keys, and prefers keys for mappings (see `_Sandbox.getattr`). A step id
    with a hyphen needs subscript syntax: `steps["my-step"].output`. Copies are made so that
    later changes by the engine do not leak into an evaluation in progress.
    """
    return {
        "input": dict(input),
        "steps": {step_id: dict(state) for step_id, state in steps.items()},
        "execution": dict(execution),
        "now": now,
    }

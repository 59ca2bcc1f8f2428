"""How much work one rendering may do: an operation budget, a size cap and a time limit.

A template is a small program, and a workflow file can make it loop `{% for %}` inside
`{% for %}` a hundred million times, or build a 200 MB string with `'x'|center(200000000)`.
The sandbox (see `expressions._Sandbox`) reports every lookup, call, operator, filter, test and
loop iteration here, and this module:

- counts them against a budget (`max_ops`), so the same template always fails at the same
  point, whatever the machine's speed; bigger values cost more (one unit per 1000 items);
- refuses, before building it, any string or list longer than `max_chars`: the widths of
  `center`/`ljust`/`rjust`/`zfill`, `format` and `%` specs, `replace`, `join`, `*`, `+`, `~`;
- stops at a wall-clock deadline or when the caller gave up (the step's timeout, a cancel),
  checked between operations, for whatever the count does not foresee.

Rendering runs in a worker thread (`Expressions.arender`), so even a render that uses its whole
budget never holds up the gateway's event loop; the budget is what makes that thread finish.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext, Macro
from jinja2.utils import _PassArg

__all__ = [
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MAX_OPS",
    "DEFAULT_TIME_LIMIT_S",
    "BudgetCodeGenerator",
    "RenderBudget",
    "RenderLimitError",
    "active_budget",
    "charge",
    "check_call",
    "check_format_spec",
    "check_printf",
    "check_size",
    "guard",
    "spend",
]

#: Operations (lookups, calls, operators, filters, loop iterations) one rendering may use.
DEFAULT_MAX_OPS = 1_000_000
#: Longest string or list one operation may build, and longest rendered text.
DEFAULT_MAX_CHARS = 4_000_000
#: Wall-clock limit of one rendering when the step sets no shorter `timeout`.
DEFAULT_TIME_LIMIT_S = 5.0
#: Items of a built value that cost one operation.
_ITEMS_PER_OP = 1000
#: What a macro call costs: setting one up takes as long as a few dozen plain operations.
_MACRO_CALL_OPS = 20
#: Operations between two looks at the clock.
_CLOCK_EVERY = 256


class RenderLimitError(SecurityError):
    """A rendering went over its budget; `str()` says which limit, for the step's error."""


class RenderBudget:
    """The allowance of one rendering. Not thread-safe: one rendering, one thread."""

    __slots__ = ("cancelled", "deadline", "max_chars", "max_ops", "next_clock", "ops", "time_limit")

    def __init__(
        self,
        *,
        max_ops: int = DEFAULT_MAX_OPS,
        max_chars: int = DEFAULT_MAX_CHARS,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    ) -> None:
        self.max_ops = max_ops
        self.max_chars = max_chars
        self.time_limit = time_limit_s
        self.deadline = time.monotonic() + time_limit_s
        self.ops = 0
        self.next_clock = _CLOCK_EVERY
        #: Set from another thread when nobody waits for the result any more.
        self.cancelled = False

    def spend(self, amount: int = 1) -> None:
        self.ops += amount
        if self.ops > self.max_ops:
            raise RenderLimitError(
                f"over the render budget of {self.max_ops} operations "
                "(loop iterations, lookups, calls, filters; large values cost more)"
            )
        if self.ops >= self.next_clock:
            self.next_clock = self.ops + _CLOCK_EVERY
            self.check_clock()

    def check_clock(self) -> None:
        if self.cancelled:
            raise RenderLimitError("rendering was stopped (the step timed out or was cancelled)")
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {self.time_limit:g} s")


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("hearth_render_budget", default=None)
_FALLBACK_MAX_CHARS = DEFAULT_MAX_CHARS


def active_budget() -> ContextVar[RenderBudget | None]:
    """The context variable holding the budget of the rendering running in this context."""
    return _CURRENT


def spend(amount: int = 1) -> None:
    budget = _CURRENT.get()
    if budget is not None:
        budget.spend(amount)


def _max_chars() -> int:
    budget = _CURRENT.get()
    return budget.max_chars if budget is not None else _FALLBACK_MAX_CHARS


def check_size(size: int, what: str) -> None:
    """Refuse building `size` characters/items when that is over the limit."""
    limit = _max_chars()
    if size > limit:
        raise RenderLimitError(f"{what} would build {size} characters or items (limit {limit})")


def charge(value: Any) -> Any:
    """Account for a value an operation produced: its size is checked and paid for."""
    if isinstance(value, str | bytes | list | tuple | dict):
        size = len(value)
        if size >= _ITEMS_PER_OP:
            check_size(size, "an operation")
            spend(size // _ITEMS_PER_OP)
    return value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else 0


# -- formats ---------------------------------------------------------------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def check_printf(template: Any, values: Any) -> None:
    """`'%200000000d' % 1` (and `%*d`, and the `format` filter) must not pad past the limit."""
    if isinstance(template, bytes):
        template = template.decode("latin-1")
    if not isinstance(template, str):
        return
    args = values if isinstance(values, tuple) else (values,)
    index = 0
    for match in _PRINTF.finditer(template):
        if match.group(3) == "%":
            continue
        for part in (match.group(1), match.group(2)):
            if part is None:
                continue
            if part == "*":
                width = _int(args[index]) if index < len(args) else None
                index += 1
            else:
                width = int(part) if len(part) <= 9 else _max_chars() + 1
            if width is not None:
                check_size(abs(width), f"the format {match.group(0)!r}")
        index += 1


def check_format_spec(spec: str) -> None:
    """`'{:>200000000}'.format('a')`: a width or precision in a format spec over the limit."""
    for digits in _DIGITS.findall(spec):
        size = int(digits) if len(digits) <= 9 else _max_chars() + 1
        check_size(size, f"the format spec {spec[:40]!r}")


# -- method calls and filters ---------------------------------------------------------------

_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})


def check_call(func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a str/bytes method call that would build too much; the args to call with.

    `join` receives its items as a list (a generator argument can only be walked once).
    """
    owner = getattr(func, "__self__", None)
    if isinstance(func, Macro):
        spend(_MACRO_CALL_OPS)
        return args
    if isinstance(func, LoopContext):
        spend(_length(args[0]) if args else 0)  # a recursive loop's next level
        return args
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(func, "__name__", "")
    if name in _PADDING and args:
        width = _int(args[0])
        if width is not None:
            check_size(width, f"{name}({width})")
    elif name == "replace" and len(args) >= 2:
        check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = list(args[0]) if isinstance(args[0], Iterable) else args[0]
        check_join(owner, items)
        return (items, *args[1:])
    elif name == "expandtabs":
        size = _int(args[0] if args else kwargs.get("tabsize", 8)) or 0
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        check_size(len(owner) + tabs * size, "expandtabs")
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_length(v) for v in args[0].values()), default=1)
        check_size(len(owner) * max(longest, 1), "translate")
    return args


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """`replace` grows the text by (len(new) - len(old)) per occurrence; counted first."""
    if not isinstance(text, str | bytes) or not isinstance(old, type(text)):
        return
    if not isinstance(new, type(text)):
        return
    found: int = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    limit = _int(count)
    if limit is not None and limit >= 0:
        found = min(found, limit)
    check_size(len(text) + found * (len(new) - len(old)), "replace")


def check_join(separator: Any, items: Any) -> None:
    if not isinstance(items, list | tuple):
        return
    size = _length(separator) * max(len(items) - 1, 0)
    size += sum(len(item) for item in items if isinstance(item, str | bytes))
    check_size(size, "join")


def _check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Pre-checks of the built-in filters that can build more than they are given."""
    value = args[0] if args else None
    rest = args[1:]
    if name == "center":
        width = _int(rest[0] if rest else kwargs.get("width", 80))
        if width is not None:
            check_size(width, f"center({width})")
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        per_line = len(width) if isinstance(width, str) else (_int(width) or 0)
        text = str(value) if value is not None else ""
        check_size(len(text) + (text.count("\n") + 1) * per_line, "indent")
    elif name == "wordwrap":
        wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        check_size(_length(value) * (1 + _length(wrap)), "wordwrap")
    elif name == "format":
        check_printf(value, kwargs or rest)
    elif name == "replace" and len(rest) >= 2:
        check_replace(str(value), rest[0], rest[1], rest[2] if len(rest) > 2 else -1)
    elif name == "join" and isinstance(value, Iterable) and not isinstance(value, str):
        items = list(value)  # walked twice (here and by the filter), so made a list once
        separator = rest[0] if rest else kwargs.get("d", "")
        check_join(separator, [str(item) for item in items])
        return (items, *rest)
    return args


def guard(name: str, func: Callable[..., Any], *, check: bool = True) -> Callable[..., Any]:
    """`func` (a filter or test) paying one operation per call and for what it builds."""
    passes_arg = _PassArg.from_obj(func) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        spend()
        if check:
            own = _check_filter(name, args[1:] if passes_arg else args, kwargs)
            args = (*args[:1], *own) if passes_arg else own
        return charge(func(*args, **kwargs))

    return guarded


# -- loops and concatenation ----------------------------------------------------------------


def iterate(iterable: Any) -> Iterator[Any]:
    """A `{% for %}` loop's items, one operation each."""
    budget = _CURRENT.get()
    for item in iterable:
        if budget is not None:
            budget.spend()
        yield item


def concat(parts: tuple[Any, ...]) -> str:
    """`a ~ b ~ c`, refused before joining when the result would be too long."""
    texts = [str(part) for part in parts]
    check_size(sum(len(text) for text in texts), "'~'")
    joined = "".join(texts)
    charge(joined)
    return joined


class BudgetCodeGenerator(CodeGenerator):
    """Jinja's code generator with loop iterations and `~` routed through this module.

    Neither has a sandbox hook of its own: a `{% for %}` over a list built by `range` runs as a
    plain Python loop, and `~` as a plain `str.join`.
    """

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not getattr(node, "hearth_budgeted", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("hearth_iterate"), [node.iter], [], None, None
            )
            node.hearth_budgeted = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.hearth_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

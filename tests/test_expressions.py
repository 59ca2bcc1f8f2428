"""Templates and conditions: native values, strict undefined names, and a sandbox that holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.workflows.expressions import ExpressionError, Expressions, expression_context

NOW = datetime(2030, 1, 31, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def expressions() -> Expressions:
    return Expressions()


def make_context() -> dict[str, Any]:
    return expression_context(
        input={"name": "Ada", "count": 3, "tags": ["a", "b"], "opts": {"deep": {"x": 1}}},
        steps={
            "fetch": {
                "status": "succeeded",
                "output": {"status": 200, "json": {"n": 5, "items": [1, 2]}, "body": "{{ 7 * 6 }}"},
                "error": None,
            },
            "broken": {"status": "failed", "output": None, "error": "boom"},
            "items": {"status": "succeeded", "output": {"update": "u", "keys": [1]}, "error": None},
            "my-step": {"status": "succeeded", "output": 1, "error": None},
        },
        execution={
            "id": "ex-1",
            "workflowId": "daily",
            "triggeredBy": "cli",
            "scheduledFor": None,
        },
        now=NOW,
    )


@pytest.fixture
def ctx() -> dict[str, Any]:
    return make_context()


# -- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ input.count }}", 3),
        ("{{- input.count -}}", 3),
        ("  {{- input.count -}}\n", 3),
        ("{{ steps.fetch.output.json }}", {"n": 5, "items": [1, 2]}),
        ("{{ steps.fetch.output.json.items }}", [1, 2]),
        ("{{ input.tags }}", ["a", "b"]),
        ("{{ input.count > 2 }}", True),
        ("{{ none }}", None),
        ("{{ 1.5 }}", 1.5),
        ("{{ input.name }}", "Ada"),
        ("{{ ('a', 1) }}", ["a", 1]),
        ("{{ steps['my-step'].output }}", 1),
    ],
)
def test_single_expression_keeps_its_native_value(
    expressions: Expressions, ctx: dict[str, Any], template: str, expected: Any
) -> None:
    result = expressions.render(template, ctx)
    assert result == expected
    assert type(result) is type(expected) or isinstance(expected, tuple)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ input.name }}!", "Hello Ada!"),
        ("{{ input.count }} items", "3 items"),
        ("{{ input.count }}{{ input.count }}", "33"),
        ("{% if input.count > 2 %}many{% else %}few{% endif %}", "many"),
        ("{{ input.tags | join(',') }}", "a,b"),
        ("{{ input.opts | tojson }}", '{"deep": {"x": 1}}'),
        ("{{ execution.workflowId }}/{{ execution.id }}", "daily/ex-1"),
        ("{{ now.strftime('%Y-%m-%d') }}", "2030-01-31"),
        ("plain text", "plain text"),
        ("line {{ input.count }}\n", "line 3\n"),
        # Text around a single expression is kept, whitespace and newlines included (issue 10).
        ("{{ input.count }}\n", "3\n"),
        ("  {{ input.count }}\n", "  3\n"),
        (" {{ input.count }}", " 3"),
        ("{{ execution.id }}\n", "ex-1\n"),
        ("{{ input.tags }}\n", "['a', 'b']\n"),
        ("{{ none }} ", "None "),
        ("{% if true %}\nyes\n{% endif %}\n", "\nyes\n\n"),
        ("", ""),
    ],
)
def test_other_templates_render_to_text(
    expressions: Expressions, ctx: dict[str, Any], template: str, expected: str
) -> None:
    assert expressions.render(template, ctx) == expected


def test_non_json_values_render_as_text(expressions: Expressions, ctx: dict[str, Any]) -> None:
    assert expressions.render("{{ now }}", ctx) == str(NOW)
    assert expressions.render("{{ range(3) }}", ctx) == "range(0, 3)"
    assert expressions.render("{{ [now] }}", ctx) == f"[{NOW!r}]"


def test_render_walks_dicts_and_lists_and_keeps_keys(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    value = {
        "url": "https://x/{{ input.name }}",
        "count": "{{ steps.fetch.output.json.n }}",
        "{{ key }}": ["{{ input.count }}", 7, None, True, {"deep": "{{ input.opts.deep.x + 1 }}"}],
        "headers": {"x-run": "{{ execution.id }}"},
    }
    assert expressions.render(value, ctx) == {
        "url": "https://x/Ada",
        "count": 5,
        "{{ key }}": [3, 7, None, True, {"deep": 2}],
        "headers": {"x-run": "ex-1"},
    }


def test_rendered_output_is_not_rendered_again(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    assert expressions.render("{{ steps.fetch.output.body }}", ctx) == "{{ 7 * 6 }}"
    assert expressions.render("got {{ steps.fetch.output.body }}", ctx) == "got {{ 7 * 6 }}"


def test_native_values_are_copies(expressions: Expressions, ctx: dict[str, Any]) -> None:
    result = expressions.render("{{ steps.fetch.output.json }}", ctx)
    result["n"] = 99
    assert ctx["steps"]["fetch"]["output"]["json"]["n"] == 5


def test_keys_win_over_dict_methods(expressions: Expressions, ctx: dict[str, Any]) -> None:
    assert expressions.render("{{ steps.items.output.update }}", ctx) == "u"
    assert expressions.render("{{ steps.items.output.keys }}", ctx) == [1]
    assert expressions.evaluate("steps.items.status == 'succeeded'", ctx)


def test_safe_extra_filter_fromjson(expressions: Expressions, ctx: dict[str, Any]) -> None:
    assert expressions.render("{{ '{\"a\": [1]}' | fromjson }}", ctx) == {"a": [1]}


# -- conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("input.count > 2", True),
        ("input.count > 5", False),
        ("steps.fetch.status == 'succeeded'", True),
        ("steps.broken.error", True),
        ("steps.broken.output", False),
        ("'a' in input.tags", True),
        ("input.missing is defined", False),
        ("input.missing | default(3) == 3", True),
        ("{{ input.count == 3 }}", True),
        ("false", False),
        ("[]", False),
    ],
)
def test_conditions(
    expressions: Expressions, ctx: dict[str, Any], condition: str, expected: bool
) -> None:
    assert expressions.evaluate(condition, ctx) is expected


@pytest.mark.parametrize(
    "condition",
    [
        "missing",
        "not missing",
        "missing == missing",
        "input.nope",
        "steps.never_ran.status == 'failed'",
        "[missing]",
        "{'a': missing}",
        "(missing,)",
        "missing or true",
    ],
)
def test_undefined_never_evaluates_true(
    expressions: Expressions, ctx: dict[str, Any], condition: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.evaluate(condition, ctx)
    assert caught.value.expression == condition
    assert str(caught.value).startswith(f"expression {condition!r}: ")


def test_undefined_in_template_names_the_template(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.render({"a": ["ok", "Hi {{ inptu.name }}"]}, ctx)
    assert caught.value.expression == "Hi {{ inptu.name }}"
    assert "inptu" in caught.value.reason
    with pytest.raises(ExpressionError, match="nope"):
        expressions.render("{{ steps.fetch.output.nope }}", ctx)
    with pytest.raises(ExpressionError, match="missing"):
        expressions.render("{{ [1, missing] }}", ctx)


@pytest.mark.parametrize(
    "source", ["{{ x }", "{% if %}", "{{ }}", "{% for x in y %}", "{% do x.append(1) %}"]
)
def test_syntax_errors_are_reported_at_check_time(expressions: Expressions, source: str) -> None:
    with pytest.raises(ExpressionError, match="syntax error") as caught:
        expressions.check_template(source)
    assert caught.value.expression == source


@pytest.mark.parametrize(
    "source", ["", "   ", "a ==", "a b", "{{ a }} and {{ b }}", "{% if a %}1{% endif %}"]
)
def test_bad_conditions_are_reported_at_check_time(expressions: Expressions, source: str) -> None:
    with pytest.raises(ExpressionError):
        expressions.check_condition(source)


def test_check_value_checks_nested_strings_but_not_keys(expressions: Expressions) -> None:
    expressions.check_value({"{{ bad": ["{{ ok }}", 1, {"x": "fine"}]})
    with pytest.raises(ExpressionError) as caught:
        expressions.check_value({"a": [{"b": "{{ oops }"}]})
    assert caught.value.expression == "{{ oops }"


def test_runtime_errors_become_expression_errors(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    with pytest.raises(ExpressionError, match="ZeroDivisionError"):
        expressions.render("{{ 1 / 0 }}", ctx)
    with pytest.raises(ExpressionError, match="TypeError"):
        expressions.evaluate("input.name > 3", ctx)
    with pytest.raises(ExpressionError):
        expressions.render("{% include 'x.html' %}", ctx)


def test_long_sources_are_shortened_in_messages(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    source = "x" * 500 + "{{ missing }}"
    with pytest.raises(ExpressionError) as caught:
        expressions.render(source, ctx)
    assert caught.value.source == source
    assert len(caught.value.expression) <= 160
    assert len(str(caught.value)) < 400


# -- the sandbox -------------------------------------------------------------------------------

ESCAPES = [
    "''.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0]",
    "().__class__.__bases__[0].__subclasses__()",
    "input|attr('__class__')",
    "''|attr('__class__')|attr('__mro__')",
    "'{0.__class__}'.format(1)",
    "'{0.__class__.__mro__}'.format(input)",
    "'{x.__class__}'.format_map({'x': 1})",
    "('{0.__class__}'|attr('format'))(1)",
    "'%s'|format(''.__class__)",
    "'%s'|format(input.__class__.__mro__)",
    "lipsum.__globals__",
    "lipsum.__globals__['os']",
    "cycler.__init__.__globals__",
    "joiner.__init__.__globals__",
    "namespace.__init__.__globals__",
    "self.__init__.__globals__",
    "self._TemplateReference__context",
    "config",
    "config.items()",
    "request",
    "request.application",
    "range(10**9)|list",
    "range(10**9)",
    "input.tags.append(1)",
    "input.tags.pop()",
    "input.opts.update({'a': 1})",
    "input.opts.clear()",
    "input.opts.setdefault('a', 1)",
    "input['__class__']",
    "input.tags.__len__()",
    "now.__class__",
    "dict.__base__",
    "2 ** (10 ** 10)",
    "'a' * 10 ** 9",
    "[0] * 10 ** 9",
    "''.__class__ is undefined",
    "''.__class__ is defined",
    "(''|attr('__class__')) | default('safe')",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_escape_attempts_fail_in_templates(
    expressions: Expressions, ctx: dict[str, Any], escape: str
) -> None:
    template = "{{ " + escape + " }}"
    with pytest.raises(ExpressionError) as caught:
        expressions.render(template, ctx)
    assert caught.value.expression == template
    with pytest.raises(ExpressionError):
        expressions.render("x " + template, ctx)


@pytest.mark.parametrize("escape", ESCAPES)
def test_escape_attempts_never_pass_as_conditions(
    expressions: Expressions, ctx: dict[str, Any], escape: str
) -> None:
    with pytest.raises(ExpressionError):
        expressions.evaluate(escape, ctx)


def test_sandbox_violation_message_says_so(expressions: Expressions, ctx: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match="sandbox") as caught:
        expressions.evaluate("''.__class__", ctx)
    assert "__class__" in caught.value.reason
    with pytest.raises(ExpressionError, match="MAX_RANGE"):
        expressions.render("{{ range(10**9) | list }}", ctx)


def test_mutation_leaves_the_context_unchanged(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    for attempt in ("{{ input.tags.append(1) }}", "{{ input.opts.update({'a': 1}) }}"):
        with pytest.raises(ExpressionError):
            expressions.render(attempt, ctx)
    assert ctx["input"]["tags"] == ["a", "b"]
    assert ctx["input"]["opts"] == {"deep": {"x": 1}}


def test_statements_in_templates_only_touch_locals(
    expressions: Expressions, ctx: dict[str, Any]
) -> None:
    template = "{% set input = 1 %}{% set ns = namespace(n=0) %}{% set ns.n = 2 %}{{ ns.n }}"
    assert expressions.render(template, ctx) == "2"
    assert expressions.render("{{ input.count }}", ctx) == 3


def test_loading_does_not_evaluate_constants(expressions: Expressions) -> None:
    # Compile-time constant folding would otherwise compute these while loading the file.
    expressions.check_template("{{ 'x' | center(10 ** 9) }}")
    expressions.check_template("{{ 2 ** (10 ** 10) }}")
    expressions.check_condition("2 ** (10 ** 10) > 1")


def test_hyphenated_ids_need_subscripts(expressions: Expressions, ctx: dict[str, Any]) -> None:
    assert expressions.render('{{ steps["my-step"].status }}', ctx) == "succeeded"
    with pytest.raises(ExpressionError):
        expressions.render("{{ steps.my-step.status }}", ctx)


# -- arbitrary text ----------------------------------------------------------------------------

JINJA_PIECES = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        " if ",
        " for ",
        " in ",
        "endif",
        "endfor",
        "input",
        "steps",
        ".",
        "__class__",
        "|",
        "attr",
        "(",
        ")",
        "[",
        "]",
        "'",
        '"',
        "format",
        "1",
        "0",
        "/",
        "*",
        "**",
        "~",
        "-",
        "missing",
        "none",
        " ",
    ]
)
ARBITRARY = st.one_of(st.text(max_size=60), st.lists(JINJA_PIECES, max_size=20).map("".join))


@settings(max_examples=300, deadline=None)
@given(source=ARBITRARY)
def test_arbitrary_text_only_ever_raises_expression_error(source: str) -> None:
    expressions = Expressions()
    context = make_context()
    for run in (
        lambda: expressions.render(source, context),
        lambda: expressions.render({"k": [source]}, context),
        lambda: expressions.evaluate(source, context),
        lambda: expressions.check_template(source),
        lambda: expressions.check_condition(source),
    ):
        failure: ExpressionError | None = None
        result: Any = None
        try:
            result = run()
        except ExpressionError as exc:
            failure = exc
        if failure is not None:
            assert failure.source == source
        else:
            assert result is None or isinstance(result, bool | int | float | str | list | dict)


# -- render limits (issue 10 item 9) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
            "over the render budget of 1000000 operations",
        ),
        ("{{ 'x'|center(200000000) }}", "center(200000000) would build 200000000 characters"),
        ("{{ 'x'.center(200000000) }}", "center(200000000) would build"),
        ("{{ '{:>200000000}'.format('a') }}", "the format spec '>200000000' would build"),
        ("{{ '{:{w}}'.format('a', w=200000000) }}", "the format spec '200000000' would build"),
        ("{{ '%200000000d' % 1 }}", "the format '%200000000d' would build"),
        ("{{ '%*d' % (200000000, 1) }}", "the format '%*d' would build"),
        ("{{ '%200000000s'|format('a') }}", "the format '%200000000s' would build"),
        ("{{ ('x' * 1000000)|replace('x', 'x' * 200) }}", "replace would build 200000000"),
        ("{{ ('x' * 1000000).replace('x', 'yy' * 100) }}", "replace would build 200000000"),
        ("{{ range(100000)|join('x' * 1000) }}", "join would build"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~' would build 4194304",
        ),
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}",
            "over the render budget",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "the rendered text would"),
    ],
)
async def test_renders_over_their_limits_fail_with_the_reason(
    expressions: Expressions, template: str, reason: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        await expressions.arender({"content": template}, make_context())
    assert caught.value.reason.startswith("render limit: ")
    assert reason in caught.value.reason
    # The synchronous path holds to the same limits.
    with pytest.raises(ExpressionError, match="render limit"):
        expressions.render(template, make_context())


async def test_conditions_have_the_same_budget(expressions: Expressions) -> None:
    # Whichever limit comes first (operations or time) depends on the machine; both stop it.
    with pytest.raises(ExpressionError, match="render limit: "):
        await expressions.aevaluate(
            "range(100000)|map('string')|map('length')|map('string')|map('length')"
            "|map('string')|map('length')|map('string')|map('length')|map('string')"
            "|map('length')|map('string')|map('length')|sum > 0",
            make_context(),
        )


async def test_ordinary_templates_stay_within_the_limits(expressions: Expressions) -> None:
    ctx = make_context()
    text = await expressions.arender("{% for i in range(20000) %}{{ i }},{% endfor %}", ctx)
    assert text.startswith("0,1,2,")
    assert text.endswith("19999,")
    padded = await expressions.arender("{{ 'x'|center(9) }}|{{ '%5d' % 42 }}", ctx)
    assert padded == "    x    |   42"
    assert await expressions.arender("{{ '{:>4}'.format('ab') }}", ctx) == "  ab"
    assert await expressions.aevaluate("steps.fetch.output.status == 200", ctx)
    assert await expressions.arender({"n": "{{ input.count }}", "k": 7}, ctx) == {"n": 3, "k": 7}

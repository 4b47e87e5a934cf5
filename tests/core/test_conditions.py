"""The rule expression language: numpy semantics, absent values, and what it refuses to compile."""

import ast
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.conditions import Compiler, ConditionError, Program

NAN = np.nan
KINDS = {"x": "number", "y": "number", "b": "bool", "f": "flag", "t": "text"}
OPTIONS = {"t": ("front", "back", "both")}
COMPILER = Compiler(KINDS, frozenset({"HD001", "HD002", "HD003"}), OPTIONS)


def context() -> dict:
    """Four rows: numbers with one absent, a bool with one absent, a text (an enum's codes, as
    in columns.py) with one absent."""
    return {
        "x": np.array([1.0, 3.0, 5.0, NAN]),
        "y": np.array([2.0, 3.0, NAN, 4.0]),
        "b": np.array([1.0, 0.0, NAN, 1.0]),
        "f": np.array([True, False, True, False]),
        "t": np.array([0.0, 2.0, 1.0, NAN]),  # front, both, back, absent
        # whether each rule fired on each row, as a program standing alone reads fired()
        "fired:HD001": np.array([True, False, False, False]),
        "fired:HD002": np.array([False, False, True, False]),
        "fired:HD003": np.array([False] * 4),
    }


def cond(text: str) -> list[bool]:
    result = np.broadcast_to(COMPILER.condition(text)(context()), (4,))
    assert result.dtype == bool
    return result.tolist()


def value(text: str) -> list[float]:
    return np.broadcast_to(COMPILER.value(text)(context()), (4,)).tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x < 3", [True, False, False, False]),
        ("x <= 3", [True, True, False, False]),
        ("x > 3", [False, False, True, False]),
        ("x >= 3", [False, True, True, False]),
        ("x == 3", [False, True, False, False]),
        ("3 > x", [True, False, False, False]),
        ("x < y", [True, False, False, False]),
    ],
)
def test_comparisons_with_an_absent_number_are_false(text, expected):
    assert cond(text) == expected


def test_not_equal_and_not_in_with_an_absent_value_are_false_too():
    assert cond("x != 3") == [True, False, True, False]
    assert cond("t not in ('front', 'both')") == [False, False, True, False]


def test_a_bool_field_is_true_only_when_given_as_true():
    assert cond("b") == [True, False, False, True]
    assert cond("b == true") == [True, False, False, True]
    assert cond("b == false") == [False, True, False, False]


def test_not_of_an_absent_bool_is_true():
    assert cond("not b") == [False, True, True, False]


def test_not_and_or_combine_masks():
    assert cond("not f") == [False, True, False, True]
    assert cond("f and x > 2") == [False, False, True, False]
    assert cond("f or x == 3") == [True, True, True, False]
    assert cond("x < 2 or x > 4 or missing(x)") == [True, False, True, True]
    assert cond("not (x >= 3)") == [True, False, False, True]


def test_in_a_tuple_of_texts_matches_any_of_them():
    assert cond("t in ('front', 'both')") == [True, True, False, False]
    assert cond("t == 'back'") == [False, False, True, False]


def test_in_a_tuple_of_numbers_matches_any_of_them():
    assert cond("x in (1, 5)") == [True, False, True, False]


def test_chained_comparisons_hold_only_when_every_link_holds():
    assert cond("1 < x <= 3") == [False, True, False, False]
    assert cond("1 <= x < 5") == [True, True, False, False]
    assert cond("0 < x < y") == [True, False, False, False]


def test_missing_is_true_for_absent_numbers_bools_and_texts():
    assert cond("missing(x)") == [False, False, False, True]
    assert cond("missing(b)") == [False, False, True, False]
    assert cond("missing(t)") == [False, False, False, True]


def test_max_and_min_give_numbers_for_bounds():
    assert value("max(4, x)") == [4.0, 4.0, 5.0, 4.0]
    assert value("min(4, x)") == [1.0, 3.0, 4.0, 4.0]
    assert value("max(x, y)") == [2.0, 3.0, 5.0, 4.0]


def test_arithmetic_and_constants_give_numbers():
    assert value("x + 1") == [2.0, 4.0, 6.0, pytest.approx(NAN, nan_ok=True)]
    assert value("x - 2 * y")[:2] == [-3.0, -3.0]
    assert value("-x")[:3] == [-1.0, -3.0, -5.0]
    assert value("6") == [6.0] * 4


def test_arithmetic_feeds_comparisons():
    assert cond("x >= y - 2") == [True, True, False, False]


def test_fired_is_true_where_any_named_rule_fired():
    assert cond("fired(HD001)") == [True, False, False, False]
    assert cond("fired(HD001, HD002)") == [True, False, True, False]
    assert cond("not fired(HD001, HD002, HD003)") == [False, True, False, True]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("z < 3", id="unknown-name"),
        pytest.param("x < z", id="unknown-name-on-the-right"),
        pytest.param("x.real < 3", id="attribute-access"),
        pytest.param("__import__('os')", id="dunder-import"),
        pytest.param("open('rules.toml')", id="unknown-function"),
        pytest.param("(lambda: True)()", id="lambda-call"),
        pytest.param("lambda: x", id="lambda"),
        pytest.param("x[0] < 3", id="subscript"),
        pytest.param("x ** 2 > 3", id="power"),
        pytest.param("x / 2 > 3", id="division"),
        pytest.param("x is None", id="is-operator"),
        pytest.param("t in ['front']", id="in-a-list"),
        pytest.param("x if f else y", id="conditional-expression"),
        pytest.param("[v for v in x]", id="comprehension"),
        pytest.param("max(1, 2, 3) > 2", id="max-of-three"),
        pytest.param("missing()", id="missing-of-nothing"),
        pytest.param("fired(HD099)", id="fired-unknown-rule"),
        pytest.param("fired('HD001')", id="fired-string"),
        pytest.param("fired()", id="fired-of-nothing"),
        pytest.param("x < 3 and", id="syntax-error"),
        pytest.param("x = 3", id="assignment"),
        pytest.param("x < None", id="none-constant"),
        pytest.param("x < b'3'", id="bytes-constant"),
        pytest.param("true(x)", id="calling-a-name"),
    ],
)
def test_anything_outside_the_language_fails_at_compile_time(text):
    with pytest.raises(ConditionError):
        COMPILER.condition(text)


@pytest.mark.parametrize(
    "text", ["t < 3", "t + 1 > 2", "x - t > 0", "max(t, 1) > 0", "t == t", "t == x", "t < 'back'"]
)
def test_mixing_text_and_numbers_fails_at_compile_time(text):
    with pytest.raises(ConditionError):
        COMPILER.condition(text)


@pytest.mark.parametrize(
    "text",
    ["x", "x + 1", "max(x, 8)", "t", "'front'", "3", "-x"],
)
def test_a_non_boolean_is_not_a_condition(text):
    with pytest.raises(ConditionError, match="not a condition"):
        COMPILER.condition(text)


@pytest.mark.parametrize("text", ["x and f", "f or y", "not x", "not t"])
def test_a_non_boolean_cannot_be_combined_as_one(text):
    with pytest.raises(ConditionError, match="not true or false"):
        COMPILER.condition(text)


@pytest.mark.parametrize("text", ["x < 3", "f", "b", "missing(x)", "t"])
def test_a_condition_or_text_is_not_a_bound(text):
    with pytest.raises(ConditionError, match="not a number"):
        COMPILER.value(text)


def test_a_compiled_condition_is_reusable_across_contexts():
    compiled = COMPILER.condition("x >= 3")
    assert compiled({"x": np.array([3.0])}).tolist() == [True]
    assert compiled({"x": np.array([2.0, 4.0, NAN])}).tolist() == [False, True, False]


def test_a_text_compared_with_an_option_it_never_has_fails_at_compile_time():
    compiler = Compiler(KINDS, options=OPTIONS)
    assert compiler.condition("t in ('front', 'both')")(context()).tolist() == [
        True, True, False, False,
    ]  # fmt: skip
    for text in ("t == 'frnt'", "t in ('front', 'sideways')", "'calf' != t"):
        with pytest.raises(ConditionError, match="is never"):
            compiler.condition(text)


def test_a_program_computes_each_shared_part_once_and_answers_every_key():
    trees = [
        COMPILER.condition_tree("x >= 3 and f"),
        COMPILER.condition_tree("x >= 3 or missing(y)"),
        COMPILER.value_tree("max(x, 4)"),
    ]
    program = Program(trees)
    assert [step[0] for step in program.steps].count(np.greater_equal) == 1
    one, two, bound = program.run(context())
    assert one.tolist() == [False, False, True, False]
    assert two.tolist() == [False, True, True, False]
    assert bound.tolist() == [4.0, 4.0, 5.0, 4.0]


def test_a_program_reads_the_context_it_is_given_each_time():
    """A stage's program reads the values as they stand when it runs: a later stage rewriting a
    value (the range) is read afresh, never from an earlier computation."""
    program = Program([COMPILER.condition_tree("x >= 3")])
    before, after = context(), {**context(), "x": np.array([9.0, 0.0, 9.0, 0.0])}
    assert program.run(before)[0].tolist() == [False, True, True, False]
    assert program.run(after)[0].tolist() == [True, False, True, False]


def test_a_program_of_constants_gives_a_number():
    (value_,) = Program([COMPILER.value_tree("max(8, 6)")]).run(context())
    assert value_ == 8.0


# Random conditions, against a row-by-row reading of the language's rules


def _atoms() -> st.SearchStrategy[str]:
    number = st.sampled_from(["1", "3", "4.5"])
    op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    return st.one_of(
        st.builds(lambda n, o, k: f"{n} {o} {k}", st.sampled_from(["x", "y"]), op, number),
        st.sampled_from(["x < y", "b", "not b", "f", "missing(x)", "missing(t)"]),
        st.sampled_from(["t in ('front', 'both')", "t not in ('back',)", "t == 'front'"]),
    )


conditions = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=8,
)


def _row_value(text: str, row: dict) -> bool:
    """The documented semantics, one row at a time in plain Python: a comparison with an absent
    value is false (so `!=` and `not in` are too), `not` negates, a bool is true when given as
    true."""
    tree = ast.parse(text, mode="eval").body

    def value(node: ast.expr) -> object:
        if isinstance(node, ast.Name):
            return row[node.id]
        assert isinstance(node, ast.Constant)
        if isinstance(node.value, str):  # an option, as its code
            return float(OPTIONS["t"].index(node.value))
        return node.value

    def absent(v: object) -> bool:
        return isinstance(v, float) and math.isnan(v)

    def truth(node: ast.expr) -> bool:
        if isinstance(node, ast.BoolOp):
            parts = [truth(v) for v in node.values]
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.UnaryOp):
            return not truth(node.operand)
        if isinstance(node, ast.Name):
            return row[node.id] == 1
        if isinstance(node, ast.Call):
            return absent(value(node.args[0]))
        assert isinstance(node, ast.Compare)
        left, (op,), (right,) = value(node.left), node.ops, node.comparators
        if isinstance(op, ast.In | ast.NotIn):
            options = [value(e) for e in right.elts]  # type: ignore[attr-defined]
            hit = left in options
            return hit if isinstance(op, ast.In) else (not hit and not absent(left))
        other = value(right)
        if absent(left) or absent(other):
            return False
        return {ast.Lt: lambda: left < other, ast.LtE: lambda: left <= other,
                ast.Gt: lambda: left > other, ast.GtE: lambda: left >= other,
                ast.Eq: lambda: left == other, ast.NotEq: lambda: left != other,
                }[type(op)]()  # type: ignore[operator]  # fmt: skip

    return truth(tree)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(conditions, min_size=1, max_size=6))
def test_a_program_of_random_conditions_agrees_with_a_row_by_row_reading(texts):
    ctx = context()
    trees = [COMPILER.condition_tree(text) for text in texts]
    out = Program(trees).run(ctx)
    for k, text in enumerate(texts):
        got = np.broadcast_to(np.asarray(out[k], dtype=bool), (4,)).tolist()
        rows = [{name: ctx[name][i].item() for name in KINDS} for i in range(4)]
        assert got == [_row_value(text, row) for row in rows], text

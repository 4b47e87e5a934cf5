"""The request schema refuses what the API refuses, keyed by field path."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from service.cli import _parse
from service.core.errors import InvalidInput
from service.core.fields import BY_PATH, FIELDS
from service.core.schema import load_request, request_schema
from tests.strategies import JSON, invalid_values, put, requests

BASE = {"footwear": {"current_drop_mm": 8}}
NUMERIC = [f for f in FIELDS if f.kind in ("number", "count", "severity")]
SEVERITY = [f for f in FIELDS if f.kind == "severity"]
BOOLS = [f for f in FIELDS if f.kind == "bool"]
ENUMS = [f for f in FIELDS if f.kind == "enum"]
GROUPS = sorted({f.group for f in FIELDS if "." in f.path})
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def errors_of(body):
    with pytest.raises(InvalidInput) as caught:
        load_request(body)
    return caught.value.errors


def assert_only_path_refused(body, path):
    errors = errors_of(body)
    assert list(errors) == [path], errors
    assert errors[path] and all(isinstance(m, str) and m for m in errors[path])


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.path)
def test_a_bool_where_a_number_goes_is_refused_at_its_path(field):
    assert_only_path_refused(put(BASE, field.path, True), field.path)
    assert_only_path_refused(put(BASE, field.path, False), field.path)


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.path)
def test_a_numeric_string_is_refused_at_its_path(field):
    assert_only_path_refused(put(BASE, field.path, f"{field.lo:g}"), field.path)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.path)
def test_nan_and_infinity_are_refused_at_their_path(field, value):
    assert_only_path_refused(put(BASE, field.path, value), field.path)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_json_text_are_refused_by_the_cli_parser(literal):
    text = '{"footwear": {"current_drop_mm": LITERAL}}'.replace("LITERAL", literal)
    with pytest.raises(InvalidInput) as caught:
        _parse(text)
    assert caught.value.errors
    assert literal.lstrip("-") in str(caught.value)


def test_a_number_that_overflows_to_infinity_in_json_text_is_refused_at_its_path():
    body = _parse('{"footwear": {"current_drop_mm": 8}, "person": {"age_years": 1e400}}')
    assert_only_path_refused(body, "person.age_years")


def test_a_huge_integer_is_refused_at_its_path_not_crashed_on():
    body = _parse('{"footwear": {"current_drop_mm": 1' + "0" * 400 + "}}")
    assert_only_path_refused(body, "footwear.current_drop_mm")


@pytest.mark.parametrize("field", SEVERITY, ids=lambda f: f.path)
def test_a_fractional_severity_is_refused_at_its_path(field):
    assert_only_path_refused(put(BASE, field.path, 3.5), field.path)


def test_a_whole_float_severity_is_accepted_as_the_integer_it_is():
    assert load_request(put(BASE, "symptoms.achilles_pain", 3.0))["symptoms"]["achilles_pain"] == 3


def test_a_fractional_sprain_count_is_refused():
    assert_only_path_refused(put(BASE, "history.ankle_sprains_past_2_years", 1.5),
                             "history.ankle_sprains_past_2_years")  # fmt: skip


@pytest.mark.parametrize("value", [1, 0, "true", 1.0, None])
@pytest.mark.parametrize("field", BOOLS, ids=lambda f: f.path)
def test_anything_but_true_or_false_is_refused_for_a_boolean(field, value):
    assert_only_path_refused(put(BASE, field.path, value), field.path)


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.path)
def test_numbers_just_outside_the_range_are_refused_on_both_ends(field):
    step = 0.5 if field.kind == "number" else 1
    assert_only_path_refused(put(BASE, field.path, field.lo - step), field.path)
    assert_only_path_refused(put(BASE, field.path, field.hi + step), field.path)


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.path)
def test_both_ends_of_every_range_are_accepted(field):
    base = put(BASE, "footwear.current_drop_mm", 5)  # room for the largest insert
    for value in (int(field.lo), int(field.hi)):
        assert load_request(put(base, field.path, value)) == put(base, field.path, value)


@pytest.mark.parametrize(("drop", "insert"), [(30, 1), (20, 10.5), (6, 25)])
def test_an_effective_drop_over_30_mm_is_refused_at_the_insert_saying_so(drop, insert):
    body = {"footwear": {"current_drop_mm": drop, "heel_insert_mm": insert}}
    with pytest.raises(InvalidInput) as refused:
        load_request(body)
    assert list(refused.value.errors) == ["footwear.heel_insert_mm"]
    assert "at 30 mm or less" in refused.value.errors["footwear.heel_insert_mm"][0]
    assert request_schema.quick is not None
    with pytest.raises(Exception):  # noqa: B017 - the quick check declines it too
        request_schema.quick(body)


def test_an_effective_drop_of_exactly_30_mm_is_accepted():
    body = {"footwear": {"current_drop_mm": 20, "heel_insert_mm": 10}}
    assert load_request(body) == body


def test_an_unknown_top_level_field_is_refused_by_name():
    assert_only_path_refused({**BASE, "shoe_size": 42}, "shoe_size")


@pytest.mark.parametrize("group", GROUPS)
def test_an_unknown_field_inside_a_group_is_refused_by_its_path(group):
    body = put(BASE, f"{group}.colour", "red")
    assert_only_path_refused(body, f"{group}.colour")


def test_an_unknown_field_inside_a_nested_measure_is_refused_by_its_path():
    body = put(BASE, "mobility.knee_to_wall_cm.middle", 5)
    assert_only_path_refused(body, "mobility.knee_to_wall_cm.middle")


@pytest.mark.parametrize("value", [3, "person", [1, 2], True])
@pytest.mark.parametrize("group", GROUPS)
def test_a_group_that_is_not_an_object_is_refused_under_its_name(group, value):
    body = BASE | {group: value} if group != "footwear" else {"footwear": value}
    errors = errors_of(body)
    assert errors
    assert all(k == group or k.startswith(f"{group}.") for k in errors), errors


def test_a_nested_measure_that_is_not_an_object_is_refused_under_its_path():
    errors = errors_of(put(BASE, "mobility.knee_to_wall_cm", 7))
    assert errors
    assert all(k.startswith("mobility.knee_to_wall_cm") for k in errors), errors


def test_a_missing_current_drop_is_refused_at_its_path():
    assert_only_path_refused({"footwear": {"heel_insert_mm": 4}}, "footwear.current_drop_mm")


def test_a_missing_footwear_group_is_refused():
    errors = errors_of({"person": {"age_years": 40}})
    assert errors
    assert all(k.startswith("footwear") for k in errors), errors


@pytest.mark.parametrize("body", [[], [BASE], "footwear", 8, None, True])
def test_a_body_that_is_not_an_object_is_refused(body):
    with pytest.raises(InvalidInput) as caught:
        load_request(body)
    assert caught.value.errors
    assert "object" in str(caught.value).lower()


def test_a_client_ref_of_64_characters_is_accepted_and_65_refused():
    assert load_request(BASE | {"client_ref": "r" * 64})["client_ref"] == "r" * 64
    assert_only_path_refused(BASE | {"client_ref": "r" * 65}, "client_ref")


@pytest.mark.parametrize("field", ENUMS, ids=lambda f: f.path)
def test_an_enum_value_outside_its_choices_is_refused_at_its_path(field):
    for value in ("not_a_choice", field.choices[0].upper(), "", 3):
        assert_only_path_refused(put(BASE, field.path, value), field.path)


@pytest.mark.parametrize("field", ENUMS, ids=lambda f: f.path)
def test_every_enum_choice_is_accepted(field):
    for choice in field.choices:
        assert load_request(put(BASE, field.path, choice)) == put(BASE, field.path, choice)


def test_several_bad_fields_are_all_reported_at_once():
    body = put(put(BASE, "symptoms.achilles_pain", 11), "person.sex", "robot")
    body["footwear"]["current_drop_mm"] = -1
    assert set(errors_of(body)) == {"symptoms.achilles_pain", "person.sex",
                                    "footwear.current_drop_mm"}  # fmt: skip


@SETTINGS
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_any_invalid_value_for_any_field_is_refused_at_that_fields_path(field, data):
    body = data.draw(requests())
    value = data.draw(invalid_values(field))
    assert_only_path_refused(put(body, field.path, value), field.path)


@settings(max_examples=200, deadline=None, database=None)
@given(requests())
def test_every_valid_request_loads_unchanged_and_survives_a_json_round_trip(request):
    assert load_request(request) == request
    assert load_request(_parse(json.dumps(request))) == request


def test_the_field_table_has_the_spec_ranges_for_a_sample_of_fields():
    assert (BY_PATH["footwear.current_drop_mm"].lo, BY_PATH["footwear.current_drop_mm"].hi) == (
        0,
        30,
    )
    assert BY_PATH["footwear.current_drop_mm"].required
    assert BY_PATH["history.weeks_since_ankle_surgery"].hi == 5200
    assert BY_PATH["mobility.lunge_angle_deg.left"].hi == 80
    assert BY_PATH["client_ref"].hi == 64


# The quick check compiled from the field table must load exactly what marshmallow loads, and
# decline (leaving marshmallow to refuse and word it) everything marshmallow refuses.
PATHS = st.sampled_from(
    [f.path for f in FIELDS] + GROUPS + ["mobility.knee_to_wall_cm", "x", "person.x"]
)


def by_marshmallow(body):
    """marshmallow's own load, past the quick check: the loaded request, or its error messages."""
    try:
        return Schema.load(request_schema, body)
    except ValidationError as exc:
        return ("refused", exc.messages)


def by_quick_check(body):
    try:
        return request_schema.quick(body)
    except Exception as exc:  # only its own "declined" may escape it
        assert type(exc).__name__ == "Declined", repr(exc)
        return None


@settings(max_examples=300, deadline=None, database=None)
@given(requests())
def test_the_quick_check_loads_every_valid_request_as_marshmallow_does(request):
    assert by_quick_check(request) == by_marshmallow(request) == request


@SETTINGS
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_the_quick_check_declines_every_invalid_value_marshmallow_refuses(field, data):
    body = put(data.draw(requests()), field.path, data.draw(invalid_values(field)))
    assert by_marshmallow(body)[0] == "refused"
    assert by_quick_check(body) is None


def planted(node, path, value):
    """A copy of `node` with `value` at `path`, whatever stands in the way."""
    if not path:
        return value
    inner = node if isinstance(node, dict) else {}
    return {**inner, path[0]: planted(inner.get(path[0]), path[1:], value)}


@settings(max_examples=500, deadline=None, database=None)
@given(request=requests(), edits=st.lists(st.tuples(PATHS, JSON), min_size=1, max_size=3))
def test_the_quick_check_never_loads_what_marshmallow_would_not(request, edits):
    body = request
    for path, value in edits:
        body = planted(body, path.split("."), value)
    quick = by_quick_check(body)
    if quick is not None:
        assert quick == by_marshmallow(body)


@pytest.mark.parametrize("body", [None, [], "x", 3, {}, {"footwear": None}, {"footwear": []}])
def test_the_quick_check_declines_bodies_that_are_not_requests(body):
    assert by_quick_check(body) is None
    assert by_marshmallow(body)[0] == "refused"

"""Header names matched to fields: paths and labels as people type them, a mapping file, and
columns that look like a field refused rather than silently left out."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.batch import headers
from service.core.errors import InvalidInput
from service.core.fields import BY_PATH, FIELDS

UNRELATED = ("Customer name", "Notes", "shop", "visit date", "Phone", "E-mail", "Store ID", "")


@st.composite
def typed_names(draw):
    """A field and its path or label as a person might type it: any case, words joined by
    spaces, underscores, dots or hyphens, and the unit (if any) in brackets, bare or absent."""
    f = draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        words = f.path.replace(".", " ").replace("_", " ").split()
        unit = ""
    else:
        words = headers.normal(f.label).split()
        unit = f.unit if f.unit and f.unit != "/10" else ""
    joins = st.sampled_from([" ", "_", "-", ".", "  ", " - "])
    text = words[0]
    for word in words[1:]:
        text += draw(joins) + word
    if unit:
        text += draw(st.sampled_from([f" ({unit})", f" [{unit}]", f"_{unit}", f" {unit}", ""]))
    text = "".join(c.upper() if draw(st.booleans()) else c for c in text)
    return draw(st.sampled_from(["", " ", "\ufeff"])) + text + draw(st.sampled_from(["", " "])), f


@settings(max_examples=300)
@given(typed_names())
def test_a_path_or_label_typed_any_way_matches_its_field(case):
    name, f = case
    header = headers.match([name])
    assert header.known == {f.path: 0}, name


@given(st.text(max_size=40))
def test_normalising_never_fails_and_is_stable(text):
    once = headers.normal(text)
    assert headers.normal(once) == once
    assert once == once.strip() and "  " not in once


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("Current drop (mm)", "footwear.current_drop_mm"),
        ("knee to wall left", "mobility.knee_to_wall_cm.left"),
        ("Knee-to-wall, left (cm)", "mobility.knee_to_wall_cm.left"),
        ("Knee to wall R (cm)", "mobility.knee_to_wall_cm.right"),
        ("Achilles pain (0-10)", "symptoms.achilles_pain"),
        ("Achilles pain /10", "symptoms.achilles_pain"),
        ("ACHILLES_PAIN", "symptoms.achilles_pain"),
        ("Age (years)", "person.age_years"),
        ("Lunge angle, left (°)", "mobility.lunge_angle_deg.left"),
        ("currentDropMm", "footwear.current_drop_mm"),
        ("\ufeffClient reference", "client_ref"),
    ],
)
def test_headers_as_people_type_them_match_their_field(name, path):
    header = headers.match([name])
    assert header.known == {path: 0} and header.matched == [(name, path)]


def test_a_path_verbatim_is_matched_but_not_reported_as_renamed():
    header = headers.match(["footwear.current_drop_mm", " symptoms.achilles_pain "])
    assert header.known == {"footwear.current_drop_mm": 0, "symptoms.achilles_pain": 1}
    assert header.matched == []


def test_a_bare_side_is_no_field_since_two_tests_have_sides():
    header = headers.match(["left", "right"])
    assert header.known == {} and header.unknown == ["left", "right"]


@pytest.mark.parametrize("name", UNRELATED)
def test_unrelated_columns_are_unknown_and_look_like_no_field(name):
    header = headers.match([name])
    assert header.known == {} and header.unknown == [name] and header.resembling == []


@pytest.mark.parametrize(
    ("name", "like"),
    [
        ("Current drop (cm)", "footwear.current_drop_mm"),  # another unit: never read as mm
        ("Years since ankle surgery", "history.weeks_since_ankle_surgery"),
        ("Achilles pian", "symptoms.achilles_pain"),
        ("Knee pain notes", "symptoms.knee_pain"),
        ("footwear.curent_drop_mm", "footwear.current_drop_mm"),
    ],
)
def test_a_column_that_looks_like_a_field_is_refused_naming_it_and_the_field(name, like):
    header = headers.match(["footwear.current_drop_mm" if "drop" not in name else "Drop", name])
    assert header.resembling == [(name, like)]
    with pytest.raises(InvalidInput) as refused:
        headers.check(headers.match(["footwear.current_drop_mm", name]), allow_unknown=False)
    assert repr(name) in str(refused.value) and like in str(refused.value)
    assert "--allow-unknown" in str(refused.value)
    headers.check(headers.match(["footwear.current_drop_mm", name]), allow_unknown=True)


def test_a_missing_required_column_lists_every_expected_header_by_path_and_label():
    with pytest.raises(InvalidInput) as refused:
        headers.check(headers.match(["Drop", "Achilles pain"]), allow_unknown=False)
    message = str(refused.value)
    assert "no column for footwear.current_drop_mm (Current drop (mm))" in message
    for f in FIELDS:
        assert f.path in message and headers.typed(f) in message


def test_two_columns_for_one_field_are_refused():
    with pytest.raises(InvalidInput, match=r"footwear\.current_drop_mm is named more than once"):
        headers.match(["Current drop (mm)", "footwear.current_drop_mm"])


def mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mapping_file_names_columns_and_can_pass_one_through(tmp_path):
    text = '"Drop" = "footwear.current_drop_mm"\n"Knee pain notes" = ""\n"Gone" = "client_ref"\n'
    read = headers.read_mapping(mapping(tmp_path, text))
    header = headers.match(["drop", "Knee pain notes", "Achilles pain"], read)
    assert header.known == {"footwear.current_drop_mm": 0, "symptoms.achilles_pain": 2}
    assert header.unknown == ["Knee pain notes"] and header.resembling == []
    assert header.unused == ["Gone"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"Drop" = "footwear.curent_drop_mm"\n', "did you mean footwear.current_drop_mm?"),
        ('"Drop" = "footwear.current_drop_mm"\n"Heel" = "footwear.current_drop_mm"\n',
         "'Drop', 'Heel' all map to footwear.current_drop_mm"),
        ('"Drop" = 8\n', "must map to a field path in quotes"),
        ("[footwear]\ncurrent = 1\n", "must map to a field path in quotes"),
        ('"Drop" = "client_ref"\n"drop" = "person.age_years"\n', "mapped twice"),
        ('"Drop" = \n', "is not TOML"),
    ],
    ids=["unknown-field", "duplicate-target", "number", "table", "same-header", "not-toml"],
)  # fmt: skip
def test_a_bad_mapping_file_is_refused_with_what_is_wrong(tmp_path, text, message):
    with pytest.raises(InvalidInput) as refused:
        headers.read_mapping(mapping(tmp_path, text))
    assert message in str(refused.value)


def test_a_missing_mapping_file_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read the column map"):
        headers.read_mapping(tmp_path / "nope.toml")


def test_every_field_has_a_label_that_matches_it_alone():
    for f in FIELDS:
        assert headers.NAMES[headers.normal(f.label)] == f.path
        assert BY_PATH[headers.NAMES[headers.normal(headers.typed(f))]] is f

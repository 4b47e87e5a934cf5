"""The fitter's pages through the Flask test client: sign-in, CSRF, the form's errors, the answer,
a referral, the follow-up and tenant isolation. (tests/web/test_browser.py drives them in
Chromium.)"""

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from service.db import Outcome, Recommendation, engine_for, users

PASSWORD = "correct horse battery"
COMMON = {
    "footwear.current_drop_mm": "0", "footwear.years_in_heeled_shoes": "20",
    "footwear.weeks_in_current_drop": "8", "symptoms.calf_tightness": "5",
    "client_ref": "Mrs Jones",
}  # fmt: skip
REFERRAL = {"footwear.current_drop_mm": "8", "symptoms.calf_swelling_one_side": "yes"}


@pytest.fixture
def site(make_app, db_url):
    app = make_app(secure_cookies=False, SECRET_KEY="test-secret")
    engine = engine_for(db_url)
    users.create(engine, "ann", "corner-shop", PASSWORD)
    users.create(engine, "bob", "big-shop", PASSWORD)
    yield app
    engine.dispose()


def token(page) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def signed_in(app, name="ann"):
    client = app.test_client()
    page = client.get("/fit/sign-in")
    r = client.post("/fit/sign-in", data={"csrf_token": token(page), "name": name,
                                          "password": PASSWORD})  # fmt: skip
    assert r.status_code == 302 and r.headers["Location"] == "/fit"
    return client


def submit(client, fields):
    page = client.get("/fit")
    return client.post("/fit", data={"csrf_token": token(page), **fields})


def text(page) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


def logged(app):
    engine = app.extensions["heeldrop.log"].engine
    with engine.connect() as connection:
        return connection.execute(sa.select(Recommendation.request_id, Recommendation.tenant)).all()


def test_pages_need_a_signed_in_user(site):
    client = site.test_client()
    for path in ("/fit", "/fit/follow-up/abc"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/fit/sign-in")


def test_a_wrong_password_a_disabled_user_or_an_unknown_name_cannot_sign_in(site, db_url):
    users.disable(engine_for(db_url), "bob")
    client = site.test_client()
    for name, password in (("ann", "wrong password!!"), ("bob", PASSWORD), ("nobody", PASSWORD)):
        page = client.get("/fit/sign-in")
        r = client.post("/fit/sign-in", data={"csrf_token": token(page), "name": name,
                                              "password": password})  # fmt: skip
        assert r.status_code == 400 and "do not match an active user" in r.text
    assert client.get("/fit").status_code == 302


def test_sign_in_attempts_are_rate_limited(site):
    client = site.test_client()
    codes = []
    for _ in range(12):
        page = client.get("/fit/sign-in")
        form = {"csrf_token": token(page), "name": "ann", "password": "nope nope nope"}
        codes.append(client.post("/fit/sign-in", data=form).status_code)
    assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]


def test_a_staff_users_forms_count_against_the_keys_rate_limit(make_app, db_url):
    app = make_app(secure_cookies=False, SECRET_KEY="test-secret", rate_limit="3/minute")
    engine = engine_for(db_url)
    users.create(engine, "ann", "corner-shop", PASSWORD)
    users.create(engine, "bob", "corner-shop", PASSWORD)
    ann = signed_in(app)
    codes = [submit(ann, COMMON).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = submit(ann, COMMON)
    assert refused.status_code == 429 and "Too many attempts" in refused.text
    assert refused.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in refused.headers
    assert len(logged(app)) == 3  # a refused form answers nothing and logs nothing
    assert ann.get("/fit").status_code == 200  # reading the form costs nothing
    assert submit(signed_in(app, "bob"), COMMON).status_code == 200  # a budget per user
    engine.dispose()


def test_forms_without_their_csrf_token_are_refused_and_nothing_is_logged(site):
    client = site.test_client()
    r = client.post("/fit/sign-in", data={"name": "ann", "password": PASSWORD})
    assert r.status_code == 400 and client.get("/fit").status_code == 302
    client = signed_in(site)
    assert client.post("/fit", data=COMMON).status_code == 400
    assert client.post("/fit", data={**COMMON, "csrf_token": "forged"}).status_code == 400
    assert logged(site) == []
    assert client.post("/fit/sign-out").status_code == 400  # still signed in
    assert client.get("/fit").status_code == 200


def test_the_session_cookie_is_http_only_and_same_site_and_secure_when_configured(make_app):
    app = make_app(SECRET_KEY="x")
    assert app.config["SESSION_COOKIE_SECURE"] is True  # the default
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_a_common_case_answers_on_one_screen_and_is_logged_under_the_users_tenant(site):
    client = signed_in(site)
    r = submit(client, COMMON)
    assert r.status_code == 200
    page = text(r)
    assert "Heel drop: 4 to 6 mm" in page and "Step back up" in page
    assert "Plan" in page and "Follow-up:" in page and "Customer: Mrs Jones" in page
    printed = re.search(r'<p class="print-only">([^<]*)</p>', r.text).group(1)
    assert re.fullmatch(r"heeldrop recommendation · \d\d \w{3} \d{4}", printed)  # as the plan
    assert 'class="ruler"' in r.text and 'class="range"' in r.text
    (row,) = logged(site)
    assert row.tenant == "corner-shop" and row.request_id in r.text
    assert r.headers["Cache-Control"] == "no-store"


def test_a_referral_shows_its_banner_and_nothing_else_to_act_on(site):
    r = submit(signed_in(site), REFERRAL)
    assert r.status_code == 200
    assert 'class="referral" role="alert"' in r.text and "See a clinician today" in r.text
    for absent in ('class="ruler"', 'class="timeline"', "Advice", "Follow-up:"):
        assert absent not in r.text


def test_a_referral_that_undoes_a_switch_says_go_back_not_change_nothing(site):
    client = signed_in(site)
    keep = text(submit(client, REFERRAL))
    assert "Do not change shoes for this until a clinician has seen it." in keep
    undo = text(submit(client, {**COMMON, "footwear.previous_drop_mm": "10",
                                "symptoms.calf_swelling_one_side": "yes"}))  # fmt: skip
    assert "go back to your 10 mm shoes" in undo
    assert "Until a clinician has seen it, go back to the shoes worn before" in undo
    assert "Do not change shoes" not in undo


def test_the_heading_says_when_the_drop_counts_the_insert_and_a_referral_sets_rules_aside(site):
    client = signed_in(site)
    r = submit(client, {"footwear.current_drop_mm": "10", "footwear.heel_insert_mm": "8"})
    assert '<h1 id="range-title">' in r.text and "(shoe and insert together)" in text(r)
    referred = text(submit(client, {**COMMON, "footwear.previous_drop_mm": "10",
                                    "symptoms.calf_swelling_one_side": "yes"}))  # fmt: skip
    assert "(set aside for the referral)" in referred and "(overruled)" not in referred
    assert "(shoe and insert together)" not in text(submit(client, COMMON))


def test_a_range_of_one_value_is_headed_with_that_value(site):
    r = submit(signed_in(site), {"footwear.current_drop_mm": "20", "footwear.current_type":
                                 "weightlifting", "activity.primary": "weightlifting"})  # fmt: skip
    assert r.status_code == 200
    assert "Heel drop: 20 mm" in text(r) and "20 to 20 mm" not in text(r)
    assert "the recommended 20 mm is marked" in r.text


def test_invalid_answers_are_shown_beside_their_fields_with_what_was_typed(site):
    typed = {"footwear.current_drop_mm": "40", "person.age_years": "forty",
             "symptoms.knee_pain": "3", "person.body_mass_kg": "72,5"}  # fmt: skip
    r = submit(signed_in(site), typed)
    assert r.status_code == 422
    assert "Enter a number from 0 to 30." in r.text and "advises people aged 8 to 100" in r.text
    assert 'value="40"' in r.text and 'value="forty"' in r.text and 'value="72,5"' in r.text
    assert '<option value="3" selected>' in r.text
    assert logged(site) == []
    r = submit(signed_in(site), {"footwear.current_drop_mm": "20", "footwear.heel_insert_mm": "15"})
    assert r.status_code == 422 and "more than 30 mm" in r.text


def test_the_drop_is_required(site):
    r = submit(signed_in(site), {"symptoms.knee_pain": "2"})
    assert r.status_code == 422 and "on the box" in r.text


def test_the_list_of_problems_names_each_field_in_the_forms_order(site):
    r = submit(signed_in(site), {"person.age_years": "6", "activity.running_km_per_week": "900"})
    assert r.status_code == 422
    problems = re.search(r'<div class="error-summary".*?</div>', r.text, re.S).group(0)
    items = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', problems)
    assert [path for path, _ in items] == [
        "footwear.current_drop_mm",
        "person.age_years",
        "activity.running_km_per_week",
    ]  # the shoe comes first on the form, the drop's absence included
    assert items[0][1] == "Heel drop of the shoe: The shoe&#39;s drop is needed: it is on the box."
    assert items[1][1].endswith(": heeldrop advises people aged 8 to 100: enter the age in years.")


def follow(client, request_id, **fields):
    page = client.get(f"/fit/follow-up/{request_id}")
    if page.status_code != 200:
        return page
    return client.post(f"/fit/follow-up/{request_id}", data={"csrf_token": token(page), **fields})


def test_a_follow_up_is_recorded_for_the_users_tenant_once_per_weeks_worn(site):
    client = signed_in(site)
    submit(client, COMMON)
    ((request_id, _),) = logged(site)
    r = follow(client, request_id, weeks_worn="6", drop_mm_worn="5", outcome="better",
               **{"symptoms_after.calf_tightness": "2"})  # fmt: skip
    assert r.status_code == 200 and "Follow-up recorded" in r.text
    engine = site.extensions["heeldrop.log"].engine
    with engine.connect() as connection:
        (row,) = connection.execute(sa.select(Outcome)).all()
    assert (row.tenant, row.weeks_worn, row.drop_mm_worn, row.outcome) == (
        "corner-shop", 6, 5, "better"
    )  # fmt: skip
    assert row.symptoms_after == {"calf_tightness": 2}
    again = follow(client, request_id, weeks_worn="6", drop_mm_worn="5", outcome="worse")
    assert again.status_code == 422 and "already recorded" in again.text


def test_the_follow_up_page_shows_what_was_recommended_and_the_symptoms_then(site):
    client = signed_in(site)
    submit(client, COMMON)  # 0 mm, calf tightness 5: step back up to 4-6 mm
    ((request_id, _),) = logged(site)
    page = text(client.get(f"/fit/follow-up/{request_id}"))
    assert re.search(r"Recommended on \d\d \w{3} \d{4}: 4 to 6 mm \(low\), from 0 mm\.", page)
    assert "At the fitting: Calf tightness 5/10." in page
    assert "referred" not in page
    other = signed_in(site, "bob")  # another shop's user: no such recommendation
    assert other.get(f"/fit/follow-up/{request_id}").status_code == 404


def test_invalid_follow_ups_show_their_errors(site):
    client = signed_in(site)
    submit(client, COMMON)
    ((request_id, _),) = logged(site)
    r = follow(client, request_id, weeks_worn="200", drop_mm_worn="x")
    assert r.status_code == 422
    for message in ("from 0 to 104.", "from 0 to 30.", "Choose how it went."):
        assert message in r.text
    assert 'value="200"' in r.text and 'value="x"' in r.text


def test_another_tenants_follow_up_is_404_like_an_unknown_one(site):
    submit(signed_in(site, "ann"), COMMON)
    ((request_id, _),) = logged(site)
    bob = signed_in(site, "bob")
    assert follow(bob, request_id).status_code == 404
    assert follow(bob, "f" * 32).status_code == 404
    page = bob.get("/fit")
    r = bob.post(f"/fit/follow-up/{request_id}", data={"csrf_token": token(page),
                 "weeks_worn": "6", "drop_mm_worn": "5", "outcome": "worse"})  # fmt: skip
    assert r.status_code == 404


def test_an_api_key_of_the_same_tenant_can_report_on_a_fitting(site, db_url):
    from service.db import keys

    submit(signed_in(site), COMMON)
    ((request_id, _),) = logged(site)
    key = keys.create(engine_for(db_url), "till", tenant="corner-shop")
    r = site.test_client().post("/v1/outcomes", headers={"Authorization": f"Bearer {key}"},
                                json={"request_id": request_id, "weeks_worn": 4,
                                      "drop_mm_worn": 5, "outcome": "same"})  # fmt: skip
    assert r.status_code == 201


def test_sign_out_ends_the_session(site):
    client = signed_in(site)
    page = client.get("/fit")
    assert client.post("/fit/sign-out", data={"csrf_token": token(page)}).status_code == 302
    assert client.get("/fit").status_code == 302


class Controls(HTMLParser):
    """Form controls and what labels them."""

    def __init__(self):
        super().__init__()
        self.controls, self.labelled, self.stack = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("fieldset", "label"):
            self.stack.append(tag)
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"])
        if tag in ("input", "select") and a.get("type") != "hidden":
            self.controls.append((a.get("id"), "label" in self.stack or "fieldset" in self.stack))

    def handle_endtag(self, tag):
        if tag in ("fieldset", "label") and tag in self.stack:
            self.stack.remove(tag)


def test_every_control_has_a_label(site):
    client = signed_in(site)
    for page in (client.get("/fit"), submit(client, {"footwear.current_drop_mm": "99"})):
        parser = Controls()
        parser.feed(page.text)
        assert len(parser.controls) > 50
        for control_id, wrapped in parser.controls:
            assert wrapped or control_id in parser.labelled, control_id


def test_every_request_field_is_asked_once(site):
    from service.core.fields import FIELDS
    from service.web.questions import ASKED

    assert sorted(q.path for q in ASKED) == sorted(f.path for f in FIELDS)


def test_the_message_catalogue_is_current(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
         "service/web/babel.cfg", "-k", "lazy", "--no-location", "--omit-header", "--sort-output",
         "-o", str(fresh), "service/web"],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    shipped = root / "service" / "web" / "translations" / "messages.pot"
    assert fresh.read_text() == shipped.read_text(), "run pybabel extract (translations/README)"

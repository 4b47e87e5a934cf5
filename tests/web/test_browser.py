"""The fitter's pages in headless Chromium on a live gunicorn: sign in, a common case, a
referral, field errors, the print view (A4 and Letter), a follow-up, CSRF and another tenant's
follow-up; axe-core (node_modules/axe-core, `make test` installs it) over each page. Screenshots
of every state go to test-output/fit/ in the checkout."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.db import engine_for, users
from tests.api.test_docs_page import browser  # noqa: F401 - the shared Chromium fixture
from tests.api.test_live import LiveServer, start_server

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-output" / "fit"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory) -> Iterator[LiveServer]:
    env = {"HEELDROP_SECRET_KEY": "browser-test", "HEELDROP_SECURE_COOKIES": "0"}
    live = start_server(tmp_path_factory.mktemp("fit"), registry.root.parent, env=env, workers=1)
    engine = engine_for(live.db_url)
    users.create(engine, "ann", "corner-shop", PASSWORD)
    users.create(engine, "bob", "big-shop", PASSWORD)
    engine.dispose()
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield live
    live.stop()


def shot(driver, name: str) -> None:
    driver.set_window_size(1200, max(900, driver.execute_script(
        "return document.body.scrollHeight")))  # fmt: skip
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


def accessible(driver) -> None:
    """No serious or critical axe-core violation on the current page."""
    if not AXE.is_file():
        if os.environ.get("HEELDROP_TEST_BROWSER") == "1":
            pytest.fail(f"{AXE} is missing: run `make test` (npm ci) to install axe-core")
        pytest.skip("axe-core is not installed (npm ci)")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
        "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))));"
    )
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert bad == [], bad


def replaced(page):
    """A wait condition: `page` (an element of the old page) is gone. Chromedriver sometimes
    reports a gone element as an 'unhandled inspector error' instead of a stale one (selenium
    issue 15401), which selenium's own staleness_of lets through."""

    def gone(_driver) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False

    return gone


def submit(driver, button: str) -> None:
    """Click a submit button and wait for the next page."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(driver, 30).until(replaced(page))


def sign_in(driver, server, name="ann") -> None:
    driver.delete_all_cookies()
    driver.get(f"{server.url}/fit/sign-in")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, "form button[type=submit]")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Fitting"


def fill(driver, values: dict[str, str]) -> None:
    for path, value in values.items():
        control = driver.find_element(By.ID, path) if not value.startswith("radio:") else None
        if control is None:
            driver.find_element(
                By.CSS_SELECTOR, f"input[name='{path}'][value='{value[6:]}']").click()  # fmt: skip
        elif control.tag_name == "select":
            Select(control).select_by_value(value)
        else:
            control.clear()
            control.send_keys(value)
    submit(driver, "button.primary")


def test_sign_in_page(browser, server):  # noqa: F811
    browser.get(f"{server.url}/fit")
    assert "/fit/sign-in" in browser.current_url
    shot(browser, "1-sign-in")
    accessible(browser)


def test_a_common_case_from_sign_in_to_printed_plan(browser, server):  # noqa: F811
    sign_in(browser, server)
    shot(browser, "2-form")
    accessible(browser)
    fill(browser, {"footwear.current_drop_mm": "0", "footwear.years_in_heeled_shoes": "20",
                   "footwear.weeks_in_current_drop": "8", "symptoms.calf_tightness": "5",
                   "client_ref": "Mrs Jones"})  # fmt: skip
    summary = browser.find_element(By.CSS_SELECTOR, ".summary").text
    heading = browser.find_element(By.ID, "range-title").text
    assert heading == "Heel drop: 4 to 6 mm"
    assert summary.startswith("Step back up from 0 mm to 4-6 mm")
    assert browser.find_element(By.CSS_SELECTOR, ".print-button").is_displayed()  # script ran
    assert len(browser.find_elements(By.CSS_SELECTOR, ".timeline li")) >= 1
    shot(browser, "3-answer")
    accessible(browser)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not browser.find_element(By.CSS_SELECTOR, ".top").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, ".print-only").is_displayed()
        assert "Follow-up:" in browser.find_element(By.CSS_SELECTOR, ".follow-up").text
        shot(browser, "4-print")
        accessible(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    for paper, (width, height) in {"a4": (8.27, 11.69), "letter": (8.5, 11)}.items():
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"paperWidth": width,
                                                          "paperHeight": height})  # fmt: skip
        data = __import__("base64").b64decode(pdf["data"])
        assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(
            b"/Type /Page>") + data.count(b"/Type/Page") >= 1  # fmt: skip
        (SHOTS / f"4-print-{paper}.pdf").write_bytes(data)


def test_a_referral_shows_the_banner_and_no_plan(browser, server):  # noqa: F811
    sign_in(browser, server)
    fill(browser, {"footwear.current_drop_mm": "8",
                   "symptoms.calf_swelling_one_side": "radio:yes"})  # fmt: skip
    banner = browser.find_element(By.CSS_SELECTOR, ".referral")
    assert banner.is_displayed() and "See a clinician today" in banner.text
    assert browser.find_elements(By.CSS_SELECTOR, ".timeline, .ruler, .advice") == []
    shot(browser, "5-referral")
    accessible(browser)


def test_invalid_input_shows_errors_beside_the_fields(browser, server):  # noqa: F811
    sign_in(browser, server)
    fill(browser, {"footwear.current_drop_mm": "40", "person.age_years": "forty"})
    error = browser.find_element(By.ID, "footwear.current_drop_mm-error")
    assert error.text == "Enter a number from 0 to 30."
    assert browser.find_element(By.ID, "footwear.current_drop_mm").get_attribute("value") == "40"
    assert browser.find_element(By.ID, "person.age_years").get_attribute("value") == "forty"
    shot(browser, "6-errors")
    accessible(browser)


def test_a_follow_up_is_recorded_and_another_tenant_gets_404(browser, server):  # noqa: F811
    sign_in(browser, server)
    fill(browser, {"footwear.current_drop_mm": "10", "symptoms.achilles_pain": "4"})
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.LINK_TEXT, "Record the follow-up").click()
    WebDriverWait(browser, 30).until(replaced(page))
    follow_url = browser.current_url
    shot(browser, "7-follow-up")
    accessible(browser)
    fill(browser, {"weeks_worn": "6", "drop_mm_worn": "10", "outcome": "radio:better",
                   "symptoms_after.achilles_pain": "2"})  # fmt: skip
    assert browser.find_element(By.TAG_NAME, "h1").text == "Follow-up recorded"
    shot(browser, "8-recorded")
    sign_in(browser, server, "bob")
    browser.get(follow_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    shot(browser, "9-other-tenant")


def test_a_form_without_its_csrf_token_is_refused(browser, server):  # noqa: F811
    sign_in(browser, server)
    browser.execute_script(
        "document.querySelectorAll('main input[name=csrf_token]').forEach(e => e.remove())"
    )
    fill(browser, {"footwear.current_drop_mm": "6"})
    assert browser.find_element(By.TAG_NAME, "h1").text == "Please try again"
    shot(browser, "10-csrf-refused")

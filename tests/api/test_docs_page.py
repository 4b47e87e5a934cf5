"""/docs in a real browser: headless Chromium, driven by Selenium, on a live gunicorn.

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`); without
them the tests skip, unless HEELDROP_TEST_BROWSER=1 (as in .ci/run) makes that a failure.
"""

import json
import os
import shutil
from collections.abc import Iterator

import pytest
import requests

from tests.api.test_live import TIMEOUT, LiveServer, start_server

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow


def _binaries() -> tuple[str, str] | None:
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    found = _binaries()
    if found is None:
        if os.environ.get("HEELDROP_TEST_BROWSER") == "1":
            pytest.fail("HEELDROP_TEST_BROWSER=1 but chromium or chromedriver is not installed")
        pytest.skip("chromium and chromedriver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(found[1]), options=options)
    driver.set_page_load_timeout(TIMEOUT[1])
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("docs"), registry.root.parent, workers=1)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def document(server) -> dict:
    r = requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


@pytest.fixture
def page(browser, server):
    browser.get(f"{server.url}/docs")
    browser.get_log("browser")  # start each test with an empty console
    return browser


def test_the_page_shows_every_operation_with_its_access_and_responses(page, document):
    assert page.title == "heeldrop API"
    version = document["info"]["version"]
    assert page.find_element(By.TAG_NAME, "h1").text == f"heeldrop API {version}"
    headings = page.find_elements(By.TAG_NAME, "h2")
    shown = {h.text: h for h in headings}
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            heading = shown[f"{method.upper()} {path}"]  # the method is upper-cased by CSS
            access, responses = (
                heading.find_element(By.XPATH, f"following-sibling::{tag}[1]")
                for tag in ("p[2]", "ul")
            )
            if op.get("security", document["security"]) == []:
                expected = "Public."
            else:
                expected = "Needs an admin key." if path.startswith("/admin") else "Needs a key."
            assert access.text.startswith(expected), path
            codes = [li.text.split()[0] for li in responses.find_elements(By.TAG_NAME, "li")]
            assert codes == list(op["responses"]), path
    assert len(headings) == sum(map(len, document["paths"].values())) + 1  # + "Schemas"


def test_following_a_schema_link_shows_that_schema(page, document):
    section = page.find_element(By.ID, "schema-RecommendationRequest")
    pre = section.find_element(By.TAG_NAME, "pre")
    assert not pre.is_displayed()
    # the request body link of POST /v1/recommendations
    heading = page.find_element(By.XPATH, "//h2[code='/v1/recommendations']")
    heading.find_element(By.XPATH, "following-sibling::p[2]/a").click()
    assert page.current_url.endswith("/docs#schema-RecommendationRequest")
    assert pre.is_displayed()
    schemas = document["components"]["schemas"]
    assert json.loads(pre.text) == schemas["RecommendationRequest"]
    # every link on the page leads to a schema that exists, or to the document itself
    for link in page.find_elements(By.TAG_NAME, "a"):
        href = link.get_attribute("href")
        target = href.split("#schema-", 1)[1] if "#schema-" in href else None
        assert target in schemas if target else href.endswith("/openapi.json"), href


def test_the_page_loads_nothing_else_and_its_policy_blocks_scripts(page):
    loaded = page.execute_script("return performance.getEntriesByType('resource').length")
    assert loaded == 0  # no script, style sheet, font or image was fetched
    assert page.get_log("browser") == []  # nothing refused by the policy, no errors
    # the page's own inline style applies ...
    method = page.find_element(By.CSS_SELECTOR, "h2 .m")
    assert method.value_of_css_property("text-transform") == "uppercase"
    # ... but a script put into it does not run
    ran = page.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.append(s); return window.ran === 1"
    )
    assert ran is False
    assert any("Content Security Policy" in e["message"] for e in page.get_log("browser"))


def test_the_document_link_opens_the_openapi_document(page, document):
    page.find_element(By.LINK_TEXT, "/openapi.json").click()
    assert page.current_url.endswith("/openapi.json")
    assert json.loads(page.find_element(By.TAG_NAME, "pre").text) == document

"""The web console in a real headless Chromium (Debian's `chromium` + `chromium-driver`) against the real stack.

A batch with one failing URL is imported through the API; the console, signed in through the link
`pixport console-url` prints, must follow the job to 100% over the live stream without a reload, show every
thumbnail and the failure's reason, and an image's GPS and EXIF; the token must never appear in a request URL.
Screenshots of every page are saved under the test's tmp_path.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps, ImageStat
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from support import camera
from support.origin import Origin
from support.stack import PIXPORT, Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PARIS = camera.Camera()  # 48°51'24.0"N 2°21'03.0"E, Canon EOS 5D Mark IV, 2018:01:01 08:00:00
WAIT = 30.0
TIMES = "\N{MULTIPLICATION SIGN}"  # as the console writes sizes ("800 by 1200")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    # A missing browser is a failure, not a skip: `make test` installs it (`make browser`).
    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: run `make browser` (apt-get install chromium)"
    assert CHROMEDRIVER.is_file(), f"{CHROMEDRIVER} missing: run `make browser` (apt-get install chromium-driver)"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
        "--disable-background-networking", "--disable-component-update", "--disable-domain-reliability",
        "--disable-client-side-phishing-detection", "--no-pings", "--disable-features=Translate,OptimizationHints",
        # Test traffic stays on loopback: every other host resolves to nothing and goes to a dead proxy.
        "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except WebDriverException as error:  # an element replaced while reading it: try again
            last_error = error
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f" ({last_error})" if last_error else ""))


def one(driver: webdriver.Chrome, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page, not just the viewport (DevTools capture beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


# Installed before the console's own scripts: the first job stream is cut right after its first event (the
# snapshot), as a dropped connection would be, so the console must resume with afterSequence.
CUT_FIRST_STREAM = """
(() => {
  const realFetch = window.fetch.bind(window);
  let cut = false;
  window.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    if (cut || !String(input instanceof Request ? input.url : input).includes("/status/stream")) return response;
    cut = true;
    const reader = response.body.getReader();
    let text = "";
    let done = false;
    const body = new ReadableStream({
      async pull(controller) {
        if (done) {
          reader.cancel();
          controller.error(new TypeError("network error (connection cut by the test)"));
          return;
        }
        const chunk = await reader.read();
        if (chunk.done) { controller.close(); return; }
        text += new TextDecoder().decode(chunk.value);
        const newline = text.indexOf("\\n");
        if (newline >= 0) {
          controller.enqueue(new TextEncoder().encode(text.slice(0, newline + 1)));
          done = true;
        }
      },
    });
    return new Response(body, {status: response.status, headers: response.headers});
  };
})();
"""


def assert_accessible_basics(driver: webdriver.Chrome) -> None:
    """What a screen reader or keyboard user cannot do without: alt texts, labelled controls, named buttons."""
    problems = driver.execute_script("""
      const problems = [];
      for (const img of document.querySelectorAll("img")) if (!img.hasAttribute("alt")) problems.push(img.outerHTML);
      for (const control of document.querySelectorAll("input, textarea, select")) {
        if (!control.labels?.length && !control.getAttribute("aria-label")) problems.push(control.outerHTML);
      }
      for (const button of document.querySelectorAll("button, a")) {
        const named = button.textContent.trim() || button.getAttribute("aria-label")
          || [...button.querySelectorAll("img")].some((img) => img.alt.trim());
        if (!named) problems.push(button.outerHTML);
      }
      if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
      return problems;
    """)
    assert problems == []


def network_requests(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Every request Chromium sent, from the DevTools `Network.requestWillBeSent` events."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append(message["params"])
    return sent


def console_url(stack: Stack, org: str, **env: str) -> str:
    result = subprocess.run([PIXPORT, "console-url", "--org", org], env={**stack.env, **env}, capture_output=True,
                            text=True, check=True, timeout=60)
    return result.stdout.strip()


def token_of(url: str) -> str:
    fragment = urllib.parse.urlsplit(url).fragment
    return urllib.parse.parse_qs(fragment)["token"][0]


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def test_console_url_reuses_a_read_write_client_and_honours_the_public_url(stack: Stack, unique: str) -> None:
    read_only = stack.create_client(f"console-{unique}", "public-api:read")  # cannot cancel: not reused
    first = console_url(stack, f"console-{unique}")
    assert claims(token_of(first))["iss"] != read_only["client_id"]
    assert first.startswith(f"http://127.0.0.1:{stack.http_port}/console/#token=")
    second = console_url(stack, f"console-{unique}", PIXPORT_PUBLIC_URL="https://pix.example.com/")
    assert second.startswith("https://pix.example.com/console/#token=")
    assert claims(token_of(first))["iss"] == claims(token_of(second))["iss"]
    assert set(claims(token_of(first))["scope"].split()) == {"public-api:read", "public-api:write"}
    response = stack.request("GET", "/api/v1/import/jobs", token=token_of(second))
    assert response.status == 200, response.body


def test_console_files_are_served_by_the_edge_with_a_strict_policy(stack: Stack) -> None:
    page = stack.request("GET", "/console/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert b'<script type="module" src="app.js">' in page.body
    assert b"http" not in page.body  # nothing from a CDN: the machine may be offline
    for name in ("app.js", "api.js", "dom.js", "model.js", "jobs.js", "images.js", "albums.js", "thumbhash.js"):
        script = stack.request("GET", f"/console/{name}")
        assert script.status == 200 and script.headers["content-type"].startswith("text/javascript"), name
    assert stack.request("GET", "/console/app.css").headers["content-type"].startswith("text/css")
    redirect = stack.request("GET", "/console")
    assert redirect.status == 301 and redirect.headers["location"].endswith("/console/")


def test_console_follows_a_batch_live_and_shows_its_images(
    stack: Stack, origin: Origin, browser: webdriver.Chrome, tmp_path: Path, unique: str,
) -> None:
    driver = browser
    driver.get_log("performance")  # start the log from here
    link = console_url(stack, f"console-live-{unique}")
    token = token_of(link)

    # Sign in through the link: the fragment is consumed and cleared at once.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CUT_FIRST_STREAM})
    driver.get(link)
    wait_for(lambda: one(driver, "h1").text == "Import jobs", "the jobs page")
    assert "token" not in driver.current_url and driver.current_url.endswith("/console/#/jobs")
    booted = driver.execute_script("return window.pixportConsoleBootedAt")
    assert booted
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".empty"), "the empty list of a new organisation")

    # An album image first (a single import), finished before the batch: the batch's copy of it is then
    # reliably its near-duplicate.
    paris = camera.camera_jpeg(1200, 800, PARIS, seed=2)
    album = f"album-{unique}"
    single = stack.request("POST", "/api/v1/imports", token=token, body={
        "album_id": album, "filename": "paris-album.jpg", "url": origin.serve(f"/{unique}/paris-album.jpg", paris)})
    assert single.status == 200, single.body
    wait_for(lambda: stack.request("GET", f"/api/v1/imports/{single.json()['id']}", token=token).json()["status"]
             == "done", "the album image")
    urls = {
        "paris": origin.serve(f"/{unique}/paris.jpg", camera.camera_jpeg(1200, 800, PARIS, seed=2, quality=80)),
        "harbour": origin.serve(f"/{unique}/harbour.jpg", camera.camera_jpeg(900, 600, PARIS, seed=7)),
        # Served late, so that the job is still running when the console shows it.
        "late": origin.serve(f"/{unique}/late.jpg", camera.camera_jpeg(600, 900, PARIS, seed=9), delay=3.0),
        "missing": origin.url(f"/{unique}/missing.jpg"),  # nothing there: the origin answers 404
    }
    hook = origin.serve_sequence(f"/{unique}/hook", (500, b"busy"), (200, b"thanks"))
    job_id = stack.import_batch(token, [{"url": url, "id": name, "fileName": f"{name}.jpg"}
                                        for name, url in urls.items()], webhook=hook)

    # The open page learns of the new job (Refresh re-reads the list in place); its row follows the stream to
    # 100% (no reload: the page's time origin stays the same).
    one(driver, "#refresh-jobs").click()
    row_css = f'li.job[data-job-id="{job_id}"]'
    wait_for(lambda: one(driver, row_css), "the job's row")
    screenshot(driver, tmp_path / "0-jobs-while-running.png")
    wait_for(lambda: one(driver, row_css).get_attribute("data-state") == "success"
             and one(driver, f"{row_css} [role=progressbar]").get_attribute("aria-valuenow") == "100",
             "the job to reach 100%")
    assert driver.execute_script("return window.pixportConsoleBootedAt") == booted
    counts = {element.get_attribute("data-status"): element.find_element(By.CSS_SELECTOR, ".count-value").text
              for element in driver.find_elements(By.CSS_SELECTOR, f"{row_css} .counts li")}
    assert counts == {"pending": "0", "success": "3", "skipped": "0", "failed": "1", "cancelled": "0"}
    assert_accessible_basics(driver)
    screenshot(driver, tmp_path / "1-jobs.png")

    # The job page: every thumbnail loaded, the failure with its reason.
    one(driver, f'{row_css} h2 a').click()
    wait_for(lambda: one(driver, "h1").text == f"Job {job_id}", "the job page")
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".grid .tile")) == 4, "four tiles")
    assert not driver.find_elements(By.CSS_SELECTOR, '.grid .tile[data-status="pending"]')
    thumbs_loaded = "return [...document.querySelectorAll('.grid img.thumb')].map(i => i.complete && i.naturalWidth)"
    wait_for(lambda: (sizes := driver.execute_script(thumbs_loaded)) and len(sizes) == 3 and all(sizes),
             "every thumbnail to load")
    # Each thumbnail is the `mini` rendition over its decoded ThumbHash placeholder (a PNG data: URL).
    tiles = driver.execute_script("""return [...document.querySelectorAll('.grid img.thumb')].map(i =>
      [new URL(i.src).pathname.split('/').pop(), i.closest('.tile-media').style.backgroundImage.slice(0, 27)])""")
    assert tiles == [["mini", 'url("data:image/png;base64,']] * 3
    failed_tile = one(driver, '.grid .tile[data-external-id="missing"]')
    assert "HTTP 404" in failed_tile.find_element(By.CSS_SELECTOR, ".reason").text
    assert "HTTP 404" in one(driver, '.failures tr[data-external-id="missing"] .reason').text

    # The webhook delivery and its attempts (a 500, then a 200); the list is refreshed on demand.
    def delivered() -> bool:
        rows = driver.find_elements(By.CSS_SELECTOR, ".deliveries tr[data-state]")
        if rows and rows[0].get_attribute("data-state") == "delivered":
            return True
        one(driver, "#refresh-deliveries").click()
        time.sleep(0.3)
        return False

    wait_for(delivered, "the webhook delivery")
    row = one(driver, ".deliveries tr[data-state]")
    assert row.find_element(By.CSS_SELECTOR, ".attempt-count").text == "2"
    assert hook in row.text
    assert_accessible_basics(driver)
    screenshot(driver, tmp_path / "2-job.png")

    # Filtering by status (keyboard-operable radio buttons).
    one(driver, 'label[for="filter-failed"]').click()
    visible = [tile.get_attribute("data-external-id") for tile in driver.find_elements(By.CSS_SELECTOR, ".grid .tile")
               if tile.is_displayed()]
    assert visible == ["missing"]
    driver.save_screenshot(str(tmp_path / "3-job-failed-only.png"))
    one(driver, 'label[for="filter-all"]').click()

    # Usable at 360 px: nothing wider than the screen.
    driver.set_window_size(360, 900)
    wait_for(lambda: driver.execute_script("return document.documentElement.scrollWidth") <= 360,
             "no overflow at 360 px")
    driver.save_screenshot(str(tmp_path / "4-job-360px.png"))
    driver.set_window_size(1280, 1000)

    # An image page: GPS, EXIF by name, takenAt, renditions measured from their bytes.
    one(driver, '.grid .tile[data-external-id="paris"] a').click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, '[data-gps="lat"]'), "the image page's GPS")
    assert one(driver, '[data-gps="lat"]').text == f"{camera.decimal(PARIS.latitude, 'N'):.6f}"  # 48.856667
    assert one(driver, '[data-gps="lng"]').text == f"{camera.decimal(PARIS.longitude, 'E'):.6f}"  # 2.350833
    assert one(driver, 'tr[data-tag="Make"] td').text == "Canon"
    assert one(driver, 'tr[data-tag="Model"] td').text == "Canon EOS 5D Mark IV"
    assert one(driver, '[data-fact="dimensions"]').text == f"800 {TIMES} 1200 px"  # upright (orientation 6)
    assert one(driver, '[data-fact="taken-at"] time').get_attribute("datetime").startswith("2018-01-01T08:00:00")
    wait_for(lambda: one(driver, 'tr[data-rendition="mini"] .rendition-size').text == f"100 {TIMES} 100",
             "mini measured")
    wait_for(lambda: one(driver, 'tr[data-rendition="mini"] .rendition-bytes').text.endswith(" KB"), "mini's bytes")
    wait_for(lambda: driver.execute_script("return document.querySelector('.hero-image img').naturalWidth"),
             "the full rendition")
    assert driver.find_elements(By.CSS_SELECTOR, ".swatches .swatch")
    assert_accessible_basics(driver)
    screenshot(driver, tmp_path / "5-image.png")

    # The console's ThumbHash decoder agrees with the server's encoder: the shape and the average colour of
    # the decoded placeholder are those of the upright original.
    job = stack.request("GET", f"/api/v1/import/jobs/{job_id}", token=token).json()
    [paris_id] = [item["image"]["mediaId"] for item in job["images"] if item["externalId"] == "paris"]
    record = stack.request("GET", f"/api/v1/images/{paris_id}", token=token).json()
    decoded = driver.execute_async_script("""
      const [hash, done] = arguments;
      import("/console/thumbhash.js").then(({ thumbHashToRGBA, base64ToBytes }) => {
        const { w, h, rgba } = thumbHashToRGBA(base64ToBytes(hash));
        const sum = [0, 0, 0];
        for (let i = 0; i < rgba.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += rgba[i + c];
        done([w, h, ...sum.map((value) => value / (w * h))]);
      });""", record["placeholder"])
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(paris))).convert("RGB")
    expected = ImageStat.Stat(upright).mean
    width, height, *mean = decoded
    assert height == 32 and 18 <= width <= 24  # portrait 2:3, at most 32 px
    assert all(abs(got - want) < 8 for got, want in zip(mean, expected, strict=True)), (mean, expected)

    # The near-duplicate (the album's copy) side by side with its distance.
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".duplicate .distance"), "the near-duplicate")
    assert "distance" in one(driver, ".duplicate .distance").text
    wait_for(lambda: driver.execute_script(
        "return [...document.querySelectorAll('.duplicate img')].every(i => i.complete && i.naturalWidth > 0)"
        " && document.querySelectorAll('.duplicate img').length === 2"), "both images of the pair")
    one(driver, ".duplicate").location_once_scrolled_into_view  # noqa: B018 - scrolls for the screenshot
    driver.save_screenshot(str(tmp_path / "6-near-duplicate.png"))

    # The album of the single import.
    driver.execute_script("window.location.hash = arguments[0]", f"#/albums/{album}")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, '.grid .tile[data-state="processed"] img.thumb'),
             "the album's processed image")
    wait_for(lambda: driver.execute_script("return document.querySelector('.grid img.thumb').naturalWidth"),
             "the album thumbnail")
    driver.save_screenshot(str(tmp_path / "7-album.png"))
    assert driver.execute_script("return window.pixportConsoleBootedAt") == booted

    # Cancelling a running job from its row.
    driver.execute_script("window.location.hash = '#/jobs'")
    wait_for(lambda: one(driver, "h1").text == "Import jobs", "the jobs page again")
    slow = origin.serve(f"/{unique}/slow.jpg", camera.camera_jpeg(600, 400, PARIS, seed=11), delay=4.0)
    running = stack.import_batch(token, [{"url": slow, "id": "slow", "fileName": "slow.jpg"}])
    one(driver, "#refresh-jobs").click()
    running_css = f'li.job[data-job-id="{running}"]'
    wait_for(lambda: one(driver, running_css).get_attribute("data-state") == "started", "the running job")
    one(driver, f"{running_css} .button-danger").click()
    driver.switch_to.alert.accept()
    wait_for(lambda: one(driver, running_css).get_attribute("data-state") == "cancelled", "the job cancelled")
    assert stack.request("GET", f"/api/v1/import/jobs/{running}", token=token).json()["state"] == "cancelled"
    screenshot(driver, tmp_path / "8-jobs-cancelled.png")

    # Signing out, then in again by pasting the token in the SharinPix spelling; the keyboard reaches the form.
    one(driver, "#sign-out").click()
    wait_for(lambda: one(driver, "h1").text == "Sign in", "the sign-in page")
    assert driver.execute_script("return sessionStorage.length") == 0
    assert not one(driver, "#session").is_displayed() and not one(driver, "#main-nav").is_displayed()
    assert_accessible_basics(driver)
    screenshot(driver, tmp_path / "9-sign-in.png")
    one(driver, "#token-input").send_keys(f'Token token="{token}"')
    one(driver, "#token-input").send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("outerHTML").startswith('<button type="submit"'), \
        driver.switch_to.active_element.get_attribute("outerHTML")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, running_css), "the jobs after signing in again")
    assert driver.execute_script("return window.pixportConsoleBootedAt") == booted

    # The token travelled only in headers: in no URL the browser requested, in nothing it logged.
    sent = network_requests(driver)
    api_calls = [r for r in sent if "/api/v1/" in r["request"]["url"] and "/api/v1/images/" not in r["request"]["url"]]
    streams = [urllib.parse.parse_qs(urllib.parse.urlsplit(r["request"]["url"]).query) for r in api_calls
               if "/api/v1/import/images/status/stream" in r["request"]["url"]]
    first_streams = [q for q in streams if q["id"] == [job_id]][:2]
    # The jobs page followed the running job live; after the cut it resumed after the snapshot's sequence.
    assert [q["afterSequence"][0] != "0" for q in first_streams] == [False, True], streams
    styles = [r["request"]["headers"].get("Authorization") for r in api_calls]
    assert set(styles) == {f"Bearer {token}", f'Token token="{token}"'}, "an API call without the token header"
    encoded = urllib.parse.quote(token, safe="")
    for request in sent:
        url = request["request"]["url"]
        assert token not in url and encoded not in url, url
        if request.get("type") != "Document":
            assert token not in request["request"].get("urlFragment", ""), url
    assert next(r for r in sent if r.get("type") == "Document")["request"]["url"].endswith("/console/")
    for entry in driver.get_log("browser"):
        assert token not in entry["message"]
    page = driver.execute_script("return document.documentElement.outerHTML + JSON.stringify(localStorage)")
    assert token not in page

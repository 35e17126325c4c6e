"""The web dashboard in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

The page opens from a one-time link, shows the workload live, and a status change made
through a fault of the fixture authorization server appears without a reload (a marker
set in the page survives); the buttons stop and start the workload, and ``login`` opens
the authorization URL in a new tab, whose approval brings an ``unauthenticated`` workload
back. Screenshots go to ``build/test-artifacts/`` (their paths are printed). Every wait
talks to the browser from a thread: the fixture servers run in the test's own event loop,
and chromedriver waits for pages they serve (the login tab), so a blocking call would
deadlock.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer
from mcpkeeper.testing.faults import FaultMode
from tests.integration.http_api_support import api_daemon

pytestmark = pytest.mark.integration

_CHROMIUM = "/usr/bin/chromium"
_DRIVER = "/usr/bin/chromedriver"
_ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"

webdriver = pytest.importorskip("selenium.webdriver")
if shutil.which(_CHROMIUM) is None or shutil.which(_DRIVER) is None:  # pragma: no cover - CI installs both
    pytest.fail(
        f"the dashboard test needs {_CHROMIUM} and {_DRIVER} (apt-get install chromium chromium-driver)"
    )

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--disable-popup-blocking",  # the login button opens the authorization URL in a new tab
        "--window-size=1500,700",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(_DRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def _row_status(driver: WebDriver, name: str) -> str | None:
    status = driver.execute_script(
        'const row = document.querySelector(`tr[data-name="${arguments[0]}"]`);'
        "return row ? row.getAttribute('data-status') : null;",
        name,
    )
    return str(status) if status is not None else None


async def _in_row(driver: WebDriver, name: str, selector: str, *, click: bool = False) -> str:
    """The text of ``selector`` in ``name``'s row (clicked first with ``click``); a row being
    redrawn by a live update is looked up again (bounded)."""
    for _ in range(50):
        try:
            return await asyncio.to_thread(_find, driver, f'tr[data-name="{name}"] {selector}', click)
        except (StaleElementReferenceException, NoSuchElementException):
            await asyncio.sleep(0.1)
    row = driver.execute_script(
        'const r = document.querySelector(`tr[data-name="${arguments[0]}"]`); return r && r.outerHTML;', name
    )
    raise AssertionError(f"no {selector} in the row of {name}: {row}")


def _find(driver: WebDriver, selector: str, click: bool) -> str:
    element = driver.find_element(By.CSS_SELECTOR, selector)
    text = str(element.text)
    if click:
        element.click()  # the last call: the row may be redrawn as soon as the click lands
    return text


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll the page from a thread, so the event loop (and the fixture servers in it) runs on."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def _wait_row(driver: WebDriver, name: str, status: str, timeout: float = 20.0) -> None:
    await _until(
        lambda: _row_status(driver, name) == status,
        f"{name} to show {status} (it shows {_row_status(driver, name)})",
        timeout,
    )


def _screenshot(driver: WebDriver, name: str) -> Path:
    _ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = _ARTIFACTS / f"dashboard-{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"dashboard screenshot: {path}")
    return path


async def _log_in_with_the_button(browser: WebDriver, name: str) -> None:
    """Click ``login``: a tab opens on the authorization URL, the fixture approves at once and
    redirects to the daemon's callback; the row turns ``running``."""
    tabs = len(await asyncio.to_thread(lambda: browser.window_handles))
    await _in_row(browser, name, 'button[data-action="login"]', click=True)
    await _until(lambda: len(browser.window_handles) > tabs, "a login tab", 10)
    await _wait_row(browser, name, "running", timeout=30)


async def test_dashboard_shows_status_changes_live_and_its_buttons_work(
    tmp_path: Path, browser: WebDriver
) -> None:
    async with (
        FixtureAuthServer(access_token_lifetime=4) as auth,
        FixtureMCPServer(auth) as mcp,
        FixtureMCPServer(require_auth=False) as open_mcp,
        api_daemon(tmp_path) as (daemon, _),
    ):
        await daemon.client.create_workload("notes", mcp.url)  # no login stored yet
        await daemon.client.create_workload("docs", open_mcp.url, auth=False)
        link = (await daemon.client.dashboard_link())["url"]

        browser.get(link)
        await _wait_row(browser, "docs", "running")
        await _wait_row(browser, "notes", "unauthenticated")
        assert "#code=" not in browser.current_url  # the one-time code left the address bar
        browser.execute_script("window.__notReloaded = true;")
        await _log_in_with_the_button(browser, "notes")
        expiry = await _in_row(browser, "notes", ".expiry")
        assert expiry.startswith(("expires in", "expired")), expiry

        # A WAF blocks the token endpoint: the row turns auth_retrying by itself.
        await auth.set_fault(FaultMode.WAF_HTML_403)
        await _wait_row(browser, "notes", "auth_retrying")
        assert browser.execute_script("return window.__notReloaded === true;")
        assert "auth_retrying" in await _in_row(browser, "notes", ".failures")
        assert browser.find_elements(By.CSS_SELECTOR, 'tr[data-name="notes"] svg.strip rect.s-auth_retrying')
        screenshot = _screenshot(browser, "auth_retrying")
        assert screenshot.stat().st_size > 10_000

        await auth.set_fault(FaultMode.OK)
        await _wait_row(browser, "notes", "running")

        # The buttons: stop and start the open workload.
        await _in_row(browser, "docs", 'button[data-action="stop"]', click=True)
        await _wait_row(browser, "docs", "stopped")
        assert (await daemon.client.get_workload("docs"))["status"] == "stopped"
        await _in_row(browser, "docs", 'button[data-action="start"]', click=True)
        await _wait_row(browser, "docs", "running")

        # The server ends the grant; a new login from the page brings the workload back in place.
        await auth.set_fault(FaultMode.INVALID_GRANT)
        await _wait_row(browser, "notes", "unauthenticated")
        await auth.set_fault(FaultMode.OK)
        await _log_in_with_the_button(browser, "notes")
        assert browser.execute_script("return window.__notReloaded === true;")
        _screenshot(browser, "after-login")

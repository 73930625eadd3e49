"""Browser tests: Playwright for Python driving Debian's Chromium against a real, served application.

* ``chromium_executable`` (session): ``/usr/bin/chromium`` (or ``CRM_CHROMIUM``); when it is missing it is
  installed with apt (``apt-get update`` once, then ``apt-get install -y chromium``). Playwright's own browser
  download (``playwright install``) is never used.
* ``browser`` (session): one Chromium for the whole run, headless.
* ``live_server`` (session): ``create_app`` on the migrated test database (SQLite file, or
  ``CRM_TEST_DATABASE_URL``), served by werkzeug in a thread on ``127.0.0.1:<free port>``. Every 5xx answer
  it gives is recorded and fails the test that caused it.
* ``app`` (function): overrides the core fixture with the served application itself (app context pushed),
  so ``make_contact`` and the services write where the browser reads; the database is emptied after each test.
* ``admin``/``member`` (function): an admin and a normal user (``.email``, ``.password``, ``.id``).
* ``page`` (function): a page in a fresh browser context (English unless the test asks with
  ``@pytest.mark.browser_locale("fr-FR")``); ``pages.open(locale)`` opens another visitor's page. A JavaScript
  error on any of them, or a 5xx from the server, fails the test.
* ``login(page, user)``: sign in through the real form.
* ``screenshot(page, name)``: a full-page PNG in ``artifacts/screenshots/<name>.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 10_000  # per action / expectation: a broken page fails in seconds, not after 30 s
PASSWORD = "browser-pass-123"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser_locale(locale): the browser context's language (fr-FR, ...)")


# --------------------------------------------------------------------------------------------------------
# Chromium and Playwright


def _install_chromium() -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
            "run 'apt-get update && apt-get install -y chromium'",
            pytrace=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "chromium"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(
                f"'{' '.join(command)}' failed ({done.returncode}):\n{done.stderr[-2000:]}", pytrace=False
            )


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("CRM_CHROMIUM", CHROMIUM)
    if not os.path.exists(path):
        if path != CHROMIUM:
            pytest.fail(f"CRM_CHROMIUM={path} does not exist", pytrace=False)
        _install_chromium()
    return path


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright, chromium_executable: str) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
    expect.set_options(timeout=TIMEOUT_MS)
    yield browser
    browser.close()


# --------------------------------------------------------------------------------------------------------
# The served application


class _ErrorRecorder:
    """WSGI middleware noting every 5xx answer, so the test that caused it fails with its path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            if status[:1] == "5":
                self.errors.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')} -> {status}")
            return start_response(status, headers, *args)

        try:
            return self.app(environ, recording_start_response)
        except Exception as exc:
            self.errors.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')} raised {exc!r}")
            raise


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would drown the test output; 5xx are recorded by _ErrorRecorder


@dataclass
class LiveServer:
    url: str
    app: Any
    recorder: _ErrorRecorder


@pytest.fixture(scope="session")
def live_server(crm_database_url: str, crm_migrated: list[str]) -> Iterator[LiveServer]:
    from crmcore import create_app

    app = create_app(
        {"DATABASE_URL": crm_database_url, "SECRET_KEY": "browser-tests", "PLUGINS": None, "TESTING": False}
    )
    recorder = _ErrorRecorder(app.wsgi_app)
    app.wsgi_app = recorder
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="crm-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, recorder)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        from crmcore.extensions import db

        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(live_server: LiveServer, crm_migrated: list[str]) -> Iterator[Any]:
    """The served application itself, its app context pushed in the test (overrides ``crmcore.testing.app``
    so ``make_contact``, ``make_user`` ... write where the browser reads). The database is emptied after."""
    from crmcore.extensions import db
    from crmcore.testing import _empty_database

    with live_server.app.app_context():
        yield live_server.app
        db.session.remove()
    _empty_database(live_server.app, crm_migrated)


@dataclass
class BrowserUser:
    id: int
    email: str
    password: str
    is_admin: bool


@pytest.fixture(scope="session")
def password_hash() -> str:
    """``PASSWORD`` hashed once: hashing is deliberately slow and every test makes its users anew."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD)


def _make_user(email: str, name: str, is_admin: bool, password_hash: str) -> BrowserUser:
    from crmcore.extensions import db
    from crmcore.services.users import create_user

    user = create_user(email, None, is_admin=is_admin, name=name)
    user.password_hash = password_hash  # what create_user(email, PASSWORD) would store, without re-hashing
    db.session.commit()
    return BrowserUser(user.id, user.email, PASSWORD, is_admin)


@pytest.fixture
def admin(app: Any, password_hash: str) -> BrowserUser:
    return _make_user("admin@example.com", "Ada Admin", True, password_hash)


@pytest.fixture
def member(app: Any, password_hash: str) -> BrowserUser:
    return _make_user("member@example.com", "Max Member", False, password_hash)


# --------------------------------------------------------------------------------------------------------
# Pages


class Pages:
    """Opens pages, each in its own browser context (its own cookies: another person), and checks them."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []
        self.js_errors: list[str] = []

    def open(self, locale: str = "en-US") -> Page:
        context = self.browser.new_context(
            base_url=self.server.url, locale=locale, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.js_errors.append(f"{page.url}: {error}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, live_server: LiveServer) -> Iterator[Pages]:
    """``pages.open(locale="fr-FR")``: another visitor. The test fails on any 5xx or JavaScript error."""
    opened = Pages(browser, live_server)
    before = len(live_server.recorder.errors)
    yield opened
    opened.close()
    server_errors = live_server.recorder.errors[before:]
    assert not server_errors, f"the server answered 5xx: {server_errors}"
    assert not opened.js_errors, f"JavaScript errors on the page: {opened.js_errors}"


@pytest.fixture
def page(pages: Pages, request: pytest.FixtureRequest) -> Page:
    """A page in a fresh context: English unless ``@pytest.mark.browser_locale("fr-FR")``."""
    marker = request.node.get_closest_marker("browser_locale")
    return pages.open(marker.args[0] if marker else "en-US")


def sign_in(page: Page, user: BrowserUser, next_path: str | None = None) -> None:
    """Sign in through the form on /login (a real POST with its CSRF token)."""
    page.goto("/login" + (f"?next={next_path}" if next_path else ""))
    page.locator("input[name=email]").fill(user.email)
    page.locator("input[name=password]").fill(user.password)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.fixture
def login() -> Callable[..., None]:
    return sign_in


SCREENSHOTS = Path("artifacts") / "screenshots"


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    folder = pytestconfig.rootpath / SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

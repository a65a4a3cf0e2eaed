"""Browser tests: Playwright (sync API) drives Debian's Chromium against pytest-django's
live server. Browsers are never downloaded: the system Chromium is used.

No /usr/bin/chromium -> these tests skip, unless REQUIRE_BROWSER=1 (CI), then they fail.
SCREENSHOTS=1 saves the screenshots the tests take to docs/screenshots/ for review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told this is fine (it is: nothing here is async).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def _plain_http_server():
    """The deployed profile (DATABASE_URL set) redirects to HTTPS and marks cookies Secure;
    the live server speaks plain HTTP. SecurityMiddleware reads its settings once, when the
    server thread builds its handler, so this must happen before the server starts."""
    from django.conf import settings

    names = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
    before = {name: getattr(settings, name, False) for name in names}
    for name in names:
        setattr(settings, name, False)
    yield
    for name, value in before.items():
        setattr(settings, name, value)


@pytest.fixture(scope="session")
def live_server(_plain_http_server, live_server):
    return live_server


@pytest.fixture(autouse=True)
def _live_settings(settings, tmp_path, celery_eager):
    """Uploads in a temporary MEDIA_ROOT, tasks inline (also when REDIS_URL is set)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def new_page(browser, live_server):
    """Make pages (each in a fresh browser context, i.e. fresh cookies) on the live server."""
    contexts = []

    def make(width: int = 1280, height: int = 860, **options):
        """``options`` go to the context: has_touch=True, is_mobile=True for a phone."""
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def shot(tmp_path):
    """Save a full-page screenshot: into docs/screenshots/ with SCREENSHOTS=1, else tmp."""
    target = SCREENSHOT_DIR if os.environ.get("SCREENSHOTS") == "1" else tmp_path

    def take(page, name: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    return take


@pytest.fixture
def demo_users(db):
    """The demo users (admin@demo.example …) with the demo password, as `seed_demo` makes them."""
    from accounts.demo import demo_users_ensure

    return demo_users_ensure()


@pytest.fixture
def login(demo_users):
    from playwright.sync_api import expect

    from accounts.demo import DEMO_PASSWORD

    def sign_in(page, email: str):
        page.goto("/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your book")).to_be_visible()
        return page

    return sign_in

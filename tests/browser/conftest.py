"""Browser fixtures: Debian's chromium driven by playwright, against a real daphne.

The server is the end-to-end harness's (tests/e2e/harness.py). Users sign in through a
session made in the test process (the database is shared with the server); one test
signs in through the login form itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from messaging.models import User
from tests.conftest import require_server
from tests.e2e.conftest import StartServer, start_server  # noqa: F401  (a fixture used here)
from tests.e2e.harness import DaphneServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The machine is shared with other test runs: generous, never unbounded.
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One chromium per test module. Not per session: playwright's sync API keeps an event
    loop running in this thread until it stops, which breaks later async tests."""
    require_server("chromium", CHROMIUM.exists(), str(CHROMIUM))
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    # Playwright's sync API runs an event loop under the test, so Django would refuse the
    # test's own (synchronous) ORM calls; playwright's docs give this switch for it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def server(start_server: StartServer) -> DaphneServer:  # noqa: F811
    """A daphne of the test run's settings, which keeps Django's async safety checks on."""
    return start_server(DJANGO_ALLOW_ASYNC_UNSAFE=None)


OpenChat = Callable[..., object]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def open_chat(request: pytest.FixtureRequest, browser, server: DaphneServer) -> Iterator[OpenChat]:
    """open_chat(user, hash="", width=1280, height=800) -> a page of the chat, signed in.

    When the test fails, the pages' console and the server's log are printed with it."""
    contexts = []
    console: list[str] = []

    def open_page(user: User, hash: str = "", *, width: int = 1280, height: int = 800) -> object:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        context.add_cookies([session_cookie(user, server.origin)])
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda message: console.append(f"{user.username}: {message.type}: {message.text}"))
        page.on("websocket", lambda ws: _log_frames(ws, user.username, console))
        page.goto(f"{server.origin}/chat/{hash}")
        page.wait_for_selector("#connection-state[data-state=open]", state="attached")
        return page

    yield open_page
    for context in contexts:
        context.close()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print("--- browser console and WebSocket frames ---", *console, sep="\n")
        print("--- server log ---", server.stderr()[-20_000:], sep="\n")


def _log_frames(ws, who: str, log: list[str]) -> None:
    ws.on("framesent", lambda payload: log.append(f"{who} -> {str(payload)[:300]}"))
    ws.on("framereceived", lambda payload: log.append(f"{who} <- {str(payload)[:300]}"))
    ws.on("close", lambda _: log.append(f"{who}: socket closed"))


def session_cookie(user: User, origin: str) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": origin,
    }

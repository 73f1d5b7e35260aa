"""Fixtures of the web terminal tests: the real app on a background thread, a REST helper to set
up users and counterparties, and headless Debian Chromium driven by playwright."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ci import skip_or_fail

from .helpers import CHROMIUM, BrokerRest

# generous for loaded CI machines; a passing run waits far less
expect.set_options(timeout=10_000)
ADMIN_PASSWORD = "Operator-pass-123"  # the policy refuses a password holding "admin"
ARTIFACTS = Path(__file__).parent / "artifacts"


class ServerThread:
    """``VenueServer`` (venue + broker + page) on its own event loop in a daemon thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="tf-web-server", daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(60):
            raise TimeoutError("the server did not start within 60 s")
        if self.error is not None:
            raise RuntimeError("the server failed to start") from self.error

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from tradingfloor.node.serve import ServeOptions, VenueServer

        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        server = VenueServer(
            ServeOptions(
                data_dir=self.data_dir,
                fix_port=0,
                http_port=0,
                broker_port=0,
                udp_feed=None,
                admin_password=ADMIN_PASSWORD,
                announce=lambda _line: None,
                tick_interval=0.2,
            )
        )
        try:
            await server.start()
            self.port = server.broker_port
            self.ready.set()
            await self.stop_event.wait()
        finally:
            await server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (skipped when missing outside CI; in CI a missing one fails:
    tests/ci.py).

    Module-scoped: Playwright's sync API keeps an event loop running on this thread while it
    is started, which would stop the asyncio tests (pytest-asyncio) that this worker runs next.
    """
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    driver = sync_playwright().start()
    chromium = driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    try:
        yield chromium
    finally:
        chromium.close()
        driver.stop()


@pytest.fixture
def server(tmp_path: Path, browser: Browser) -> Iterator[BrokerRest]:
    """A fresh venue and broker per test (the login throttle counts per client address, and
    every client here is 127.0.0.1); yields the REST helper pointed at it."""
    thread = ServerThread(tmp_path / "venue")
    thread.start()
    rest = BrokerRest(f"http://127.0.0.1:{thread.port}", ADMIN_PASSWORD)
    try:
        yield rest
    finally:
        rest.close()
        thread.stop()


@pytest.fixture
def page(browser: Browser, server: BrokerRest) -> Iterator[Page]:
    """A new browser page on the terminal; fails the test on any uncaught page error."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1600, "height": 960})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: print(f"[browser {msg.type}] {msg.text}") if msg.type == "error" else None,
    )
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def artifacts() -> Path:
    """tests/web/artifacts/ (git-ignored by its own .gitignore) for screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

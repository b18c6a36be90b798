"""Fixtures of the console's browser tests (see helpers.py for the pieces).

- ``console_daemon`` (session): ``hadaemon run`` on a copy of etc/hadaemon.toml, on a
  free port, its own state directory, the admin password from
  ``HADAEMON_ADMIN_PASSWORD`` (helpers.PASSWORD). Shared: tests only read, or write their
  own things, and never stop it.
- ``console_daemon_factory`` (function): ``factory(password=..., edit=...)`` starts a
  daemon of the test's own (to restart, to run without a password, ...); stopped after.
- ``browser`` (session): Chromium (``/usr/bin/chromium``, or ``HADAEMON_CHROMIUM``).
- ``open_page`` (function): ``open_page(daemon=None, login=True, viewport=DESKTOP,
  hash_="#/")`` a page in a fresh browser context (its own cookies), logged in through
  the API unless ``login=False``, at that route and ready.
- ``page`` (function): ``open_page()``: logged in to ``console_daemon``, on the overview.

Without Playwright or Chromium the tests are skipped, except under CI (``CI`` set), where
they fail: CI must run them (``.ci/run`` installs the browser).

A failing test saves a screenshot of each of its pages (the paths are in the failure
report, under the test's tmp dir, or ``HADAEMON_CONSOLE_ARTIFACTS`` when set) and the end
of its daemons' output.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from hadaemon.testing.processes import ChildProcesses
from tests.console.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    TIMEOUT_MS,
    ConsoleDaemon,
    goto,
)

_PAGES = pytest.StashKey[list[Any]]()
_DAEMONS = pytest.StashKey[list[ConsoleDaemon]]()
_NO_BROWSER_NEEDED = {"test_static.py"}

try:
    import playwright.sync_api
    _PLAYWRIGHT_MISSING = None
except ImportError as exc:
    _PLAYWRIGHT_MISSING = f"Playwright is not installed ({exc}): pip install -e '.[test]'"


def pytest_ignore_collect(collection_path: pathlib.Path, config: pytest.Config) -> bool | None:
    """Without Playwright the test modules (which import it) are not collected, and the
    summary says so; under CI they are, and fail to import: CI must run them."""
    if (_PLAYWRIGHT_MISSING and not os.environ.get("CI")
            and collection_path.name.startswith("test_")
            and collection_path.name not in _NO_BROWSER_NEEDED):
        return True
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PLAYWRIGHT_MISSING and not os.environ.get("CI"):
        terminalreporter.write_line(
            f"tests/console: the browser tests were not run: {_PLAYWRIGHT_MISSING}",
            yellow=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI (the CI variable is set) must run the browser tests: "
                    ".ci/run installs chromium with apt-get", pytrace=False)
    pytest.skip(reason)


# Package scope, not session: Playwright's sync API keeps its asyncio loop running in
# this thread while it is open, and the suite's reactor tests after tests/console must be
# able to run their own loop.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                     "HADAEMON_CHROMIUM)")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    # (launch() gives the browser a fresh temporary profile of its own)
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                          headless=True)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="package")
def console_processes() -> Iterator[ChildProcesses]:
    with ChildProcesses() as children:
        yield children


@pytest.fixture(scope="package")
def console_daemon(tmp_path_factory: pytest.TempPathFactory,
                   console_processes: ChildProcesses) -> Iterator[ConsoleDaemon]:
    daemon = ConsoleDaemon(tmp_path_factory.mktemp("console-daemon"), console_processes)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def console_daemon_factory(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path,
) -> Iterator[Callable[..., ConsoleDaemon]]:
    reported: list[ConsoleDaemon] = request.node.stash.setdefault(_DAEMONS, [])
    made: list[ConsoleDaemon] = []  # (this test's own: the shared one is never stopped)
    with ChildProcesses() as children:
        def factory(*, start: bool = True, **options: Any) -> ConsoleDaemon:
            daemon = ConsoleDaemon(tmp_path / f"daemon-{len(made) + 1}", children, **options)
            made.append(daemon)
            reported.append(daemon)
            return daemon.start() if start else daemon

        yield factory
        for daemon in made:
            daemon.stop()


@pytest.fixture
def open_page(request: pytest.FixtureRequest, browser: Any,
              console_daemon: ConsoleDaemon) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []
    pages: list[Any] = request.node.stash.setdefault(_PAGES, [])
    shared = request.node.stash.setdefault(_DAEMONS, [])
    if console_daemon not in shared:
        shared.append(console_daemon)

    def opener(daemon: ConsoleDaemon | None = None, *, login: bool = True,
               viewport: dict[str, int] | None = None, hash_: str = "#/",
               wait: bool = True) -> Any:
        daemon = daemon or console_daemon
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=daemon.url)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.console_messages = []  # the browser's console, for failure reports
        page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
        pages.append(page)
        if login:
            answer = context.request.post(f"{daemon.url}/api/login",
                                          data={"password": daemon.password})
            assert answer.ok, answer.text()
        if wait:
            goto(page, daemon, hash_)
        else:
            page.goto(f"{daemon.url}/{hash_}")
        return page

    yield opener
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Any]) -> Any:
    return open_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        _save_evidence(item, report)
    return report


def _save_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    pages = item.stash.get(_PAGES, [])
    if pages:
        base = os.environ.get("HADAEMON_CONSOLE_ARTIFACTS")
        if base:
            folder = pathlib.Path(base)
        else:
            tmp = getattr(item, "funcargs", {}).get("tmp_path")
            folder = tmp or item.config._tmp_path_factory.mktemp("console-artifacts")  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", item.name)
        lines = []
        for index, page in enumerate(pages, 1):
            path = folder / f"{name}-{index}.png"
            try:
                if page.is_closed():
                    continue
                page.screenshot(path=str(path), full_page=True)
                lines.append(f"screenshot: {path} (at {page.url})")
            except Exception as exc:  # a crashed page: say so, keep the report
                lines.append(f"no screenshot of page {index}: {exc}")
            messages = getattr(page, "console_messages", [])
            if messages:
                lines.append(f"browser console of page {index} (last 30):")
                lines.extend(f"  {m}" for m in messages[-30:])
        report.sections.append(("console screenshots", "\n".join(lines)))
        print("\n".join(lines))
    for daemon in item.stash.get(_DAEMONS, []):
        report.sections.append((f"daemon on {daemon.url} (end of its output)",
                                daemon.output()[-6000:]))

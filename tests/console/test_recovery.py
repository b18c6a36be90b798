"""The console recovers by itself when the daemon restarts.

What "recovers" means here: the daemon keeps sessions in memory only (no session secret
is ever on disk), so a restart logs every browser out. The open page, with nobody
touching it, (1) says it lost the daemon ("Reconnecting…", announced through the
connection indicator's aria-live) and keeps trying, (2) once the daemon answers again and
the session is found gone, shows the login page by itself, and (3) after the login
returns to the page that was open, live again: no reload, no second tab.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.console.helpers import ConsoleDaemon, login_in_browser, wait_ready


def test_the_page_comes_back_after_the_daemon_restarts(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    daemon = console_daemon_factory()
    page = open_page(daemon, hash_="#/log")
    connection = page.locator("#connection")
    expect(connection).to_have_text("Live")
    expect(connection).to_have_attribute("aria-live", "polite")
    before = page.locator("#log tbody tr").count()
    assert before > 0

    daemon.stop()
    expect(connection).to_have_text("Reconnecting…")
    # the log page says it cannot reach the daemon, and keeps what it showed
    expect(page.locator("#log-state")).to_contain_text("does not answer")
    assert page.locator("#log tbody tr").count() >= before

    daemon.restart()
    # By itself: the login page, since the daemon forgot the session.
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_visible()
    expect(page).to_have_url(f"{daemon.url}/#/login")
    login_in_browser(page, daemon.password or "")
    # Back where it was, following the new daemon.
    expect(page).to_have_url(f"{daemon.url}/#/log")
    wait_ready(page)
    expect(connection).to_have_text("Live")
    name = f"console_recovery_{uuid.uuid4().hex[:8]}"
    status, body = daemon.request("PUT", f"/api/sysvars/{name}", {"value": 1},
                                  headers=daemon.session())
    assert status == 200, body
    expect(page.locator("#log tbody tr", has_text=name)).to_have_count(1)


def test_the_overview_comes_back_with_the_new_daemons_figures(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    daemon = console_daemon_factory()
    page = open_page(daemon, hash_="#/")
    expect(page.locator("#connection")).to_have_text("Live")
    status, answer = daemon.request("GET", "/api/status", headers=daemon.session())
    assert status == 200, answer
    started_before = answer["started_at"]
    daemon.restart()
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_visible()
    login_in_browser(page, daemon.password or "")
    wait_ready(page)
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_focused()
    expect(page.locator("#connection")).to_have_text("Live")
    status, answer = daemon.request("GET", "/api/status", headers=daemon.session())
    assert answer["started_at"] > started_before
    # the figures are the new daemon's: its plugins all running again
    for plugin in answer["plugins"]:
        expect(page.locator(f'#plugins tr[data-plugin="{plugin["name"]}"] .badge')
               ).to_have_text("running")

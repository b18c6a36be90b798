"""The overview: every plugin and world with its state, the counts, uptime, reactor lag
and recent errors, kept live; on a phone the navigation folds behind a button."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon


def test_overview_shows_every_plugin_count_and_the_reactor_lag(
    page: Any, console_daemon: ConsoleDaemon,
) -> None:
    status, answer = console_daemon.request("GET", "/api/status",
                                            headers=console_daemon.session())
    assert status == 200, answer
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_focused()
    expect(page.locator("#daemon-summary")).to_contain_text(answer["name"])
    expect(page.locator("#daemon-summary")).to_contain_text(
        f"hadaemon {answer['versions']['hadaemon']}")
    # Every plugin of the example (the three worlds among them) with its state.
    names = {p["name"] for p in answer["plugins"]}
    assert {"nodes", "services", "zigbee2mqtt", "web"} <= names
    for plugin in answer["plugins"]:
        row = page.locator(f'#plugins tr[data-plugin="{plugin["name"]}"]')
        expect(row.locator(".badge")).to_have_text(plugin["state"])
    # The three worlds, each with its own state.
    expect(page.locator('#worlds [data-world="nodes"]')).to_contain_text("3 of 3 running")
    expect(page.locator('#worlds [data-world="services"]')).to_contain_text("1 of 1 running")
    expect(page.locator('#worlds [data-world="zigbee"]')).to_contain_text(
        re.compile(r"bridge online, \d+ devices"))
    # The counts are the API's (devices of all worlds: the demo's 3 and zigbee's).
    for key in ("devices", "variables", "nodes", "services"):
        expect(page.locator(f'#counts [data-count="{key}"]')).to_have_text(
            str(answer["counts"][key]))
    assert answer["counts"]["devices"] > 3 and answer["counts"]["nodes"] == 3
    # The reactor's lag as milliseconds; the uptime ticks.
    expect(page.locator('#lag [data-lag="p99"]')).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    uptime = page.locator("#uptime")
    first = uptime.inner_text()
    expect(uptime).not_to_have_text(first)
    expect(page.locator("#connection")).to_have_text("Live")


def test_overview_follows_the_daemon_live(page: Any, console_daemon: ConsoleDaemon) -> None:
    count = page.locator('#counts [data-count="system_variables"]')
    headers = console_daemon.session()

    def api_count() -> int:
        status, answer = console_daemon.request("GET", "/api/status", headers=headers)
        assert status == 200, answer
        return int(answer["counts"]["system_variables"])

    def page_shows_the_api_count() -> bool:
        # (other system variables may appear meanwhile: the example's service makes one)
        return count.inner_text() == str(api_count())

    poll_until(page_shows_the_api_count, timeout=30, interval=0.2,
               what="the page showing the count")
    name = f"console_overview_{uuid.uuid4().hex[:8]}"
    before = api_count()
    status, body = console_daemon.request("POST", "/api/sysvars",
                                          {"name": name, "value": 1}, headers=headers)
    assert status in (200, 201), body
    try:
        # no reload: the page re-reads the status by itself
        poll_until(lambda: int(count.inner_text()) > before and page_shows_the_api_count(),
                   timeout=30, interval=0.2, what="the new system variable counted on the page")
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)
    poll_until(page_shows_the_api_count, timeout=30, interval=0.2,
               what="the deletion counted on the page")


def test_recent_errors_appear_as_they_happen(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    # ComfortMonitor warns below its minimum: with 100 °C every demo reading is a warning.
    def cold(text: str) -> str:
        assert "static = { minimum = 19.0 }" in text
        return text.replace("static = { minimum = 19.0 }", "static = { minimum = 100.0 }")

    daemon = console_daemon_factory(edit=cold)
    page = open_page(daemon)
    errors = page.locator("#errors li")
    expect(errors.first).to_contain_text("is below 100.0")
    shown = errors.count()
    # more arrive while the page is open, newest first
    expect(errors).not_to_have_count(shown)
    expect(errors.first.locator(".badge")).to_have_text("warning")


BROKEN_PLUGINS = '''
"""Plugins of the test's plugin directory that cannot start."""
from hadaemon.plugin import Plugin


class BrokenAtStart(Plugin):
    name = "broken_at_start"  # (started before the web plugin: the order puts it early)

    def start(self) -> None:
        raise RuntimeError("cannot reach the test's device (refused on purpose)")


class BrokenAfterWeb(Plugin):
    name = "broken_after_web"
    wants = ("web",)  # started after the web plugin, which hears its error event

    async def start(self) -> None:
        raise ValueError("its config is wrong (refused on purpose)")
'''


def test_plugins_that_failed_to_start_are_shown_failed_with_their_errors(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    # Real plugins in the config's plugin directory ([daemon].plugin_dirs), enabled.
    def enable(text: str) -> str:
        assert text.count('"web"]') == 1
        return text.replace('"web"]', '"web", "broken_at_start", "broken_after_web"]')

    daemon = console_daemon_factory(start=False, edit=enable)
    (daemon.config.parent.parent / "plugins" / "broken.py").write_text(BROKEN_PLUGINS)
    daemon.start()
    status, answer = daemon.request("GET", "/api/status", headers=daemon.session())
    assert status == 200, answer
    states = {p["name"]: p["state"] for p in answer["plugins"]}
    assert states["broken_at_start"] == states["broken_after_web"] == "failed"
    assert states["web"] == "running"
    heard = {e["source"] for e in answer["recent_errors"]}
    assert "plugin:broken_after_web" in heard and "plugin:broken_at_start" not in heard

    page = open_page(daemon)
    failures = {
        "broken_at_start": "failed to start: cannot reach the test's device (refused on purpose)",
        "broken_after_web": "failed to start: its config is wrong (refused on purpose)",
    }
    for name, error in failures.items():
        row = page.locator(f'#plugins tr[data-plugin="{name}"]')
        expect(row.locator(".badge")).to_have_text("failed")
        expect(row.locator(".plugin-error")).to_have_text(error)
        # once among the recent errors, with its source (the one the web plugin could not
        # hear: "at start")
        item = page.locator("#errors li", has_text=error)
        expect(item).to_have_count(1)
        expect(item).to_contain_text(f"plugin:{name}")
        expect(item.locator(".badge")).to_have_text("error")
    expect(page.locator("#errors li", has_text="at start")).to_have_count(1)
    expect(page.locator("#errors li", has_text="at start")).to_contain_text("broken_at_start")
    # the other plugins run on, and the summary says two are not running
    expect(page.locator('#plugins tr[data-plugin="web"] .badge')).to_have_text("running")
    expect(page.locator("#plugins .plugin-error")).to_have_count(2)
    total = len(answer["plugins"])
    expect(page.locator("#daemon-summary .warn")).to_have_text(
        f"{total - 2} of {total} plugins running")
    expect(page.locator('#worlds [data-world="nodes"]')).to_contain_text("3 of 3 running")


def test_on_a_phone_the_navigation_folds_behind_a_button(
    open_page: Callable[..., Any],
) -> None:
    page = open_page(viewport=PHONE)
    menu = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Pages")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Log").click()
    expect(page.get_by_role("heading", name="Log", exact=True)).to_be_focused()
    expect(nav).to_be_hidden()  # folded again after the choice
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

"""The Services page on the example config: ComfortMonitor with its state, counts and
recent lines, and a restart that asks first, happens in the daemon and shows its result."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon

SERVICE = "comfortmonitor_py"


def _service(daemon: ConsoleDaemon, headers: dict[str, str]) -> dict[str, Any]:
    status, answer = daemon.request("GET", f"/api/services/{SERVICE}", headers=headers)
    assert status == 200, answer
    return answer


def test_services_page_lists_comfortmonitor_with_its_lines(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    info = _service(console_daemon, headers)
    page = open_page(hash_="#/services")
    expect(page.get_by_role("heading", name="Services", exact=True)).to_be_focused()
    card = page.get_by_role("article", name="ComfortMonitor")
    expect(card).to_have_attribute("data-service", SERVICE)
    expect(card.locator(".service-state")).to_have_text("running")
    expect(card.locator(".service-failures")).to_have_text(str(info["failures"]))
    # Its lines, newest first: ComfortMonitor warns about each cold demo reading and logs
    # hall_presence's news, so new ones keep coming while the page is open.
    lines = card.get_by_role("log", name="Recent lines of ComfortMonitor, newest first")
    expect(lines.locator("li.log-line").first).to_be_visible()
    newest = lines.locator("li.log-line").first.inner_text()
    expect(lines.locator("li.log-line").first).not_to_have_text(newest)
    times = lines.locator("time").evaluate_all("els => els.map(e => e.dateTime)")
    assert times == sorted(times, reverse=True), times
    assert len(times) <= 50


def test_restart_asks_first_then_restarts_and_shows_the_result(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    before = _service(console_daemon, headers)
    page = open_page(hash_="#/services")
    card = page.get_by_role("article", name="ComfortMonitor")
    expect(card.locator(".service-starts")).to_have_text(str(before["starts"]))

    # Cancel: nothing happens.
    card.get_by_role("button", name="Restart", exact=True).click()
    ask = card.get_by_role("group", name="Restart ComfortMonitor?")
    expect(ask).to_be_visible()
    expect(ask.get_by_role("button", name="Restart now")).to_be_focused()
    ask.get_by_role("button", name="Cancel").click()
    expect(ask).to_be_hidden()
    expect(card.get_by_role("button", name="Restart", exact=True)).to_be_focused()
    assert _service(console_daemon, headers)["starts"] == before["starts"]

    # Confirmed (by keyboard): the daemon restarts it, the card says so.
    card.get_by_role("button", name="Restart", exact=True).click()
    page.keyboard.press("Enter")  # on "Restart now", focused
    result = card.locator(".service-result")
    expect(result).to_have_text(re.compile(
        rf"^Restarted at .+: running, {before['starts'] + 1} start\(s\)\.$"))
    expect(result).to_have_class(re.compile(r"\bok\b"))
    after = _service(console_daemon, headers)
    assert after["starts"] == before["starts"] + 1
    assert after["restarts"] == before["restarts"] + 1
    assert after["state"] == "running"
    expect(card.locator(".service-starts")).to_have_text(str(after["starts"]))
    expect(card.locator(".service-restarts")).to_have_text(str(after["restarts"]))
    # Its Start ran again: the line it logs is among the newest shown.
    expect(card.locator("li.log-line", has_text="Started, warning below 19.0").first
           ).to_be_visible()


def test_a_restart_that_fails_says_why(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    # A disabled service cannot be restarted: the API answers 409 `disabled`.
    def disabled(text: str) -> str:
        marker = "[services.service.ComfortMonitor]\n"
        assert marker in text
        return text.replace(marker, marker + "enabled = false\n")

    daemon = console_daemon_factory(edit=disabled)
    page = open_page(daemon, hash_="#/services")
    card = page.get_by_role("article", name="ComfortMonitor")
    expect(card.locator(".service-state")).to_have_text("disabled")
    card.get_by_role("button", name="Restart", exact=True).click()
    card.get_by_role("button", name="Restart now").click()
    result = card.locator(".service-result")
    expect(result).to_have_text(re.compile(r"^The restart failed: service .* is disabled"))
    expect(result).to_have_class(re.compile(r"\berror\b"))
    status, answer = daemon.request("GET", f"/api/services/{SERVICE}",
                                    headers=daemon.session())
    assert status == 200 and answer["state"] == "disabled", answer
    poll_until(lambda: page.locator(".service-restart").is_enabled(), timeout=20,
               what="the restart button back")


def test_services_on_a_phone(open_page: Callable[..., Any]) -> None:
    page = open_page(hash_="#/services", viewport=PHONE)
    expect(page.get_by_role("article", name="ComfortMonitor")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

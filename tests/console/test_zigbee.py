"""The Zigbee page on the example config (the simulated zigbee2mqtt bridge): the bridge's
state as the API has it, and permit join opened for N seconds, counting down, closed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon


def _bridge(daemon: ConsoleDaemon, headers: dict[str, str]) -> dict[str, Any]:
    status, answer = daemon.request("GET", "/api/zigbee", headers=headers)
    assert status == 200, answer
    return answer


def test_zigbee_page_shows_the_bridge(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    bridge = _bridge(console_daemon, console_daemon.session())
    assert bridge["online"] and bridge["devices"] > 0
    page = open_page(hash_="#/zigbee")
    expect(page.get_by_role("heading", name="Zigbee", exact=True)).to_be_focused()
    facts = page.get_by_role("region", name="Bridge")
    expect(facts.locator(".bridge-version")).to_have_text(bridge["version"])
    expect(facts.locator(".bridge-online")).to_have_text("online")
    expect(facts.locator(".bridge-started")).to_have_text("yes")
    expect(facts.locator(".bridge-ready")).to_have_text("yes")
    expect(facts.locator(".bridge-devices")).to_have_text(str(bridge["devices"]))
    expect(facts.locator(".bridge-groups")).to_have_text(str(bridge["groups"]))


def test_permit_join_counts_down_and_closes(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    page = open_page(hash_="#/zigbee")
    permit = page.get_by_role("region", name="Permit join")
    countdown = permit.get_by_role("timer")
    state = permit.locator(".permit-state")
    expect(state).to_have_text("Permit join is closed: no new device can join.")
    expect(permit.get_by_role("button", name="Close now")).to_be_disabled()
    try:
        permit.get_by_label("Seconds (1 to 254)").fill("40")
        permit.get_by_role("button", name="Permit join").click()
        expect(state).to_have_text("Permit join is open: new devices may join.")
        poll_until(lambda: _bridge(console_daemon, headers)["permit_join"], timeout=20,
                   what="the bridge to permit joining")
        # A live countdown from 40 s: each second one less.
        expect(countdown).to_have_text(re.compile(r"^Closes in \d+ s\.$"))
        first = int(countdown.get_attribute("data-remaining") or "0")
        assert 30 <= first <= 40, first
        expect(countdown).not_to_have_attribute("data-remaining", str(first))
        later = int(countdown.get_attribute("data-remaining") or "0")
        assert 0 < later < first
        close = permit.get_by_role("button", name="Close now")
        expect(close).to_be_enabled()
        close.click()
        expect(state).to_have_text("Permit join is closed: no new device can join.")
        expect(countdown).to_have_text("")
        poll_until(lambda: not _bridge(console_daemon, headers)["permit_join"], timeout=20,
                   what="the bridge to stop permitting joins")
    finally:
        console_daemon.request("POST", "/api/zigbee/permit_join", {"seconds": 0},
                               headers=headers)


def test_permit_join_refuses_a_bad_duration_before_asking(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(hash_="#/zigbee")
    permit = page.get_by_role("region", name="Permit join")
    seconds = permit.get_by_label("Seconds (1 to 254)")
    for bad in ("0", "255", "2.5", ""):
        seconds.fill(bad)
        permit.get_by_role("button", name="Permit join").click()
        expect(permit.get_by_role("alert")).to_have_text("Seconds: a whole number from 1 to 254.")
        expect(seconds).to_be_focused()
    assert not _bridge(console_daemon, console_daemon.session())["permit_join"]


def test_zigbee_without_the_adapter_says_how_to_enable_it(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    def without(text: str) -> str:
        assert '"zigbee2mqtt", ' in text
        return text.replace('"zigbee2mqtt", ', "")

    daemon = console_daemon_factory(edit=without)
    page = open_page(daemon, hash_="#/zigbee")
    expect(page.get_by_role("alert")).to_have_text(re.compile(
        r"^The zigbee2mqtt adapter is not enabled: add \"zigbee2mqtt\""))


def test_zigbee_on_a_phone(open_page: Callable[..., Any]) -> None:
    page = open_page(hash_="#/zigbee", viewport=PHONE)
    expect(page.get_by_role("button", name="Permit join")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

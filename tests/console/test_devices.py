"""The Devices page in real Chromium against the real daemon (the example config): live
values, the lamp switched from the page, the filter, a refused value shown in place."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon
from tests.web.helpers import EventReader


def api_get(daemon: ConsoleDaemon, path: str) -> Any:
    status, body = daemon.request("GET", path, headers=daemon.session())
    assert status == 200, (path, body)
    return body


def demo_device(daemon: ConsoleDaemon, key: str) -> dict[str, Any]:
    devices = api_get(daemon, "/api/devices?source=demo")["devices"]
    return next(d for d in devices if d["key"] == key)


@pytest.fixture
def token(console_daemon: ConsoleDaemon) -> Iterator[str]:
    """An API token for the event stream's reader (revoked after the test)."""
    headers = console_daemon.session()
    status, body = console_daemon.request("POST", "/api/tokens",
                                          {"name": f"devices-test-{time.monotonic_ns()}"},
                                          headers=headers)
    assert status == 201, body
    yield body["secret"]
    console_daemon.request("DELETE", f"/api/tokens/{body['id']}", headers=headers)


def dom_value(page: Any, key: str) -> Any:
    """The value the page shows for a variable (its data-value, JSON), or a marker."""
    text = page.locator(f'#view [data-variable="{key}"]').first.get_attribute("data-value")
    return json.loads(text) if text is not None else ("missing",)


def next_change(daemon: ConsoleDaemon, path: str, headers: dict[str, str]) -> Any:
    """Poll a variable through the API until its value changes; return the new one."""
    before = daemon.request("GET", path, headers=headers)[1]["value"]
    found: list[Any] = []

    def changed() -> bool:
        found[:] = [daemon.request("GET", path, headers=headers)[1]["value"]]
        return bool(found[0] != before)

    poll_until(changed, timeout=30, what=f"{path} to change")
    return found[0]


def test_a_thermometer_change_appears_on_the_page_within_a_second(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    thermometer = demo_device(console_daemon, "thermometer")
    key = f"{thermometer['peer_id']}/0/temperature"
    path = f"/api/devices/{thermometer['peer_id']}/0/temperature"
    page = open_page(hash_="#/devices")
    row = page.locator(f'.device-row[data-peer="{thermometer["peer_id"]}"]')
    expect(row.get_by_role("link", name="Demo thermometer")).to_be_visible()
    expect(row).to_contain_text("demo")

    headers = console_daemon.session()
    checked = 0
    for _ in range(3):  # three changes in a row (the demo reports every 2 s)
        # The change, as the API sees it (polled) ...
        changed = next_change(console_daemon, path, headers)
        seen = time.monotonic()
        # ... is on the page within a second: the value there is the API's.
        while True:
            shown = dom_value(page, key)
            current = console_daemon.request("GET", path, headers=headers)[1]["value"]
            if shown == current:
                break
            assert time.monotonic() - seen < 1.0, (
                f"the page shows {shown!r} 1 s after the API showed {changed!r} "
                f"(now {current!r})")
            time.sleep(0.02)
        checked += 1
    assert checked == 3
    text = page.locator(f'#view [data-variable="{key}"]').first.text_content() or ""
    assert "°C" in text


def test_switching_the_demo_lamp_from_the_page_changes_the_registry(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon, token: str,
) -> None:
    lamp = demo_device(console_daemon, "lamp")
    peer = lamp["peer_id"]
    page = open_page(hash_="#/devices")
    switch = page.get_by_role("switch", name="Demo lamp state")
    expect(switch).to_be_visible()
    expect(page.locator(f'[data-variable="{peer}/0/state"]')).to_have_count(1)

    # Each click writes the opposite of what the switch shows; the registry reports it
    # (the lamp's own variable event, read from the event stream opened before).
    for _ in range(2):
        shown = switch.get_attribute("aria-checked") == "true"
        reader = EventReader(console_daemon.port,
                             f"/api/events?topics=variable/demo/{peer}/0/state", token=token)
        try:
            with page.expect_response(lambda r: r.request.method == "PUT"
                                      and r.url.endswith(f"/api/devices/{peer}/0/state")) as put:
                switch.click()
            answer = put.value
            assert answer.status == 200, answer.text()
            assert answer.request.post_data_json == {"value": not shown, "confirm": True,
                                                     "timeout": 10}
            assert answer.json()["confirmed"] is (not shown)
            wanted = not shown
            event = reader.until("variable", lambda d, wanted=wanted: d["value"] is wanted)
            assert event["name"] == "state" and event["peer_id"] == peer
        finally:
            reader.close()
        # Confirmed in place: not pending any more, no error. (The demo's lamp follows
        # the thermometer, so it may be switched back by the demo itself right after:
        # the switch then shows that, as the registry.)
        expect(page.locator(f'[data-variable="{peer}/0/state"]')).not_to_have_class("pending")
        expect(switch).to_have_attribute("aria-busy", "false")
        poll_until(lambda: dom_value(page, f"{peer}/0/state")
                   == api_get(console_daemon, f"/api/devices/{peer}/0/state")["value"],
                   timeout=10, what="the switch to show the registry's value")


def test_the_filter_keeps_the_matching_devices(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    devices = api_get(console_daemon, "/api/devices")["devices"]
    page = open_page(hash_="#/devices")
    rows = page.locator(".device-list > .device-row")
    expect(rows).to_have_count(len(devices))
    visible = page.locator(".device-list > .device-row:not([hidden])")
    count = page.locator(".devices-count")
    expect(count).to_have_text(f"{len(devices)} devices")

    page.get_by_label("Filter", exact=True).fill("demo LAMP")
    expect(visible).to_have_count(1)
    expect(visible.first.locator(".device-name")).to_have_text("Demo lamp")
    expect(count).to_have_text(f"1 of {len(devices)} devices")

    # By type (the thermometer is a "sensor"), then by source with the select.
    page.get_by_label("Filter", exact=True).fill("sensor")
    sensors = [d for d in devices if "sensor" in f"{d['name']} {d['source']} {d['type']} "
               f"{d['key']}".lower()]
    expect(visible).to_have_count(len(sensors))
    page.get_by_label("Filter", exact=True).fill("")
    page.get_by_label("Source").select_option("demo")
    demo = [d for d in devices if d["source"] == "demo"]
    expect(visible).to_have_count(len(demo))
    for source in visible.evaluate_all("rows => rows.map(r => r.dataset.source)"):
        assert source == "demo"

    page.get_by_label("Filter", exact=True).fill("no such device anywhere")
    expect(visible).to_have_count(0)
    expect(page.get_by_text("No device matches the filter.")).to_be_visible()

    # The filter is in the route: to a device's page and back, the list is as it was.
    page.get_by_label("Filter", exact=True).fill("thermo")
    expect(visible).to_have_count(1)
    expect(page).to_have_url(re.compile(r"#/devices\?q=thermo&source=demo$"))
    visible.first.get_by_role("link", name="Demo thermometer").click()
    expect(page.get_by_role("heading", name="Demo thermometer", level=1)).to_be_visible()
    page.go_back()
    expect(page.get_by_label("Filter", exact=True)).to_have_value("thermo")
    expect(page.get_by_label("Source")).to_have_value("demo")
    expect(visible).to_have_count(1)


def test_a_refused_value_shows_the_apis_error_next_to_the_control(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    lamp = demo_device(console_daemon, "lamp")
    peer = lamp["peer_id"]
    before = api_get(console_daemon, f"/api/devices/{peer}/0/brightness")["value"]
    page = open_page(hash_="#/devices")
    slider = page.get_by_role("slider", name="Demo lamp brightness")
    expect(slider).to_have_attribute("min", "0")
    expect(slider).to_have_attribute("max", "254")
    exact = page.get_by_label("Demo lamp brightness (exact value)")
    with page.expect_response(lambda r: r.request.method == "PUT"
                              and r.url.endswith(f"/{peer}/0/brightness")) as put:
        exact.fill("999")
        exact.press("Enter")
    assert put.value.status == 422
    status = page.locator(f'.var[data-key="{peer}/0/brightness"] .var-status')
    expect(status).to_have_class("var-status error")
    expect(status).to_contain_text("brightness")
    expect(status).to_contain_text("999")
    expect(exact).to_have_attribute("aria-invalid", "true")
    # Nothing was written, and the page still shows the device's value.
    assert api_get(console_daemon, f"/api/devices/{peer}/0/brightness")["value"] != 999
    expect(page.locator(f'[data-variable="{peer}/0/brightness"]')).not_to_have_attribute(
        "data-value", "999")
    assert before is not None

    # A good value clears the error.
    with page.expect_response(lambda r: r.request.method == "PUT"
                              and r.url.endswith(f"/{peer}/0/brightness")) as put:
        exact.fill("120")
        exact.press("Enter")
    assert put.value.status == 200, put.value.text()
    expect(status).not_to_have_class("var-status error")
    expect(exact).not_to_have_attribute("aria-invalid", "true")


def test_the_devices_page_fits_a_phone_screen(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(hash_="#/devices", viewport=PHONE)
    expect(page.get_by_role("switch", name="Demo lamp state")).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone's screen"
    # Keyboard: the switch is reached and worked with the keyboard alone.
    switch = page.get_by_role("switch", name="Demo lamp state")
    switch.focus()
    shown = switch.get_attribute("aria-checked")
    with page.expect_response(lambda r: r.request.method == "PUT") as put:
        page.keyboard.press("Space")
    assert put.value.request.post_data_json["value"] is (shown != "true")


def slow_lamp(text: str) -> str:
    """The example config with a demo lamp that confirms writes after 8 s (inside the
    10 s the page waits for it) and does not follow the thermometer (only the test
    switches it)."""
    assert "\n[demo]\n" in text
    return text.replace("\n[demo]\n", "\n[demo]\nlatency = 8.0\nfollow = false\n", 1)


def test_a_write_is_pending_in_place_until_the_device_confirms_it(
    open_page: Callable[..., Any], console_daemon_factory: Callable[..., ConsoleDaemon],
) -> None:
    daemon = console_daemon_factory(edit=slow_lamp)
    lamp = demo_device(daemon, "lamp")
    peer = lamp["peer_id"]
    page = open_page(daemon, hash_="#/devices")
    switch = page.get_by_role("switch", name="Demo lamp state")
    value = page.locator(f'[data-variable="{peer}/0/state"]')
    status = page.locator(f'.var[data-key="{peer}/0/state"] .var-status')
    shown = switch.get_attribute("aria-checked") == "true"

    with page.expect_response(lambda r: r.request.method == "PUT", timeout=30_000) as put:
        switch.click()
        # Written, not confirmed yet: the new value, marked pending, in place.
        expect(value).to_have_class("var-value pending")
        expect(status).to_have_text("pending…")
        expect(switch).to_have_attribute("aria-busy", "true")
        expect(switch).to_have_attribute("aria-checked", str(not shown).lower())
        pending = api_get(daemon, f"/api/devices/{peer}/0/state")
        assert pending["pending"] is (not shown) and pending["confirmed"] is shown, pending
    assert put.value.status == 200
    # Confirmed by the device: no longer pending.
    expect(value).to_have_class("var-value")
    expect(status).to_have_text("")
    expect(switch).to_have_attribute("aria-busy", "false")
    assert api_get(daemon, f"/api/devices/{peer}/0/state")["confirmed"] is (not shown)

    # A write made elsewhere (the API, without waiting) shows as pending on a page opened
    # meanwhile (the API's `pending` field), and is settled by the device's report.
    status_code, body = daemon.request("PUT", f"/api/devices/{peer}/0/brightness",
                                       {"value": 77}, headers=daemon.session())
    assert status_code == 200, body
    other = open_page(daemon, hash_="#/devices")
    brightness = other.locator(f'[data-variable="{peer}/0/brightness"]')
    expect(brightness).to_have_attribute("data-value", "77")
    expect(brightness).to_have_class("var-value pending")
    expect(brightness).to_have_class("var-value", timeout=30_000)
    expect(other.get_by_role("slider", name="Demo lamp brightness")).to_have_value("77")

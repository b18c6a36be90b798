"""The System variables page: create, edit in place and delete, each visible through the
API; its errors (a name that exists, a value the daemon refuses); live changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon


def _name(prefix: str) -> str:
    return f"console_{prefix}_{uuid.uuid4().hex[:8]}"


def _get(daemon: ConsoleDaemon, name: str, headers: dict[str, str]) -> tuple[int, Any]:
    return daemon.request("GET", f"/api/sysvars/{name}", headers=headers)


def test_create_edit_delete_round_trip(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    name = _name("trip")
    page = open_page(hash_="#/sysvars")
    expect(page.get_by_role("heading", name="System variables", exact=True)).to_be_focused()
    try:
        # Create: JSON is a number here.
        form = page.get_by_role("form", name="New system variable")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Value").fill("21.5")
        form.get_by_role("button", name="Create").click()
        row = page.locator(f'tr[data-sysvar="{name}"]')
        expect(row.get_by_label(f"Value of {name}")).to_have_value("21.5")
        expect(row.locator(".sysvar-kind")).to_have_text("number")
        expect(page.get_by_role("status").filter(has_text="Created")).to_have_text(
            f"Created {name}.")
        assert _get(console_daemon, name, headers) == (200, {"name": name, "value": 21.5})

        # Edit in place: a map, then plain text (a string), each saved with Enter.
        value = row.get_by_label(f"Value of {name}")
        save = row.get_by_role("button", name="Save")
        expect(save).to_be_disabled()
        value.fill('{"rooms": ["hall", "kitchen"], "on": true}')
        expect(save).to_be_enabled()
        value.press("Enter")
        expect(save).to_be_disabled()
        expect(row.locator(".sysvar-kind")).to_have_text("map")
        assert _get(console_daemon, name, headers) == (
            200, {"name": name, "value": {"rooms": ["hall", "kitchen"], "on": True}})
        value.fill("away for the weekend")
        save.click()
        expect(value).to_have_value('"away for the weekend"')
        assert _get(console_daemon, name, headers)[1]["value"] == "away for the weekend"

        # Escape undoes an edit not saved.
        value.fill("12")
        value.press("Escape")
        expect(value).to_have_value('"away for the weekend"')

        # Delete: asked first; Cancel keeps it.
        row.get_by_role("button", name=f"Delete {name}").click()
        ask = row.get_by_role("group", name=f"Delete {name}?")
        expect(ask.get_by_role("button", name="Cancel")).to_be_focused()
        ask.get_by_role("button", name="Cancel").click()
        assert _get(console_daemon, name, headers)[0] == 200
        row.get_by_role("button", name=f"Delete {name}").click()
        ask.get_by_role("button", name="Delete", exact=True).click()
        expect(row).to_have_count(0)
        assert _get(console_daemon, name, headers)[0] == 404
        expect(page.get_by_role("status").filter(has_text="Deleted")).to_have_text(
            f"Deleted {name}.")
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_errors_are_shown_where_they_happened(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    name = _name("errors")
    status, body = console_daemon.request("POST", "/api/sysvars", {"name": name, "value": 1},
                                          headers=headers)
    assert status == 201, body
    try:
        page = open_page(hash_="#/sysvars")
        # 409: the name exists.
        form = page.get_by_role("form", name="New system variable")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Value").fill("2")
        form.get_by_role("button", name="Create").click()
        expect(form.get_by_role("alert")).to_have_text(
            f"{name} exists already: edit it in the list.")
        expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
        # No value typed: said before asking the daemon.
        form.get_by_label("Name").fill(_name("never"))
        form.get_by_label("Value").fill("")
        form.get_by_role("button", name="Create").click()
        expect(form.get_by_role("alert")).to_have_text(
            'Value: no value: type one ("" is the empty string)')

        # A value the daemon refuses (bytes that are not base64): its message, kept value.
        row = page.locator(f'tr[data-sysvar="{name}"]')
        value = row.get_by_label(f"Value of {name}")
        value.fill('{"$bytes": "!!"}')
        value.press("Enter")
        alert = row.get_by_role("alert")
        expect(alert).to_have_text("Not saved: value: $bytes is not valid base64")
        expect(value).to_have_attribute("aria-invalid", "true")
        assert _get(console_daemon, name, headers)[1]["value"] == 1
        value.fill("3")  # typing again clears the error
        expect(alert).to_be_hidden()
        value.press("Enter")
        expect(value).to_have_value("3")
        poll_until(lambda: _get(console_daemon, name, headers)[1]["value"] == 3, timeout=20,
                   what="the corrected value saved")
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_changes_made_elsewhere_show_up_live(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    name = _name("live")
    page = open_page(hash_="#/sysvars")
    row = page.locator(f'tr[data-sysvar="{name}"]')
    try:
        # Created through the API: the event adds the row.
        status, body = console_daemon.request("PUT", f"/api/sysvars/{name}", {"value": True},
                                              headers=headers)
        assert status == 200, body
        value = row.get_by_label(f"Value of {name}")
        expect(value).to_have_value("true")
        expect(row.locator(".sysvar-kind")).to_have_text("boolean")
        # Written: the value follows.
        console_daemon.request("PUT", f"/api/sysvars/{name}", {"value": [1, 2]},
                               headers=headers)
        expect(value).to_have_value("[1,2]")
        # The example's heartbeat counts up by itself (every 10 s).
        beat = page.get_by_label("Value of heartbeat")
        first = beat.input_value()
        expect(beat).not_to_have_value(first)
        # Deleted (no event for that): gone after the page reads the list again.
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)
        expect(row).to_have_count(0)
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_sysvars_on_a_phone(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(hash_="#/sysvars", viewport=PHONE)
    expect(page.get_by_label("Value of heartbeat")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

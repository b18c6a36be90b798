"""Logging in to the console: the API's session and CSRF rules, seen from the browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.console.helpers import (
    PASSWORD,
    READY,
    ConsoleDaemon,
    login_in_browser,
    wait_ready,
)


def test_login_opens_the_console_with_a_session_and_its_csrf_token(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(login=False, hash_="#/log", wait=False)
    # Not logged in: the login page, whatever was asked for, without the navigation.
    expect(page).to_have_url(f"{console_daemon.url}/#/login")
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_focused()
    expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()

    login_in_browser(page, PASSWORD)
    # Back to what was asked for, with the navigation and the live stream.
    expect(page).to_have_url(f"{console_daemon.url}/#/log")
    wait_ready(page)
    expect(page.get_by_role("heading", name="Log", exact=True)).to_be_focused()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("Live")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "hadaemon_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"

    # A write from the page carries the session's CSRF token (the API refuses it
    # otherwise): the console's api.js against a real endpoint.
    name = "console_login_test"
    outcome = page.evaluate("""async (name) => {
        const { api } = await import("/js/api.js");
        await api.put(`/api/sysvars/${name}`, { value: 42 });
        return (await api.get(`/api/sysvars/${name}`)).value;
    }""", name)
    assert outcome == 42
    status, body = console_daemon.request(
        "DELETE", f"/api/sysvars/{name}", headers=console_daemon.session())
    assert status == 200, body

    # Logging out ends the session on the daemon too.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_visible()
    status = page.evaluate("async () => (await fetch('/api/session')).status")
    assert status == 401


def test_a_wrong_password_is_refused_with_the_message(open_page: Callable[..., Any]) -> None:
    page = open_page(login=False, hash_="#/login", wait=False)
    login_in_browser(page, "not the password")
    alert = page.locator("#login-status")
    expect(alert).to_contain_text("Wrong password")
    expect(page.get_by_label("Admin password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()
    assert page.evaluate("async () => (await fetch('/api/session')).status") == 401
    # The right one still works after it (the throttle only delays).
    login_in_browser(page, PASSWORD)
    page.wait_for_selector(f"{READY} #plugins")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_with_no_password_set_the_page_says_how_to_set_one_at_once(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    daemon = console_daemon_factory(password=None)
    page = open_page(daemon, login=False, hash_="#/devices", wait=False)
    # Said at once, before any try: no form that cannot work.
    heading = page.get_by_role("heading", name="No admin password is set yet")
    expect(heading).to_be_focused()
    expect(page.locator(f"{READY}[data-no-password='true']")).to_be_visible()
    expect(page.get_by_label("Admin password", exact=True)).to_have_count(0)
    text = page.locator("#view").inner_text()
    assert "hadaemon passwd --config" in text
    assert "HADAEMON_ADMIN_PASSWORD" in text
    expect(page).to_have_title("No password set · hadaemon")

    # The daemon gets one (a container's environment) and restarts: the page turns into
    # the login form by itself, and the login goes where the user was going.
    daemon.process.env["HADAEMON_ADMIN_PASSWORD"] = PASSWORD
    daemon.password = PASSWORD
    daemon.restart()
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_focused()
    login_in_browser(page, PASSWORD)
    expect(page).to_have_url(f"{daemon.url}/#/devices")
    wait_ready(page)


def test_a_password_removed_under_the_form_is_said_on_the_first_try(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    # The form was drawn while the daemon had a password; it restarted without one.
    daemon = console_daemon_factory()
    page = open_page(daemon, login=False, hash_="#/login", wait=False)
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_visible()
    daemon.process.env["HADAEMON_ADMIN_PASSWORD"] = ""
    daemon.password = None
    daemon.restart()
    login_in_browser(page, "anything at all")
    expect(page.get_by_role("heading", name="No admin password is set yet")).to_be_focused()
    expect(page.locator("#view")).to_contain_text("The daemon says: no admin password is set")


def test_logging_in_by_keyboard_alone(open_page: Callable[..., Any],
                                      console_daemon: ConsoleDaemon) -> None:
    page = open_page(login=False, hash_="#/login", wait=False)
    expect(page.get_by_role("heading", name="Log in to hadaemon")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Admin password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    wait_ready(page)
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_focused()
    # the current page is marked for screen readers in the navigation
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")

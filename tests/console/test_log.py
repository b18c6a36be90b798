"""The log page: the daemon's recent lines, a new line shown live, filters by level and
source, pause and resume."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import ConsoleDaemon, navigate

CHANGELOG = "hadaemon.plugin.changelog"


def make_line(daemon: ConsoleDaemon, headers: dict[str, str]) -> str:
    """A log line nobody else writes: the changelog plugin logs every variable change,
    a new system variable's too. Returns the variable's name (in the line)."""
    name = f"console_log_{uuid.uuid4().hex[:10]}"
    status, body = daemon.request("PUT", f"/api/sysvars/{name}", {"value": 7},
                                  headers=headers)
    assert status == 200, body
    return name


def in_api_log(daemon: ConsoleDaemon, headers: dict[str, str], text: str) -> bool:
    status, body = daemon.request("GET", f"/api/log?source={CHANGELOG}&limit=500",
                                  headers=headers)
    assert status == 200, body
    return any(text in line["message"] for line in body["lines"])


def test_a_new_line_appears_live(page: Any, console_daemon: ConsoleDaemon) -> None:
    navigate(page, "#/log")
    expect(page.get_by_role("heading", name="Log", exact=True)).to_be_focused()
    rows = page.locator("#log tbody tr")
    expect(rows.first).to_be_visible()
    headers = console_daemon.session()
    name = make_line(console_daemon, headers)
    try:
        # no reload, no click: the page follows the log
        line = page.locator("#log tbody tr", has_text=name)
        expect(line).to_have_count(1)
        expect(line.locator(".source")).to_have_text(CHANGELOG)
        expect(line).to_contain_text("= 7")
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_filters_by_level_and_source(page: Any, console_daemon: ConsoleDaemon) -> None:
    navigate(page, "#/log")
    rows = page.locator("#log tbody tr")
    expect(rows.first).to_be_visible()
    page.get_by_label("Source").fill(CHANGELOG)
    # every line shown is then the changelog's (and only those: a new one of another
    # source is not added)
    poll_until(lambda: rows.count() > 0 and set(page.locator("#log tbody .source")
                                                .all_inner_texts()) == {CHANGELOG},
               timeout=30, interval=0.2, what="only the changelog's lines")
    page.get_by_label("Source").fill("")
    page.get_by_label("Lowest level").select_option("warn")
    poll_until(lambda: set(page.locator("#log tbody .level").all_inner_texts())
               <= {"warn", "error", "critical"}, timeout=30, interval=0.2,
               what="only warnings and worse")
    # a new info line is not shown at this level; back at info it is
    headers = console_daemon.session()
    name = make_line(console_daemon, headers)
    try:
        poll_until(lambda: in_api_log(console_daemon, headers, name), timeout=30,
                   interval=0.2, what="the line in the daemon's log")
        page.get_by_label("Lowest level").select_option("info")
        expect(page.locator("#log tbody tr", has_text=name)).to_have_count(1)
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_pause_holds_new_lines_until_resumed(page: Any, console_daemon: ConsoleDaemon) -> None:
    navigate(page, "#/log")
    expect(page.locator("#log tbody tr").first).to_be_visible()
    pause = page.get_by_role("button", name="Pause")
    pause.click()
    resume = page.get_by_role("button", name="Resume")
    expect(resume).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#log-state")).to_contain_text("Paused")
    headers = console_daemon.session()
    name = make_line(console_daemon, headers)
    try:
        poll_until(lambda: in_api_log(console_daemon, headers, name), timeout=30,
                   interval=0.2, what="the line in the daemon's log")
        # A line that must NOT appear cannot be waited for: give the page three of its
        # polling intervals (1 s) to show it if it wrongly would.
        page.wait_for_timeout(3000)
        expect(page.locator("#log tbody tr", has_text=name)).to_have_count(0)
        resume.click()
        expect(page.locator("#log tbody tr", has_text=name)).to_have_count(1)
        expect(page.get_by_role("button", name="Pause")).to_have_attribute(
            "aria-pressed", "false")
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)

"""js/events.js, the one event stream the pages share: topic filters, delivery to
subscribers, unsubscribing, and the tap of a node's output."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.console.helpers import ConsoleDaemon

CASES = [
    ("#", "variable/demo/1/0/temperature", True),
    ("variable/#", "variable/demo/1/0/temperature", True),
    ("variable/#", "variable", True),
    ("variable/#", "variables/x", False),
    ("variable/demo/+/0/temperature", "variable/demo/1/0/temperature", True),
    ("variable/demo/+/0/temperature", "variable/demo/1/1/temperature", False),
    ("variable/+/+", "variable/demo/1/0", False),
    ("status/cold_alert", "status/cold_alert", True),
    ("status/cold_alert", "status/cold_alert/x", False),
    ("error/+/#", "error/service:x/warning", True),
]


def test_topic_filters_match_as_mqtt_does(page: Any) -> None:
    results = page.evaluate("""async (cases) => {
        const { topicMatches } = await import("/js/events.js");
        return cases.map(([f, t]) => topicMatches(f, t));
    }""", [[f, t] for f, t, _ in CASES])
    assert results == [expected for _, _, expected in CASES], list(zip(CASES, results, strict=True))


def test_subscribers_get_their_events_until_they_unsubscribe(
    page: Any, console_daemon: ConsoleDaemon,
) -> None:
    expect(page.locator("#connection")).to_have_text("Live")
    name = f"console_events_{uuid.uuid4().hex[:8]}"
    page.evaluate("""async (name) => {
        const { events } = await import("/js/events.js");
        window.__got = [];
        window.__other = [];
        window.__off = events.on(`variable/+/+/+/${name}`,
                                 (e, type) => window.__got.push([type, e.value]));
        events.on("lifecycle/nothing-like-this/#", (e) => window.__other.push(e));
    }""", name)
    headers = console_daemon.session()
    try:
        for value in (1, 2):
            status, body = console_daemon.request("PUT", f"/api/sysvars/{name}",
                                                  {"value": value}, headers=headers)
            assert status == 200, body
        page.wait_for_function("() => window.__got.length >= 2")
        assert page.evaluate("window.__got") == [["variable", 1], ["variable", 2]]
        page.evaluate("window.__off()")
        console_daemon.request("PUT", f"/api/sysvars/{name}", {"value": 3}, headers=headers)
        # a second subscriber sees the 3: the first one, unsubscribed, does not
        page.evaluate("""async (name) => {
            const { events } = await import("/js/events.js");
            window.__later = [];
            events.on(`variable/#`, (e) => { if (e.name === name) window.__later.push(e.value); });
        }""", name)
        console_daemon.request("PUT", f"/api/sysvars/{name}", {"value": 4}, headers=headers)
        page.wait_for_function("() => window.__later.includes(4)")
        assert page.evaluate("window.__got") == [["variable", 1], ["variable", 2]]
        assert page.evaluate("window.__other") == []
    finally:
        console_daemon.request("DELETE", f"/api/sysvars/{name}", headers=headers)


def test_a_tap_on_an_unknown_node_reports_an_error(page: Any) -> None:
    message = page.evaluate("""async () => {
        const { events } = await import("/js/events.js");
        return await new Promise((resolve) => {
            const close = events.tap("no_such_node", 0, () => {},
                                     (text) => { close(); resolve(text); });
        });
    }""")
    assert "no_such_node/0" in message


def test_the_daemons_error_events_are_events_not_a_broken_stream(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
) -> None:
    # An SSE event named "error" reaches EventSource.onerror too (as a MessageEvent): it
    # must not be taken for a failed stream (closed, reconnected, events between lost).
    def cold(text: str) -> str:  # ComfortMonitor then warns at every demo reading
        assert "static = { minimum = 19.0 }" in text
        return text.replace("static = { minimum = 19.0 }", "static = { minimum = 100.0 }")

    daemon = console_daemon_factory(edit=cold)
    page = open_page(daemon, wait=False)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/api/events" in r.url else None)
    page.wait_for_selector('#view [data-ready="true"]')
    expect(page.locator("#connection")).to_have_text("Live")
    page.evaluate("""async () => {
        const { events } = await import("/js/events.js");
        window.__errors = [];
        window.__states = [];
        events.on("error/#", (e, type) => window.__errors.push([type, e.message]));
        events.onState((s) => window.__states.push(s));
    }""")
    page.wait_for_function("() => window.__errors.length >= 3", timeout=60_000)
    got = page.evaluate("window.__errors")
    assert all(type_ == "error" and "is below 100.0" in message for type_, message in got), got
    # the stream stayed open all along: no reconnect, no second request
    assert page.evaluate("window.__states") == ["open"]
    expect(page.locator("#connection")).to_have_text("Live")
    assert len(streams) <= 1, streams  # (the first may have been sent before the listener)

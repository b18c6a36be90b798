"""A device's page in real Chromium against the real daemon (the example config, whose
history plugin records every change): the history charts drawn from GET /api/history,
the range picker, zoom and the keyboard readout, the timeline of a boolean, live points."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon


def api_get(daemon: ConsoleDaemon, path: str) -> Any:
    status, body = daemon.request("GET", path, headers=daemon.session())
    assert status == 200, (path, body)
    return body


def demo_peer(daemon: ConsoleDaemon, key: str) -> int:
    devices = api_get(daemon, "/api/devices?source=demo")["devices"]
    return int(next(d["peer_id"] for d in devices if d["key"] == key))


def recorded(daemon: ConsoleDaemon, peer: int, name: str, at_least: int) -> int:
    """Wait until the history plugin has recorded ``at_least`` changes in the last hour."""
    path = (f"/api/history?source=demo&peer_id={peer}&channel=0&name={name}"
            f"&start={time.time() - 3600:.0f}")
    return int(poll_until(lambda: (n := api_get(daemon, path)["count"]) >= at_least and n,
                          timeout=60, what=f"{at_least} recorded changes of {name}"))


def history_query(request: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def test_a_device_page_draws_its_history_chart_with_points(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    peer = demo_peer(console_daemon, "thermometer")
    count = recorded(console_daemon, peer, "temperature", 3)
    page = open_page(hash_=f"#/devices/{peer}")
    expect(page.get_by_role("heading", name="Demo thermometer", level=1)).to_be_visible()
    expect(page.locator(f'[data-variable="{peer}/0/temperature"]')).to_contain_text("°C")

    chart = page.locator(f'figure.chart[data-key="{peer}/0/temperature"]')
    expect(chart).to_have_attribute("data-state", "ready")
    svg = chart.locator("svg.chart-svg")
    points = svg.locator("circle.chart-point")
    # Every recorded change of the window is a point (live ones may have joined them).
    poll_until(lambda: points.count() >= count, timeout=20, what=f"{count} points drawn")
    assert int(svg.get_attribute("data-points") or 0) >= count
    assert (svg.locator("path.chart-line").get_attribute("d") or "").startswith("M")
    # Axes: time labels below, value labels beside, and the unit.
    assert svg.locator("text.time-label").count() >= 2
    assert svg.locator("text.value-label").count() >= 2
    expect(svg.locator("text.unit-label")).to_have_text("°C")
    # Every point lies inside the plot.
    box = svg.bounding_box()
    assert box is not None
    centres = points.evaluate_all(
        "cs => cs.map(c => [+c.getAttribute('cx'), +c.getAttribute('cy')])")
    for cx, cy in centres:
        assert 0 <= cx <= box["width"] and 0 <= cy <= box["height"], (cx, cy, box)

    # The readout, by keyboard: End reads the newest point, Left the one before.
    svg.focus()
    page.keyboard.press("End")
    readout = chart.locator("output.chart-readout")
    expect(readout).to_have_text(re.compile(r"\d\d.*: -?\d+(\.\d+)? °C$"))
    newest = readout.text_content()
    page.keyboard.press("ArrowLeft")
    expect(readout).not_to_have_text(newest or "")
    expect(svg.locator("line.cursor-line")).to_have_count(1)
    # And by pointer: hovering the plot reads the point nearest to it.
    svg.hover(position={"x": box["width"] - 20, "y": box["height"] / 2})
    expect(readout).to_have_text(re.compile(r"°C$"))

    # Live: the demo reports every 2 s; new points are appended from the event stream.
    drawn = int(svg.get_attribute("data-points") or 0)
    poll_until(lambda: int(svg.get_attribute("data-points") or 0) > drawn, timeout=30,
               what="a live point appended to the chart")


def test_the_range_picker_and_zoom_change_the_window(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    peer = demo_peer(console_daemon, "thermometer")
    recorded(console_daemon, peer, "temperature", 2)
    page = open_page(hash_=f"#/devices/{peer}")
    chart = page.locator(f'figure.chart[data-key="{peer}/0/temperature"]')
    expect(chart).to_have_attribute("data-state", "ready")
    hour = page.get_by_role("button", name="Hour")
    day = page.get_by_role("button", name="Day")
    reset = page.get_by_role("button", name="Reset zoom")
    expect(hour).to_have_attribute("aria-pressed", "true")
    expect(reset).to_be_disabled()

    def history_over(low: float, high: float) -> Callable[[Any], bool]:
        """A request of the temperature's history over a window of low to high seconds
        (the page may also ask again for the same window: after a reconnect, ...)."""
        def matches(request: Any) -> bool:
            if "/api/history" not in request.url or "name=temperature" not in request.url:
                return False
            query = history_query(request)
            return low <= float(query["end"]) - float(query["start"]) <= high
        return matches

    with page.expect_request(history_over(86395, 86405)):
        day.click()
    expect(day).to_have_attribute("aria-pressed", "true")
    expect(hour).to_have_attribute("aria-pressed", "false")

    # Drag across the middle of the chart: the window narrows to what was selected.
    svg = chart.locator("svg.chart-svg")
    box = svg.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    with page.expect_request(history_over(86400 * 0.1, 86400 * 0.3)) as asked:
        page.mouse.move(box["x"] + box["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
        page.mouse.up()
    query = history_query(asked.value)
    span = float(query["end"]) - float(query["start"])
    expect(reset).to_be_enabled()
    expect(day).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".chart-window")).to_contain_text("\u2013")  # from - to

    # The wheel zooms in further around the pointer.
    with page.expect_request(history_over(span * 0.5, span * 0.9)):
        page.mouse.move(box["x"] + box["width"] / 2, y)
        page.mouse.wheel(0, -200)

    # 0 on the focused chart resets to the picked range.
    svg.focus()
    with page.expect_request(history_over(86395, 86405)):
        page.keyboard.press("0")
    expect(reset).to_be_disabled()
    expect(day).to_have_attribute("aria-pressed", "true")


def test_the_lamp_page_has_its_controls_and_a_timeline_of_its_state(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    peer = demo_peer(console_daemon, "lamp")
    recorded(console_daemon, peer, "state", 1)
    page = open_page(hash_=f"#/devices/{peer}")
    timeline = page.locator(f'figure.chart[data-key="{peer}/0/state"]')
    expect(timeline).to_have_attribute("data-kind", "timeline")
    expect(timeline).to_have_attribute("data-state", "ready")
    assert timeline.locator("rect.tl-seg").count() >= 1
    expect(page.locator(f'figure.chart[data-key="{peer}/0/brightness"]')).to_have_attribute(
        "data-kind", "line")

    switch = page.get_by_role("switch", name="Demo lamp state")
    shown = switch.get_attribute("aria-checked") == "true"
    with page.expect_response(lambda r: r.request.method == "PUT"
                              and r.url.endswith(f"/api/devices/{peer}/0/state")) as put:
        switch.click()
    assert put.value.status == 200, put.value.text()
    assert put.value.json()["confirmed"] is (not shown)
    expect(page.get_by_role("slider", name="Demo lamp brightness")).to_have_attribute("max", "254")


def test_an_unknown_device_says_so(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(hash_="#/devices/987654")
    expect(page.get_by_role("alert")).to_contain_text("No device 987654")
    expect(page.get_by_role("link", name="All devices")).to_be_visible()
    page = open_page(hash_="#/devices/abc")
    expect(page.get_by_role("alert")).to_contain_text('"abc" is not a device id')


def test_a_device_page_fits_a_phone_screen(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    peer = demo_peer(console_daemon, "lamp")
    recorded(console_daemon, peer, "brightness", 1)
    page = open_page(hash_=f"#/devices/{peer}", viewport=PHONE)
    chart = page.locator(f'figure.chart[data-key="{peer}/0/brightness"]')
    expect(chart).to_have_attribute("data-state", "ready")
    expect(page.get_by_role("slider", name="Demo lamp brightness")).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone's screen"
    box = chart.locator("svg").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_the_chart_draws_downsampled_buckets_and_round_ticks(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    """js/chart.js in the page, on an answer of the history's downsampled form (numbers
    with more changes than max_points come as buckets [t, min, max, mean, count])."""
    page = open_page(hash_="#/devices")
    drawn = page.evaluate("""async () => {
        const { Chart, numberTicks, timeTicks } = await import("/js/chart.js");
        const chart = new Chart({ kind: "line", title: "power", unit: "W" });
        document.querySelector("#view").append(chart.el);
        const start = 1_800_000_000, end = start + 3600;
        chart.setWindow(start, end);
        const buckets = [];
        for (let i = 0; i < 60; i += 1) {
            buckets.push([start + i * 60, 100 + i, 140 + i, 120 + i, 30]);
        }
        chart.setData({ buckets, bucket_seconds: 60, initial: [start - 5, 99] });
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const svg = chart.el.querySelector("svg");
        const labels = [...svg.querySelectorAll("text.value-label")]
            .map((t) => Number(t.textContent));
        return {
            points: Number(svg.dataset.points),
            circles: svg.querySelectorAll("circle.chart-point").length,
            band: svg.querySelectorAll("polygon.chart-band").length,
            labels,
            ticks: numberTicks(0, 1, 5),
            odd: numberTicks(-3.7, 12.2, 4),
            times: timeTicks(start, end, 6).step,
        };
    }""")
    assert drawn["points"] == 60 and drawn["circles"] == 60
    assert drawn["band"] == 1
    # Value labels on round numbers covering min..max (99 .. 199).
    assert drawn["labels"] and all(v % 10 == 0 for v in drawn["labels"]), drawn["labels"]
    assert min(drawn["labels"]) <= 100 and max(drawn["labels"]) >= 180, drawn["labels"]
    assert drawn["ticks"] == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert drawn["odd"] == [0, 5, 10], drawn["odd"]
    assert drawn["times"] == 600  # an hour in about six steps: every 10 minutes


def test_without_the_history_plugin_each_chart_says_why(
    open_page: Callable[..., Any], console_daemon_factory: Callable[..., ConsoleDaemon],
) -> None:
    def no_history(text: str) -> str:
        assert 'plugins = ["history", ' in text
        return text.replace('plugins = ["history", ', "plugins = [", 1)

    daemon = console_daemon_factory(edit=no_history)
    peer = demo_peer(daemon, "thermometer")
    page = open_page(daemon, hash_=f"#/devices/{peer}")
    chart = page.locator(f'figure.chart[data-key="{peer}/0/temperature"]')
    expect(chart).to_have_attribute("data-state", "error")
    expect(chart.locator("text.chart-note")).to_contain_text("history is not recorded")
    # The rest of the page works: the variables and their values.
    expect(page.locator(f'[data-variable="{peer}/0/temperature"]')).to_contain_text("°C")

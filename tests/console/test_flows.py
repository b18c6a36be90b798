"""The Flows page on the example config: its three nodes and two wires drawn as a graph
(cold_alert -> announcer; hall_presence -> the ComfortMonitor service's bus address),
live status badges, and a wire's messages watched through the API's wire tap.

hall_presence's wire carries a message at each change of the simulated hall's motion
sensor (someone walks through every 10 s and stays 3 s): the tests wait for those."""

from __future__ import annotations

import os
import pathlib
import re
import signal
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hadaemon.testing.waiting import poll_until
from tests.console.helpers import PHONE, ConsoleDaemon

PRESENCE = "hall_presence/0"
ADDRESS = "service:comfortmonitor_py/on_presence"


def _event_clients(daemon: ConsoleDaemon, headers: dict[str, str]) -> int:
    status, answer = daemon.request("GET", "/api/status", headers=headers)
    assert status == 200, answer
    return int(answer["counts"]["event_clients"])


def test_the_example_flow_is_drawn_with_live_badges(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    page = open_page(hash_="#/flows")
    expect(page.get_by_role("heading", name="Flows", exact=True)).to_be_focused()
    status, nodes = console_daemon.request("GET", "/api/nodes",
                                           headers=console_daemon.session())
    assert status == 200, nodes
    for node in nodes["nodes"]:
        box = page.locator(f'[data-node="{node["id"]}"]')
        expect(box).to_be_visible()
        expect(box).to_have_attribute("data-process", node["process"])
        expect(box).to_have_attribute("role", "button")
        expect(box).to_have_attribute(
            "aria-label", re.compile(rf"^Node {node['id']}, process {node['process']}\b"))
    assert {n["id"] for n in nodes["nodes"]} == {"cold_alert", "announcer", "hall_presence"}

    # The wires, one to a node and one to a bus address (drawn as a box of its own).
    to_announcer = page.locator('[data-wire="cold_alert/0"]')
    expect(to_announcer).to_have_attribute("data-to", "announcer")
    expect(to_announcer).to_have_attribute(
        "aria-label", "Wire from cold_alert output 1 to announcer: watch its messages")
    expect(page.locator(f'[data-wire="{PRESENCE}"]')).to_have_attribute("data-to", ADDRESS)
    address = page.locator(f'[data-address="{ADDRESS}"]')
    expect(address).to_be_visible()
    expect(page.locator(".flow-wire")).to_have_count(2)
    expect(page.locator(".flow-title")).to_have_text(["Flow example"])

    # Layered left to right by wire depth; the two chains on rows of their own.
    def box(selector: str) -> dict[str, float]:
        found = page.locator(selector).bounding_box()
        assert found is not None, selector
        return found

    cold, announcer = box('[data-node="cold_alert"] .node-box'), box(
        '[data-node="announcer"] .node-box')
    presence, target = box('[data-node="hall_presence"] .node-box'), box(
        f'[data-address="{ADDRESS}"] rect')
    assert announcer["x"] > cold["x"] + cold["width"]
    assert target["x"] > presence["x"] + presence["width"]
    assert cold["x"] == presence["x"] and presence["y"] > cold["y"] + cold["height"]

    # hall_presence shows the sensor's state as its status: live, as it changes.
    badge = page.locator('[data-node="hall_presence"]')
    expect(badge).to_have_attribute("data-status-text", "Hall motion: someone is there")
    expect(badge.locator(".status-shape")).to_have_class("status-shape fill-green shape-dot")
    expect(badge).to_have_attribute("data-status-text", "Hall motion: empty again")
    expect(badge.locator(".status-shape")).to_have_class("status-shape fill-grey shape-dot")
    expect(badge.locator(".status-text")).to_have_text("Hall motion: empty again")


def test_clicking_a_wire_shows_its_messages_newest_first_and_closing_ends_the_tap(
    open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
) -> None:
    headers = console_daemon.session()
    page = open_page(hash_="#/flows")
    # The page's own event stream is the daemon's one client (tests run one at a time);
    # a tap is a stream of its own.
    poll_until(lambda: _event_clients(console_daemon, headers) == 1, timeout=20,
               what="the page's event stream as the only one")
    before = 1
    wire = page.locator(f'[data-wire="{PRESENCE}"]')
    wire.click()
    panel = page.get_by_role("complementary", name=f"Messages on the wire from hall_presence "
                             f"output 1 to {ADDRESS}")
    expect(panel).to_be_visible()
    expect(wire).to_have_attribute("aria-pressed", "true")
    expect(panel.get_by_role("heading", name="Messages on a wire")).to_be_visible()
    poll_until(lambda: _event_clients(console_daemon, headers) == before + 1, timeout=20,
               what="the wire tap's stream")

    messages = panel.locator(".tap-message")
    expect(messages.first).to_contain_text('"room": "Hall motion"')
    expect(messages.first).to_have_attribute("data-topic", "presence")
    expect(messages.nth(1)).to_be_attached()  # the sensor turns again within 10 s
    times = messages.locator("time").evaluate_all("els => els.map(e => e.dateTime)")
    assert times[0] > times[1], times  # newest first
    occupied = messages.locator(".tap-payload").all_inner_texts()[:2]
    assert {'"occupied": true' in t for t in occupied} == {True, False}, occupied
    expect(panel.get_by_role("status")).to_have_text(re.compile(r"^\d+ message\(s\)\.$"))

    panel.get_by_role("button", name="Stop watching this wire").click()
    expect(panel).to_be_hidden()
    expect(wire).to_have_attribute("aria-pressed", "false")
    expect(wire).to_be_focused()
    # The tap's stream is closed: the daemon has one event client fewer again.
    poll_until(lambda: _event_clients(console_daemon, headers) == before, timeout=20,
               what="the tap's stream to close")


def test_nodes_and_wires_by_keyboard(open_page: Callable[..., Any]) -> None:
    page = open_page(hash_="#/flows")
    node = page.locator('[data-node="cold_alert"]')
    wire = page.locator('[data-wire="cold_alert/0"]')
    node.focus()
    page.keyboard.press("Tab")  # a node's wires follow it
    expect(wire).to_be_focused()
    page.keyboard.press("Enter")
    panel = page.get_by_role("complementary")
    expect(panel).to_have_accessible_name(
        "Messages on the wire from cold_alert output 1 to announcer")
    # (cold_alert sends only when the demo's temperature falls below 19 °C)
    expect(panel.get_by_role("status")).to_have_text(
        re.compile(r"^(Watching: no message yet\.|\d+ message\(s\)\.)$"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(wire).to_be_focused()

    node.focus()
    page.keyboard.press("Enter")
    details = page.get_by_role("complementary", name="Node cold_alert")
    expect(details.get_by_role("heading", name="Node cold_alert")).to_be_visible()
    expect(details.locator("dl")).to_contain_text("Processrunning")
    page.keyboard.press("Space")  # again: closes
    expect(details).to_be_hidden()


def test_flows_on_a_phone_scroll_inside_the_graph(open_page: Callable[..., Any]) -> None:
    page = open_page(hash_="#/flows", viewport=PHONE)
    expect(page.locator('[data-node="announcer"]')).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator(f'[data-wire="{PRESENCE}"]').click()
    panel = page.get_by_role("complementary")
    expect(panel.locator(".tap-message").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


LAYOUT = """
async (graph) => {
  const { layout, draw } = await import("/js/graph.js");
  const lay = layout(graph);
  const drawn = draw(lay);
  document.body.append(drawn.svg);  // (to count what is drawn; the page is thrown away)
  return {
    width: lay.width, height: lay.height,
    groups: lay.groups,
    boxes: [...lay.boxes.values()].map(({ key, kind, flow, x, y, w, h }) =>
      ({ key, kind, flow, x, y, w, h })),
    wires: lay.wires.map((p) => [p.from.key, p.wire.output, p.to.key]),
    order: [...drawn.svg.querySelectorAll("[tabindex]")].map(
      (e) => e.dataset.node ? `node:${e.dataset.node}` : `wire:${e.dataset.wire}>${e.dataset.to}`),
  };
}
"""


def test_layout_of_loops_several_flows_and_outputs(page: Any) -> None:
    """graph.js on a graph the example lacks: a loop, a node of two outputs, two flows, a
    wire between flows, two wires to one address; run in the browser itself."""
    def node(id_: str, flow: str, outputs: int = 1) -> dict[str, Any]:
        return {"id": id_, "flow": flow, "type": "t", "name": "", "inputs": 1,
                "outputs": outputs}

    def to(id_: str) -> dict[str, Any]:
        return {"id": id_, "port": 0}

    graph = {
        "flows": ["one", "two"],
        "nodes": [node("a", "one", 2), node("b", "one"), node("c", "one"), node("d", "one"),
                  node("x", "two"), node("y", "two")],
        "wires": [
            {"from": "a", "output": 0, "to": to("b")},
            {"from": "a", "output": 1, "to": to("c")},
            {"from": "b", "output": 0, "to": to("d")},
            {"from": "d", "output": 0, "to": to("b")},          # a loop: b -> d -> b
            {"from": "c", "output": 0, "to": {"address": "service:s/in"}},
            {"from": "d", "output": 0, "to": {"address": "service:s/in"}},
            {"from": "x", "output": 0, "to": to("y")},
            {"from": "y", "output": 0, "to": to("a")},          # across flows
        ],
    }
    got = page.evaluate(LAYOUT, graph)
    boxes = {b["key"]: b for b in got["boxes"]}
    column = {k: b["x"] for k, b in boxes.items()}
    # Depth: a, then b and c, then d; the loop back to b ends (bounded by the node count).
    assert column["node:a"] < column["node:b"] == column["node:c"] < column["node:d"]
    assert column["node:x"] < column["node:y"]
    # One address box per flow and address, right of everything wired to it.
    addresses = [k for k, b in boxes.items() if b["kind"] == "address"]
    assert addresses == ["address:one:service:s/in"]
    assert boxes[addresses[0]]["x"] > column["node:d"]
    # Every wire placed, the one across flows too.
    assert len(got["wires"]) == len(graph["wires"])
    assert ["node:y", 0, "node:a"] in got["wires"]
    # No two boxes overlap; each box inside its flow's group; the groups apart.
    items = list(boxes.values())
    for i, one in enumerate(items):
        for other in items[i + 1:]:
            apart = (one["x"] + one["w"] <= other["x"] or other["x"] + other["w"] <= one["x"]
                     or one["y"] + one["h"] <= other["y"] or other["y"] + other["h"] <= one["y"])
            assert apart, (one, other)
    groups = {g["flow"]: g for g in got["groups"]}
    for b in items:
        g = groups[b["flow"]]
        assert g["x"] <= b["x"] and b["x"] + b["w"] <= g["x"] + g["w"], b
        assert g["y"] <= b["y"] and b["y"] + b["h"] <= g["y"] + g["h"], b
        assert b["x"] + b["w"] <= got["width"] and b["y"] + b["h"] <= got["height"]
    assert groups["one"]["y"] + groups["one"]["h"] < groups["two"]["y"]
    # Tab order: each node, then its wires.
    order = got["order"]
    assert order[order.index("node:a") + 1: order.index("node:a") + 3] == [
        "wire:a/0>b", "wire:a/1>c"]
    assert order.index("wire:y/0>a") == order.index("node:y") + 1
    assert sorted(o for o in order if o.startswith("node:")) == [
        f"node:{n}" for n in "abcdxy"]


BROKEN_NODE = """
import sys
sys.exit(3)  # at once, every time: a crash loop
"""


def test_a_crashing_node_and_a_killed_one_show_as_they_happen(
    console_daemon_factory: Callable[..., ConsoleDaemon], open_page: Callable[..., Any],
    tmp_path: pathlib.Path,
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN_NODE)

    def with_broken_node(text: str) -> str:
        assert "grace = 10.0" in text
        text = text.replace("grace = 10.0", "grace = 10.0\ncrash_loop_restarts = 2\n"
                            "restart_delay = 0.1\nrestart_delay_max = 0.5", 1)
        return text + (f'\n[[nodes.node]]\nid = "broken"\nfile = "{broken}"\n'
                       'flow = "faults"\nwires = [["announcer"]]\n')

    daemon = console_daemon_factory(edit=with_broken_node)
    page = open_page(daemon, hash_="#/flows")
    expect(page.locator(".flow-title")).to_have_text(["Flow example", "Flow faults"])
    # Its wire crosses to the example flow's announcer.
    expect(page.locator('[data-wire="broken/0"]')).to_have_attribute("data-to", "announcer")
    node = page.locator('[data-node="broken"]')
    expect(node.locator(".status-text")).to_have_text(re.compile(r"^crash loop: \d+ exits"))
    expect(node.locator(".status-shape")).to_have_class("status-shape fill-red shape-ring")
    expect(node).to_have_attribute("aria-label", re.compile(
        r"^Node broken, process \w+.*, status: crash loop: \d+ exits"))

    # A node killed under the page: its details follow (a new process, one restart more).
    headers = daemon.session()
    status, answer = daemon.request("GET", "/api/nodes/cold_alert", headers=headers)
    assert status == 200 and answer["process"] == "running", answer
    page.locator('[data-node="cold_alert"]').click()
    details = page.get_by_role("complementary", name="Node cold_alert")
    expect(details.locator("dl")).to_contain_text(f"PID{answer['pid']}")
    os.kill(answer["pid"], signal.SIGKILL)
    expect(details.locator("dl")).to_contain_text(f"Restarts{answer['restarts'] + 1}")
    expect(details.locator("dl")).not_to_contain_text(f"PID{answer['pid']}")
    expect(details.locator("dl")).to_contain_text("Processrunning")
    expect(page.locator('[data-node="cold_alert"]')).to_have_attribute("data-process",
                                                                       "running")

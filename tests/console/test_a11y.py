"""Every console page by keyboard, for a screen reader and on a phone, in real Chromium
against the real daemon (the example config).

- the landmarks: one banner, one navigation with a name, one main;
- the keyboard: a skip link first, the nav links next in their order, each page reached
  from the nav with Tab/Shift+Tab and Enter, the device page from the Devices page; after
  every navigation the page's heading has the focus (a screen reader reads where it is);
  the focused link is visibly marked;
- names: every control and link Chromium's accessibility tree has (buttons, fields,
  switches, sliders, selects, ...) has an accessible name, on every page;
- contrast: text at least 4.5:1 against its background (3:1 when large), WCAG AA;
- a phone (375x667): no page scrolls sideways; the nav opens from its menu button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.helpers import READY, TIMEOUT_MS, ConsoleDaemon, navigate

PHONE_SE = {"width": 375, "height": 667}
NAV = [("Overview", "#/"), ("Devices", "#/devices"), ("Flows", "#/flows"),
       ("Services", "#/services"), ("Zigbee", "#/zigbee"),
       ("System variables", "#/sysvars"), ("Log", "#/log")]
CONTROL_ROLES = {
    "button", "checkbox", "combobox", "link", "listbox", "menuitem", "option", "radio",
    "searchbox", "slider", "spinbutton", "switch", "tab", "textbox",
}
MAX_TABS = 60


def lamp_hash(daemon: ConsoleDaemon) -> str:
    status, body = daemon.request("GET", "/api/devices?source=demo", headers=daemon.session())
    assert status == 200, body
    lamp = next(d for d in body["devices"] if d["key"] == "lamp")
    return f"#/devices/{lamp['peer_id']}"


def all_pages(daemon: ConsoleDaemon) -> list[tuple[str, str]]:
    return [*NAV, ("Demo lamp", lamp_hash(daemon))]


FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  return {tag: e.tagName, href: e.getAttribute("href"), text: (e.innerText || "").trim(),
          inNav: !!e.closest("nav"), inView: !!e.closest("#view"), id: e.id};
}"""


def focused(page: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate(FOCUSED)
    return result


def wait_heading_focused(page: Any, hash_: str) -> None:
    """The new page is ready and its heading (inside #view) has the focus."""
    page.wait_for_function(
        """(h) => location.hash === h
             && document.querySelector('#view [data-ready="true"]')
             && document.activeElement
             && document.activeElement.closest('#view [data-ready="true"]')
             && /^H[1-6]$/.test(document.activeElement.tagName)""",
        arg=hash_, timeout=TIMEOUT_MS)


def tab_to(page: Any, key: str, wanted: Callable[[dict[str, Any] | None], bool],
           what: str) -> list[dict[str, Any] | None]:
    """Press ``key`` until the focused element is ``wanted``; the elements passed."""
    seen = []
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        now = focused(page)
        seen.append(now)
        if wanted(now):
            return seen
    raise AssertionError(f"{what}: not reached with {MAX_TABS} x {key}; focus went "
                         f"through {[(s or {}).get('text') or s for s in seen]}")


def nav_link(hash_: str) -> Callable[[dict[str, Any] | None], bool]:
    """Whether the focused element is the nav's link to ``hash_``."""
    return lambda f: bool(f and f["inNav"] and f["href"] == hash_)


def test_landmarks(page: Any) -> None:
    expect(page.get_by_role("banner")).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)
    navs = page.get_by_role("navigation")
    expect(navs).to_have_count(1)
    assert navs.first.get_attribute("aria-label"), "the nav has no name (aria-label)"
    assert page.evaluate("() => document.documentElement.lang"), "<html> has no lang"
    # Each page has one level-one heading, which names the page for its region.
    expect(page.locator("#view h1")).to_have_count(1)


def test_tab_order_starts_with_skip_link_then_nav(open_page: Callable[..., Any]) -> None:
    page = open_page()
    wait_heading_focused(page, page.evaluate("() => location.hash") or "#/")
    # From the page's heading backwards to the top of the document: the whole Tab order
    # before the page's content.
    backwards: list[dict[str, Any]] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab")
        now = focused(page)
        if now is None or now.get("inView") or now in backwards[-1:]:
            break
        backwards.append(now)
        if "skip" in now["text"].lower():
            break
    order = backwards[::-1]
    assert order and "skip" in order[0]["text"].lower(), (
        f"the first stop of Tab should be the skip link; the order is {order}")
    hrefs = [f["href"] for f in order if f["inNav"]]
    assert hrefs == [href for _, href in NAV], f"nav links in Tab order: {hrefs}"
    # The skip link's Enter moves the focus into the page; the route stays.
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.closest('#view')",
        timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)  # (a route change would have started by now)
    assert page.evaluate("() => location.hash") in ("", "#/"), (
        "the skip link changed the route to " + page.evaluate("() => location.hash"))
    expect(page.locator(READY)).to_have_count(1)
    expect(page.locator("#view h1")).not_to_have_text("No such page")


def test_every_page_by_keyboard_from_the_nav(open_page: Callable[..., Any],
                                              console_daemon: ConsoleDaemon) -> None:
    page = open_page()
    wait_heading_focused(page, page.evaluate("() => location.hash") or "#/")
    for name, hash_ in [*NAV[1:], NAV[0]]:
        # From the current page's heading, back up into the nav (Shift+Tab) to the link.
        tab_to(page, "Shift+Tab", nav_link(hash_), f"the nav link to {name}")
        style = page.evaluate("""() => {
            const s = getComputedStyle(document.activeElement);
            return {outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow};
        }""")
        assert (style["outline"] != "none" and style["width"] != "0px") or \
            style["shadow"] != "none", f"the focused nav link to {name} is not marked: {style}"
        page.keyboard.press("Enter")
        wait_heading_focused(page, hash_)
        link = page.locator(f'nav a[href="{hash_}"]')
        expect(link).to_have_attribute("aria-current", "page")


def test_device_page_by_keyboard_from_devices(open_page: Callable[..., Any],
                                               console_daemon: ConsoleDaemon) -> None:
    target = lamp_hash(console_daemon)
    page = open_page(hash_="#/devices")
    wait_heading_focused(page, "#/devices")
    tab_to(page, "Tab", lambda f: bool(f and f["tag"] == "INPUT"), "the devices filter")
    page.keyboard.type("Demo lamp")
    page.wait_for_function(
        "(h) => [...document.querySelectorAll(`#view a[href='${h}']`)]"
        ".some((a) => a.offsetParent !== null)", arg=target, timeout=TIMEOUT_MS)
    tab_to(page, "Tab", lambda f: bool(f and f["href"] == target), "the Demo lamp's link")
    page.keyboard.press("Enter")
    wait_heading_focused(page, target)
    expect(page.locator("#view h1")).to_contain_text("Demo lamp")


def test_a_flow_wire_by_keyboard(open_page: Callable[..., Any]) -> None:
    """Wires are buttons in the Tab order: Enter watches one, Escape closes the panel."""
    page = open_page(hash_="#/flows")
    wait_heading_focused(page, "#/flows")
    tab_to(page, "Tab", lambda f: bool(f and f["inView"]) and page.evaluate(
        "() => document.activeElement.hasAttribute('data-wire')"), "a wire of the flow graph")
    page.keyboard.press("Enter")
    panel = page.get_by_role("heading", name="Messages on a wire")
    expect(panel).to_be_visible()
    expect(page.get_by_role("log", name="Messages, newest first")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)


def test_controls_say_what_they_are(open_page: Callable[..., Any],
                                    console_daemon: ConsoleDaemon) -> None:
    """The lamp's boolean is a switch with its state, its brightness a slider with its
    range: what a screen reader announces."""
    page = open_page(hash_=lamp_hash(console_daemon))
    switch = page.get_by_role("switch", name="state").first
    expect(switch).to_be_visible()
    assert switch.get_attribute("aria-checked") in ("true", "false")
    slider = page.get_by_role("slider", name="brightness").first
    expect(slider).to_be_visible()
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", "254")


def unnamed_controls(page: Any) -> list[str]:
    """Controls and links in Chromium's accessibility tree without a name."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.getDocument", {"depth": 0})
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        problems = []
        for node in nodes:
            role = (node.get("role") or {}).get("value")
            if node.get("ignored") or role not in CONTROL_ROLES:
                continue
            if str((node.get("name") or {}).get("value", "")).strip():
                continue
            html = "?"
            if "backendDOMNodeId" in node:
                html = cdp.send("DOM.getOuterHTML",
                                {"backendNodeId": node["backendDOMNodeId"]})["outerHTML"]
            problems.append(f"{role}: {html[:200]}")
        return problems
    finally:
        cdp.detach()


def test_every_control_has_a_name(open_page: Callable[..., Any],
                                  console_daemon: ConsoleDaemon) -> None:
    problems: dict[str, list[str]] = {}
    login_page = open_page(login=False, hash_="#/login")
    found = unnamed_controls(login_page)
    if found:
        problems["#/login"] = found
    page = open_page()
    for _, hash_ in all_pages(console_daemon):
        navigate(page, hash_)
        page.wait_for_timeout(1500)  # live data and controls drawn
        if hash_ == "#/flows":  # the side panel of a wire, with its controls
            wire = page.locator("#view [data-wire]").first
            if wire.count():
                wire.click()
                page.wait_for_timeout(500)
        found = unnamed_controls(page)
        if found:
            problems[hash_] = found
    assert not problems, "controls without an accessible name:\n" + "\n".join(
        f"{route}: {p}" for route, found in problems.items() for p in found)


def test_the_checks_find_what_they_look_for(open_page: Callable[..., Any]) -> None:
    """The name, width and contrast checks are not vacuous: they see a nameless button,
    a nameless field, an element wider than the phone and pale text."""
    page = open_page(viewport=PHONE_SE)
    page.evaluate("""() => {
        const b = document.createElement("button");
        b.className = "bench-unnamed";
        const i = document.createElement("input");
        const wide = document.createElement("div");
        wide.id = "too-wide";
        wide.style.width = "2000px";
        wide.style.height = "2px";
        const pale = document.createElement("p");
        pale.textContent = "pale text";
        pale.style.color = "#cccccc";
        pale.style.backgroundColor = "#ffffff";
        document.querySelector("#view").append(b, i, wide, pale);
    }""")
    found = unnamed_controls(page)
    assert any("bench-unnamed" in p for p in found), found
    assert any(p.startswith("textbox: <input") for p in found), found
    overflow = page.evaluate(OVERFLOW)
    assert overflow["scrollWidth"] > overflow["width"], overflow
    assert any(w.startswith("div#too-wide") for w in overflow["wide"]), overflow
    low = page.evaluate(CONTRAST)
    assert any('"pale text"' in line for line in low), low


CONTRAST = """() => {
  const rgba = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (e) => {
    for (let p = e; p; p = p.parentElement) {
      const c = rgba(getComputedStyle(p).backgroundColor);
      if (c && c[3] > 0.5) return c;
      if (getComputedStyle(p).backgroundImage !== "none") return null;  // unknown
    }
    return [255, 255, 255, 1];
  };
  const low = [];
  for (const e of document.querySelectorAll("body *")) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.checkVisibility || !e.checkVisibility()) continue;
    if (e.closest(":disabled, [aria-disabled='true'], .skip")) continue;  // (WCAG: exempt)
    const style = getComputedStyle(e);
    const fg = rgba(style.color), bg = background(e);
    if (!fg || !bg) continue;
    const blend = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [l1, l2] = [luminance(blend), luminance(bg)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) {
      low.push(`${ratio.toFixed(2)} < ${needed}: <${e.tagName.toLowerCase()}`
        + `${e.className && typeof e.className === "string" ? " class=" + e.className : ""}> `
        + `${JSON.stringify(e.textContent.trim().slice(0, 40))} ${style.color} on ${bg}`);
    }
  }
  return low;
}"""


@pytest.mark.parametrize("route", [name for name, _ in NAV] + ["Demo lamp", "login"])
def test_text_contrast(open_page: Callable[..., Any], console_daemon: ConsoleDaemon,
                       route: str) -> None:
    """WCAG AA: text at least 4.5:1 against its background (3:1 when large); disabled
    controls are exempt."""
    if route == "login":
        page = open_page(login=False, hash_="#/login")
    else:
        page = open_page(hash_=dict(all_pages(console_daemon))[route])
    page.wait_for_timeout(1500)  # live data drawn
    low = page.evaluate(CONTRAST)
    assert not low, f"{route}: text with too little contrast:\n" + "\n".join(low[:15])


OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const e of document.querySelectorAll("body *")) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > width + 1) {
      // inside a container that scrolls by itself: that one is the problem, once
      let p = e.parentElement, scrolls = false;
      while (p && p !== document.body) {
        const o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") { scrolls = true; break; }
        p = p.parentElement;
      }
      const classes = typeof e.className === "string" && e.className
        ? "." + e.className.trim().split(/\\s+/).join(".") : "";
      if (!scrolls) wide.push(`${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${classes}`
        + ` right=${Math.round(r.right)}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8)};
}"""


@pytest.mark.parametrize("route", [name for name, _ in NAV] + ["Demo lamp", "login"])
def test_phone_shows_every_page_without_sideways_scrolling(
        open_page: Callable[..., Any], console_daemon: ConsoleDaemon, route: str) -> None:
    if route == "login":
        page = open_page(login=False, viewport=PHONE_SE, hash_="#/login")
    else:
        hash_ = dict(all_pages(console_daemon))[route]
        page = open_page(viewport=PHONE_SE, hash_=hash_)
    page.wait_for_timeout(1500)  # live data drawn
    if route == "Flows":
        wire = page.locator("#view [data-wire]").first
        if wire.count():
            wire.click()
            page.wait_for_timeout(500)
    found = page.evaluate(OVERFLOW)
    assert found["scrollWidth"] <= found["width"], (
        f"{route} scrolls sideways on a {PHONE_SE['width']} px phone: "
        f"{found['scrollWidth']} px wide; too wide: {found['wide']}")


def test_phone_nav_opens_from_its_menu_button(open_page: Callable[..., Any]) -> None:
    page = open_page(viewport=PHONE_SE)
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("link", name="Log", exact=True)).to_be_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    link = page.get_by_role("link", name="Log", exact=True)
    expect(link).to_be_visible()
    link.focus()
    page.keyboard.press("Enter")
    wait_heading_focused(page, "#/log")
    expect(toggle).to_have_attribute("aria-expanded", "false")

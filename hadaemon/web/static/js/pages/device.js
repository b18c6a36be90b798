// A device (#/devices/<peer_id>): its description, its variables with the controls of the
// Devices page, and a history chart per variable (a line for numbers, a timeline for
// booleans, enums and strings) over a picked range (hour, day, week), zoomable; live
// values are appended from the event stream.

import { h, debounce, formatValue, formatTime, message, setText } from "../dom.js";
import { VariableView, variableKey, variableName } from "../controls.js";
import { Chart } from "../chart.js";

const RANGES = [["hour", "Hour", 3600], ["day", "Day", 86400], ["week", "Week", 7 * 86400]];
const MIN_SPAN = 10;            // seconds: the narrowest zoom
const SLIDE_EVERY = 15000;      // ms: a live window moves on with the clock

export async function mount(root, params, ctx) {
  const peerId = Number(params.peer_id);
  root.classList.add("device-page");
  if (!/^\d+$/.test(String(params.peer_id)) || !Number.isSafeInteger(peerId)) {
    root.append(h("h1#page-title", "Device"), message(`"${params.peer_id}" is not a device id (a number)`),
      h("p", h("a", { href: "#/devices" }, "All devices")));
    root.dataset.ready = "true";
    return undefined;
  }
  const page = new DevicePage(root, peerId, ctx);
  await page.load();
  return () => page.destroy();
}

/** Which chart a variable gets: "line", "timeline" or null (none: bytes, structures). */
function chartKind(variable) {
  switch (variable.type) {
    case "int":
    case "float": return "line";
    case "bool":
    case "enum":
    case "string": return "timeline";
    case "any": return typeof variable.value === "number" ? "line" : "timeline";
    default: return null;
  }
}

class DevicePage {
  constructor(root, peerId, ctx) {
    this.root = root;
    this.peerId = peerId;
    this.ctx = ctx;
    this.views = new Map();   // key -> VariableView
    this.charts = new Map();  // key -> {chart, variable, channel}
    this.range = 3600;
    this.zoom = null;         // {start, end} while zoomed, else the range up to now
    this.fetches = 0;         // the latest history request; older answers are ignored
    this.closed = false;
    this.frame = 0;           // a requestAnimationFrame moving the live window on
    this.refetch = debounce(() => this.fetchHistory(), 250);
    this.reload = debounce(() => this.load(), 300);
    this.slider = setInterval(() => this.slide(), SLIDE_EVERY);
    const { events } = ctx;
    this.unsubscribe = [
      events.on(`variable/+/${peerId}/#`, (event) => this.onVariable(event)),
      events.on(`device/+/${peerId}/#`, () => this.reload()),
      events.onResync(() => this.load()),
    ];
  }

  async load() {
    let device;
    try {
      device = await this.ctx.api.get(`/api/devices/${this.peerId}`);
    } catch (exc) {
      if (this.closed) return;
      this.root.replaceChildren(h("h1#page-title", `Device ${this.peerId}`),
        message(exc.status === 404 ? `No device ${this.peerId}: ${exc.message}` : exc.message),
        h("p", h("a", { href: "#/devices" }, "All devices")));
      this.root.dataset.ready = "true";
      return;
    }
    if (this.closed) return;
    this.render(device);
    this.root.dataset.ready = "true";
    this.fetchHistory();
  }

  render(device) {
    this.device = device;
    this.ctx.setTitle(device.name);
    for (const { chart } of this.charts.values()) chart.destroy();
    this.views.clear();
    this.charts.clear();
    const api = this.ctx.api;

    const info = [["Peer id", device.peer_id], ["Source", device.source], ["Key", device.key],
      ["Type", device.type || "–"]];
    for (const [key, value] of Object.entries(device.info || {})) info.push([key, formatValue(value)]);

    const rows = [];
    const charts = [];
    for (const channel of device.channels) {
      for (const variable of channel.variables) {
        const key = variableKey(device.peer_id, channel.index, variable.name);
        const view = new VariableView(api, device, channel, variable);
        this.views.set(key, view);
        const name = device.channels.length > 1
          ? `${channel.name || `channel ${channel.index}`} · ${variableName(variable)}`
          : variableName(variable);
        const access = ["read", "write", "query"].filter((a) => variable.access && variable.access[a]);
        rows.push(h("tr", { dataset: { key } },
          h("th", { scope: "row" }, name,
            h("span.var-meta.muted", [variable.type, variable.unit, access.join("/"),
              variable.is_event ? "event" : null].filter(Boolean).join(" · "))),
          h("td.var-value-cell", view.value),
          h("td", h("div.var-control-cell", view.control || h("span.muted", "read only"),
            view.status))));
        const kind = chartKind(variable);
        if (kind) {
          const chart = new Chart({
            kind, title: name, label: `${device.name} ${name}`, unit: variable.unit,
            values: variable.values, isEvent: variable.is_event, known: variable.known !== false,
            onZoom: (start, end) => this.zoomTo(start, end), onReset: () => this.resetZoom(),
          });
          chart.el.dataset.key = key;
          this.charts.set(key, { chart, variable, channel });
          charts.push(chart.el);
        }
      }
    }

    this.rangeButtons = RANGES.map(([id, text, seconds]) => h("button.btn.btn-small", {
      type: "button", "aria-pressed": String(seconds === this.range), dataset: { range: id },
      on: { click: () => this.pickRange(seconds) },
    }, text));
    this.resetButton = h("button.btn.btn-small", { type: "button", disabled: !this.zoom,
      on: { click: () => this.resetZoom() } }, "Reset zoom");
    this.windowText = h("span.chart-window.muted", { "aria-live": "polite" });

    this.root.replaceChildren(
      h("p.breadcrumb", h("a", { href: "#/devices" }, "Devices"), " / ", device.name),
      h("h1#page-title", device.name),
      h("dl.device-info", info.map(([k, v]) => [h("dt", k), h("dd", String(v))])),
      h("section.device-variables", { "aria-labelledby": "device-variables-title" },
        h("h2#device-variables-title", "Variables"),
        rows.length ? h("div.table-scroll", h("table.table.var-table",
          h("thead", h("tr", h("th", { scope: "col" }, "Variable"), h("th", { scope: "col" }, "Value"),
            h("th", { scope: "col" }, "Control"))),
          h("tbody", rows))) : h("p.muted", "This device has no variables.")),
      h("section.device-history", { "aria-labelledby": "device-history-title" },
        h("h2#device-history-title", "History"),
        h("div.chart-toolbar",
          h("div.range-picker", { role: "group", "aria-label": "Time range" }, this.rangeButtons),
          this.resetButton, this.windowText),
        charts.length ? h("p.muted.chart-help", "Drag across a chart or use the wheel to zoom; "
          + "focus a chart and use the arrow keys to read its values, + and - to zoom, 0 to reset.")
          : h("p.muted", "No variable of this device can be charted."),
        h("div.charts", charts)),
    );
    this.applyWindow();
  }

  // -- the time window ------------------------------------------------------------------

  window() {
    if (this.zoom) return this.zoom;
    const now = Date.now() / 1000;
    return { start: now - this.range, end: now };
  }

  applyWindow() {
    const { start, end } = this.window();
    for (const { chart } of this.charts.values()) chart.setWindow(start, end);
    const withDate = end - start > 86400 / 2;
    setText(this.windowText, this.zoom
      ? `${formatTime(start, { withDate })} – ${formatTime(end, { withDate })}`
      : `last ${RANGES.find((r) => r[2] === this.range)[1].toLowerCase()}`);
    if (this.resetButton) this.resetButton.disabled = !this.zoom;
    for (const button of this.rangeButtons || []) {
      const seconds = RANGES.find((r) => r[0] === button.dataset.range)[2];
      button.setAttribute("aria-pressed", String(!this.zoom && seconds === this.range));
    }
  }

  pickRange(seconds) {
    this.range = seconds;
    this.zoom = null;
    this.applyWindow();
    this.fetchHistory();
  }

  zoomTo(start, end) {
    const now = Date.now() / 1000;
    let span = Math.max(MIN_SPAN, end - start);
    span = Math.min(span, 31 * 86400);
    let to = Math.min(now, start + span);
    const from = to - span;
    if (to >= now - 1 && span >= this.range) {
      this.resetZoom();  // zoomed out to the whole range: live again
      return;
    }
    to = Math.max(from + MIN_SPAN, to);
    this.zoom = { start: from, end: to };
    this.applyWindow();
    this.refetch();
  }

  resetZoom() {
    this.zoom = null;
    this.applyWindow();
    this.fetchHistory();
  }

  /** Live (not zoomed): the window follows the clock. */
  slide() {
    if (!this.zoom && this.charts.size) this.applyWindow();
  }

  async fetchHistory() {
    this.refetch.cancel();
    if (this.closed || !this.charts.size) return;
    this.fetches += 1;
    const mine = this.fetches;
    const { start, end } = this.window();
    const device = this.device;
    await Promise.all([...this.charts.values()].map(async ({ chart, variable, channel }) => {
      try {
        const answer = await this.ctx.api.get("/api/history", {
          source: device.source, peer_id: device.peer_id, channel: channel.index,
          name: variable.name, start: start.toFixed(3), end: (end + 1).toFixed(3),
          max_points: Math.min(2000, Math.max(50, Math.floor(chart.width / 2))),
        });
        if (mine === this.fetches && !this.closed) chart.setData(answer);
      } catch (exc) {
        if (mine === this.fetches && !this.closed) chart.showMessage(exc.message);
      }
    }));
  }

  // -- live values ----------------------------------------------------------------------

  onVariable(event) {
    const key = variableKey(event.peer_id, event.channel, event.name);
    const view = this.views.get(key);
    if (view) view.update(event.value);
    const entry = this.charts.get(key);
    if (entry && !this.zoom) {
      entry.chart.append(event.timestamp, event.value);
      // Every chart's window moves on to now (once a frame), so their time axes agree.
      if (!this.frame) {
        this.frame = requestAnimationFrame(() => {
          this.frame = 0;
          if (!this.zoom) this.applyWindow();
        });
      }
    }
  }

  destroy() {
    this.closed = true;
    for (const off of this.unsubscribe) off();
    this.refetch.cancel();
    this.reload.cancel();
    clearInterval(this.slider);
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const { chart } of this.charts.values()) chart.destroy();
  }
}

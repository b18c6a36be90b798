// Devices (#/devices): every device of every world, filterable, with live values and the
// controls of its writable variables.
//
// Kept fast with a thousand devices and thousands of changes a second:
// - rows are built in slices of a few milliseconds, one a frame (the first at once), so
//   the main thread is never held long, rendering included; CSS `content-visibility:
//   auto` lets the browser skip the layout and painting of rows off screen;
// - events only note the latest value per variable; one requestAnimationFrame a frame
//   applies them, touching only the cells whose value changed;
// - filtering flips `hidden` on the rows whose match changed.

import { h, debounce, message, setText } from "../dom.js";
import { VariableView, sameValue, variableKey } from "../controls.js";

const SLICE_MS = 8;        // rows are built in slices this long
const FIRST_ROWS = 30;     // at least this many at once (a screenful)

export async function mount(root, params, ctx) {
  const page = new DevicesPage(root, params, ctx);
  ctx.setTitle("Devices");
  await page.load();
  return () => page.destroy();
}

class DevicesPage {
  constructor(root, params, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.entries = [];          // {device, text, visible, row}
    this.views = new Map();     // key -> VariableView (rows built)
    this.variables = new Map(); // key -> variable of the API's list (rows not built yet)
    this.queued = new Map();    // key -> the latest value not on screen yet
    this.frame = 0;
    this.buildFrame = 0;
    this.next = 0;              // the next entry to build a row for
    this.signature = "";
    this.closed = false;

    // The filter lives in the route too (#/devices?q=lamp&source=demo): back from a
    // device's page, the list is filtered as it was.
    this.search = h("input#devices-filter", { type: "search", placeholder: "name, source, type",
      autocomplete: "off", spellcheck: "false", value: params.q || "" });
    this.wantedSource = params.source || "";
    this.sourceSelect = h("select#devices-source", h("option", { value: "" }, "All sources"));
    this.count = h("p.devices-count.muted", { role: "status", "aria-live": "polite" });
    this.list = h("ul.device-list", { "aria-label": "Devices" });
    this.note = h("p.muted.devices-empty", { hidden: true });
    this.error = h("div.devices-error");
    root.classList.add("devices-page");
    root.append(
      h("h1#page-title", "Devices"),
      h("div.devices-toolbar", { role: "search", "aria-label": "Filter devices" },
        h("label", { for: "devices-filter" }, "Filter"), this.search,
        h("label", { for: "devices-source" }, "Source"), this.sourceSelect, this.count),
      this.error, this.list, this.note,
    );
    this.refilter = debounce(() => this.applyFilter(), 80);
    this.reload = debounce(() => this.load(), 300);
    this.search.addEventListener("input", this.refilter);
    this.sourceSelect.addEventListener("change", () => this.applyFilter());

    const { events } = ctx;
    this.unsubscribe = [
      events.on("variable/#", (event) => this.onVariable(event)),
      events.on("device/#", this.reload),  // added, removed, renamed: the list again
      events.onResync(() => this.load()),
    ];
  }

  async load() {
    let answer;
    try {
      answer = await this.ctx.api.get("/api/devices");
    } catch (exc) {
      if (this.closed) return;
      this.error.replaceChildren(message(`Cannot read the devices: ${exc.message}`));
      this.root.dataset.ready = "true";
      return;
    }
    if (this.closed) return;
    this.error.replaceChildren();
    const devices = answer.devices;
    const signature = JSON.stringify(devices.map((d) => [d.peer_id, d.name, d.type,
      d.channels.map((c) => c.variables.map((v) => v.name))]));
    if (signature === this.signature) this.refresh(devices);
    else {
      this.signature = signature;
      this.rebuild(devices);
    }
    this.root.dataset.ready = "true";
  }

  /** A new set of devices: rows built again (the first slice now, the rest in slices). */
  rebuild(devices) {
    cancelAnimationFrame(this.buildFrame);
    const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
    devices.sort((a, b) => collator.compare(a.source, b.source) || collator.compare(a.name, b.name)
      || a.peer_id - b.peer_id);
    this.entries = devices.map((device) => ({
      device,
      text: `${device.name}\n${device.source}\n${device.type}\n${device.key}`.toLowerCase(),
      visible: true,
      row: null,
    }));
    this.views.clear();
    this.variables.clear();
    this.queued.clear();
    for (const device of devices) {
      for (const channel of device.channels) {
        for (const variable of channel.variables) {
          this.variables.set(variableKey(device.peer_id, channel.index, variable.name), variable);
        }
      }
    }
    this.fillSources(devices);
    this.list.replaceChildren();
    this.next = 0;
    this.matchAll();
    this.buildSlice(FIRST_ROWS);
  }

  /** The same devices read again (after a gap or a reconnect): values only. */
  refresh(devices) {
    for (const device of devices) {
      for (const channel of device.channels) {
        for (const variable of channel.variables) {
          const key = variableKey(device.peer_id, channel.index, variable.name);
          const view = this.views.get(key);
          const value = variable.known === false ? null : variable.confirmed;
          if (view) {
            view.update(value);
            if (variable.pending !== undefined) view.setPending(variable.pending);
          } else {
            this.variables.set(key, variable);
          }
        }
      }
    }
  }

  fillSources(devices) {
    const counts = new Map();
    for (const d of devices) counts.set(d.source, (counts.get(d.source) || 0) + 1);
    const chosen = this.sourceSelect.value || this.wantedSource;
    this.wantedSource = "";
    this.sourceSelect.replaceChildren(h("option", { value: "" }, `All sources (${devices.length})`),
      ...[...counts.keys()].sort().map((s) => h("option", { value: s }, `${s} (${counts.get(s)})`)));
    this.sourceSelect.value = counts.has(chosen) ? chosen : "";
  }

  buildSlice(atLeast = 0) {
    this.buildFrame = 0;
    if (this.closed) return;
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    let built = 0;
    while (this.next < this.entries.length
           && (built < atLeast || performance.now() - started < SLICE_MS)) {
      const entry = this.entries[this.next];
      this.next += 1;
      entry.row = this.buildRow(entry.device);
      entry.row.hidden = !entry.visible;
      fragment.append(entry.row);
      built += 1;
    }
    this.list.append(fragment);
    if (this.next < this.entries.length) {
      this.buildFrame = requestAnimationFrame(() => this.buildSlice());
    }
  }

  buildRow(device) {
    const api = this.ctx.api;
    const variables = [];
    for (const channel of device.channels) {
      for (const variable of channel.variables) {
        const key = variableKey(device.peer_id, channel.index, variable.name);
        const current = this.variables.get(key) || variable;
        this.variables.delete(key);
        const view = new VariableView(api, device, channel, current);
        this.views.set(key, view);
        const name = device.channels.length > 1 ? `${channel.index}·${variable.name}` : variable.name;
        variables.push(h("li.var", { dataset: { key, kind: view.kind || "read" } },
          h("span.var-name", { "aria-hidden": view.control ? "true" : false }, name),
          view.elements));
      }
    }
    return h("li.device-row", { dataset: { peer: String(device.peer_id), source: device.source } },
      h("div.device-head",
        h("a.device-name", { href: `#/devices/${device.peer_id}` }, device.name),
        h("span.badge.device-source", device.source),
        device.type ? h("span.device-type.muted", device.type) : null),
      variables.length ? h("ul.var-list", { "aria-label": `${device.name} variables` }, variables)
        : h("p.muted", "no variables"));
  }

  // -- filter ---------------------------------------------------------------------------

  matchAll() {
    const words = this.search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const source = this.sourceSelect.value;
    let shown = 0;
    for (const entry of this.entries) {
      entry.visible = (!source || entry.device.source === source)
        && words.every((w) => entry.text.includes(w));
      if (entry.row && entry.row.hidden === entry.visible) entry.row.hidden = !entry.visible;
      if (entry.visible) shown += 1;
    }
    const total = this.entries.length;
    setText(this.count, shown === total ? `${total} devices` : `${shown} of ${total} devices`);
    this.note.hidden = shown > 0;
    setText(this.note, total ? "No device matches the filter." : "No devices yet.");
  }

  applyFilter() {
    if (this.closed) return;
    this.matchAll();
    const query = new URLSearchParams();
    if (this.search.value) query.set("q", this.search.value);
    if (this.sourceSelect.value) query.set("source", this.sourceSelect.value);
    const text = query.toString();
    // (replaceState: no hashchange, so the router leaves the page as it is)
    history.replaceState(history.state, "", text ? `#/devices?${text}` : "#/devices");
  }

  // -- live values ----------------------------------------------------------------------

  onVariable(event) {
    this.queued.set(`${event.peer_id}/${event.channel}/${event.name}`, event.value);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    for (const [key, value] of this.queued) {
      const view = this.views.get(key);
      if (view) view.update(value);
      else {
        const variable = this.variables.get(key);
        if (!variable) continue;  // a device not listed yet: its `device` event reloads
        variable.confirmed = value;
        variable.value = value;
        variable.known = true;
        if (variable.pending !== undefined && sameValue(variable.pending, value)) delete variable.pending;
      }
    }
    this.queued.clear();
  }

  destroy() {
    this.closed = true;
    for (const off of this.unsubscribe) off();
    this.refilter.cancel();
    this.reload.cancel();
    cancelAnimationFrame(this.buildFrame);
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

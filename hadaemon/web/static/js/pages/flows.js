// Flows: the configured nodes and wires as a graph (GET /api/flows, drawn by graph.js),
// each node's status badge live (`status` events) with its process state (GET
// /api/nodes, read again when a node's lifecycle changes), and a side panel that either
// watches the messages on a wire (events.tap) or shows one node's details.

import { h, replace, setText, formatTime, formatDuration, message, rereader } from "../dom.js";
import { layout, draw, wireLabel, nodeLabel } from "../graph.js";

const MAX_MESSAGES = 50;
const REFRESH_MS = 5000;

export async function mount(root, params, ctx) {
  const { api, events } = ctx;
  ctx.setTitle("Flows");
  const heading = h("h1#page-title", "Flows");
  replace(root, heading, h("p.muted", "Loading the flows…"));

  const statuses = new Map();   // node id -> the newest status event's status
  let drawn = null;
  let panel = null;             // {kind, close(), ...}
  let closed = false;
  const offs = [];

  offs.push(events.on("status/nodes/+", (event) => {
    statuses.set(event.id, event.status || {});
    if (drawn) drawn.setNode(event.id, { status: event.status || {} });
    if (panel && panel.kind === "node" && panel.id === event.id) panel.refresh();
  }));

  let graph;
  let nodes;
  try {
    [graph, nodes] = await Promise.all([api.get("/api/flows"), api.get("/api/nodes")]);
  } catch (exc) {
    offs.forEach((off) => off());
    if (exc.status === 401) throw exc;
    const why = exc.code === "not_enabled"
      ? "The nodes plugin is not enabled: add \"nodes\" to [daemon].plugins to run flows."
      : `The flows cannot be read: ${exc.message}`;
    replace(root, heading, message(why));
    root.dataset.ready = "true";
    return undefined;
  }

  const state = new Map(nodes.nodes.map((n) => [n.id, n]));
  const lay = layout(graph);
  drawn = draw(lay);
  for (const n of graph.nodes) {
    const known = state.get(n.id) || {};
    drawn.setNode(n.id, { process: known, status: statuses.get(n.id) || known.status || {} });
  }

  const canvas = h("div.flows-canvas", {
    role: "region", "aria-label": "Flow graph", tabindex: -1,
  }, drawn.svg);
  const side = h("aside.flows-panel#flows-panel", { "aria-label": "Details", hidden: true });
  for (const el of [...drawn.nodes.values(), ...drawn.wires]) {
    el.setAttribute("aria-controls", "flows-panel");
  }
  const summary = h("p.muted.flows-summary",
    `${graph.nodes.length} node(s) in ${graph.flows.length} flow(s), `
    + `${graph.wires.length} wire(s). Select a wire (click, or Enter) to watch the messages `
    + "passing along it; a node for its details.");
  const layoutBox = h("div.flows-layout", canvas, side);
  replace(root, heading, summary, graph.nodes.length ? layoutBox
    : h("p.muted", "No nodes are configured ([[nodes.node]] in the config)."));

  // -- the side panel ----------------------------------------------------------------

  function closePanel({ focus = true } = {}) {
    if (!panel) return;
    const { opener } = panel;
    panel.close();
    panel = null;
    for (const wg of drawn.wires) {
      wg.classList.remove("selected");
      wg.setAttribute("aria-pressed", "false");
    }
    for (const g of drawn.nodes.values()) g.classList.remove("selected");
    side.hidden = true;
    layoutBox.classList.remove("with-panel");
    replace(side);
    if (focus && opener && opener.isConnected) opener.focus();
  }

  function openPanel(content, label) {
    side.setAttribute("aria-label", label);
    replace(side, content);
    side.hidden = false;
    layoutBox.classList.add("with-panel");
    // (on a phone the panel is under the graph: bring it into sight)
    side.scrollIntoView({ block: "nearest" });
  }

  function closeButton(text) {
    return h("button.btn.btn-small.flows-close", {
      type: "button", "aria-label": text, on: { click: () => closePanel() },
    }, "Close");
  }

  function watchWire(wg) {
    const { wire } = wg;
    if (panel && panel.kind === "wire" && panel.key === wg.dataset.wire) {
      closePanel();
      return;
    }
    closePanel({ focus: false });
    const label = wireLabel(wire);
    const list = h("ol.tap-messages", { role: "log", "aria-label": "Messages, newest first" });
    const count = h("p.tap-count", { role: "status" }, "Watching: no message yet.");
    const problem = h("p.error", { role: "alert", hidden: true });
    let received = 0;
    let waiting = [];           // messages not drawn yet: drawn once a frame, the newest only
    let frame = null;
    const item = (event) => {
      const msg = event.msg || {};
      const body = event.truncated
        ? `${event.preview ?? ""} … (cut: the message has ${event.size} bytes)`
        : JSON.stringify("payload" in msg ? msg.payload : msg, null, 2);
      return h("li.tap-message", { dataset: { topic: msg.topic ?? "" } },
        h("div.tap-head",
          h("time", { datetime: new Date(event.time * 1000).toISOString() },
            formatTime(event.time)),
          msg.topic !== undefined ? h("span.tap-topic", `topic ${msg.topic}`) : null),
        h("pre.tap-payload", body));
    };
    const flush = () => {
      frame = null;
      const fresh = waiting.slice(-MAX_MESSAGES).reverse();
      waiting = [];
      list.prepend(...fresh.map(item));
      while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
      setText(count, received > MAX_MESSAGES
        ? `${received} message(s); the newest ${MAX_MESSAGES} shown.`
        : `${received} message(s).`);
    };
    const onMessage = (event) => {
      received += 1;
      waiting.push(event);
      if (waiting.length > MAX_MESSAGES) waiting.shift();
      if (frame === null) frame = requestAnimationFrame(flush);
    };
    const onError = (text) => {
      problem.hidden = false;
      setText(problem, text);
    };
    const stop = events.tap(wire.from, wire.output, onMessage, onError);
    const sameOutput = drawn.wires.filter((other) => other.dataset.wire === wg.dataset.wire);
    for (const other of sameOutput) {
      other.classList.add("selected");
      other.setAttribute("aria-pressed", "true");
    }
    const close = () => {
      stop();
      if (frame !== null) cancelAnimationFrame(frame);
    };
    panel = { kind: "wire", key: wg.dataset.wire, opener: wg, close };
    openPanel([
      h("div.panel-head", h("h2", "Messages on a wire"), closeButton("Stop watching this wire")),
      h("p.tap-wire", label.replace(" to ", " → ")),
      sameOutput.length > 1
        ? h("p.muted", `Output ${wire.output + 1} of ${wire.from} has ${sameOutput.length} wires: `
          + "each gets these messages.") : null,
      count, problem, list,
    ], `Messages on the wire from ${label}`);
  }

  function showNode(g) {
    const id = g.dataset.node;
    if (panel && panel.kind === "node" && panel.id === id) {
      closePanel();
      return;
    }
    closePanel({ focus: false });
    const spec = graph.nodes.find((n) => n.id === id);
    const facts = h("dl.facts");
    const refresh = () => {
      const n = state.get(id) || {};
      const status = statuses.get(id) || n.status || {};
      const exit = n.last_exit;
      const exitText = exit && typeof exit === "object" ? JSON.stringify(exit) : exit;
      const rows = [
        ["Type", spec.type], ["Flow", spec.flow],
        ["Inputs / outputs", `${spec.inputs} / ${spec.outputs}`],
        ["Process", n.crash_loop ? `${n.process} (crash loop)` : (n.process || "unknown")],
        ["PID", n.pid ?? "–"], ["Connected", n.connected ? "yes" : "no"],
        ["Restarts", n.restarts ?? 0],
        ["Last exit", exit ? String(exitText) : "–"],
        ["Started in", n.ready_after !== undefined && n.ready_after !== null
          ? formatDuration(n.ready_after) : "–"],
        ["Status", status.text || "–"],
        ["Delivered", n.delivered ?? 0],
        ["Queued / in flight", `${n.queued ?? 0} / ${n.in_flight ?? 0}`],
        ["Failed / dropped / lost", `${n.failed ?? 0} / ${n.dropped ?? 0} / ${n.lost ?? 0}`],
      ];
      replace(facts, rows.map(([k, v]) => [h("dt", k), h("dd", String(v))]));
    };
    refresh();
    g.classList.add("selected");
    panel = { kind: "node", id, opener: g, close: () => {}, refresh };
    openPanel([
      h("div.panel-head", h("h2", `Node ${nodeLabel(spec)}`),
        closeButton("Close the node details")),
      facts,
    ], `Node ${id}`);
  }

  // -- input: click, Enter/Space, Escape ------------------------------------------------

  const activate = (target) => {
    const wg = target.closest(".flow-wire");
    if (wg) { watchWire(wg); return true; }
    const g = target.closest(".flow-node");
    if (g) { showNode(g); return true; }
    return false;
  };
  drawn.svg.addEventListener("click", (e) => { activate(e.target); });
  drawn.svg.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && activate(e.target)) e.preventDefault();
  });
  const onEscape = (e) => {
    if (e.key === "Escape" && panel) {
      e.preventDefault();
      closePanel();
    }
  };
  root.addEventListener("keydown", onEscape);

  // -- process state: read again on a node's lifecycle, and every few seconds ------------

  const reread = rereader(() => api.get("/api/nodes"), (fresh) => {
    for (const n of fresh.nodes) {
      state.set(n.id, n);
      drawn.setNode(n.id, { process: n });
    }
    if (panel && panel.kind === "node") panel.refresh();
  }, () => closed);
  let soon = null;
  offs.push(events.on("lifecycle/#", (event) => {
    if (!String(event.component || event.topic).includes("node:")) return;
    clearTimeout(soon);
    soon = setTimeout(reread, 200);
  }));
  offs.push(events.onResync(() => {
    // Statuses may have changed unseen: the node list carries each one's current status.
    statuses.clear();
    api.get("/api/nodes").then((fresh) => {
      if (closed) return;
      for (const n of fresh.nodes) {
        state.set(n.id, n);
        drawn.setNode(n.id, { process: n, status: n.status || {} });
      }
    }).catch(() => {});
  }));
  const timer = setInterval(reread, REFRESH_MS);

  root.dataset.ready = "true";

  return () => {
    closed = true;
    clearInterval(timer);
    clearTimeout(soon);
    offs.forEach((off) => off());
    root.removeEventListener("keydown", onEscape);
    if (panel) panel.close();
    panel = null;
  };
}

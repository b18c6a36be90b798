// The flow graph: a layout (layered left to right by wire depth, one group per flow)
// and its SVG drawing. Pure of the API: flows.js feeds it GET /api/flows and the live
// node state, and gets back elements it can update and focus.

const SVG = "http://www.w3.org/2000/svg";

export const NODE_W = 180;
export const NODE_H = 44;
const COL_GAP = 72;
const ROW_GAP = 40;          // room for the status badge under a node
const PAD = 20;
const TITLE_H = 26;
const GROUP_GAP = 24;
const LABEL_CHARS = 22;
const ADDRESS_MAX_W = 300;

/** A node's label: its name, else its id. */
export function nodeLabel(node) {
  return node.name || node.id;
}

/** The text of a wire's target: a node id (with its port when not the first) or an address. */
export function targetLabel(to) {
  if (to.address !== undefined) return to.address;
  return to.port ? `${to.id} input ${to.port + 1}` : to.id;
}

/** Outputs are numbered from 1 on screen, as Node-RED does; the API counts from 0. */
export function wireLabel(wire) {
  return `${wire.from} output ${wire.output + 1} to ${targetLabel(wire.to)}`;
}

// An address box is as wide as its longer line (split at the first "/"), within limits.
function addressLines(address) {
  const [first, ...rest] = address.split("/");
  return rest.length ? [`${first}/`, rest.join("/")] : [first];
}

function addressWidth(address) {
  const longest = Math.max(...addressLines(address).map((line) => line.length));
  return Math.min(Math.max(NODE_W, Math.ceil(longest * 6.8) + 24), ADDRESS_MAX_W);
}

function clip(text, max = LABEL_CHARS) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Each node's column: the longest chain of wires leading to it from the flow's roots.
 * A loop's wire back (found by a depth-first walk from the roots) does not count.
 */
function depths(members, wires) {
  const ids = members.map((n) => n.id);
  const next = new Map(ids.map((id) => [id, []]));
  for (const w of wires) next.get(w.from).push(w.to.id);
  const fed = new Set(wires.map((w) => w.to.id));
  const seen = new Map();   // id -> "open" while on the walk's path, "done" after
  const back = new Set();
  const walk = (id) => {
    seen.set(id, "open");
    for (const to of next.get(id)) {
      if (seen.get(to) === "open") back.add(`${id}\n${to}`);
      else if (!seen.has(to)) walk(to);
    }
    seen.set(id, "done");
  };
  for (const id of ids) if (!fed.has(id) && !seen.has(id)) walk(id);
  for (const id of ids) if (!seen.has(id)) walk(id);   // loops with no way in
  // Longest path over what is left, a DAG, in topological order.
  const waiting = new Map(ids.map((id) => [id, 0]));
  const kept = wires.filter((w) => !back.has(`${w.from}\n${w.to.id}`));
  for (const w of kept) waiting.set(w.to.id, waiting.get(w.to.id) + 1);
  const depth = new Map(ids.map((id) => [id, 0]));
  const ready = ids.filter((id) => waiting.get(id) === 0);
  while (ready.length) {
    const id = ready.shift();
    for (const w of kept) {
      if (w.from !== id) continue;
      depth.set(w.to.id, Math.max(depth.get(w.to.id), depth.get(id) + 1));
      waiting.set(w.to.id, waiting.get(w.to.id) - 1);
      if (waiting.get(w.to.id) === 0) ready.push(w.to.id);
    }
  }
  return depth;
}

/**
 * Place every node and address box. `graph` is GET /api/flows: {flows, nodes, wires}.
 * Returns {width, height, groups: [{flow, x, y, w, h}], boxes: Map(key -> box),
 * wires: [{wire, from: box, to: box}]}; a box is {key, kind: "node"|"address", x, y, w, h,
 * node?, address?, flow}. Node keys are "node:<id>", address keys "address:<flow>:<address>".
 */
export function layout(graph) {
  const nodes = graph.nodes || [];
  const wires = graph.wires || [];
  const flows = [...new Set([...(graph.flows || []), ...nodes.map((n) => n.flow)])];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const boxes = new Map();
  const groups = [];
  let top = PAD;
  let width = 0;

  for (const flow of flows) {
    const members = nodes.filter((n) => n.flow === flow);
    if (!members.length) continue;
    const inFlow = new Set(members.map((n) => n.id));
    const local = wires.filter((w) => inFlow.has(w.from));
    const depth = depths(members, local.filter((w) => inFlow.has(w.to.id)));
    // Columns of items: nodes, then one address box per address wired from this flow.
    const columns = [];
    const put = (d, item) => { (columns[d] ||= []).push(item); };
    for (const n of members) put(depth.get(n.id), { key: `node:${n.id}`, kind: "node", node: n });
    const addresses = new Map();
    for (const w of local) {
      if (w.to.address === undefined) continue;
      const d = depth.get(w.from) + 1;
      const key = `address:${flow}:${w.to.address}`;
      const seen = addresses.get(key);
      if (!seen) addresses.set(key, { key, kind: "address", address: w.to.address, d });
      else seen.d = Math.max(seen.d, d);
    }
    for (const a of addresses.values()) put(a.d, a);
    // One ordering pass: each item near the mean row of what feeds it (ties keep order).
    const row = new Map();
    columns.forEach((col = [], c) => {
      if (c > 0) {
        const feeds = (item) => {
          const rows = local
            .filter((w) => (item.kind === "node" ? w.to.id === item.node.id
              : w.to.address === item.address))
            .map((w) => row.get(`node:${w.from}`))
            .filter((r) => r !== undefined);
          return rows.length ? rows.reduce((s, r) => s + r, 0) / rows.length : Infinity;
        };
        const order = col.map((item, i) => ({ item, i, f: feeds(item) }));
        order.sort((a, b) => (a.f - b.f) || (a.i - b.i));
        columns[c] = order.map((o) => o.item);
      }
      (columns[c] || []).forEach((item, r) => row.set(item.key, r));
    });
    const rows = Math.max(...columns.map((col) => (col ? col.length : 0)));
    const x0 = PAD;
    const y0 = top + TITLE_H + PAD;
    columns.forEach((col, c) => {
      (col || []).forEach((item, r) => {
        boxes.set(item.key, {
          ...item, flow,
          x: x0 + PAD + c * (NODE_W + COL_GAP),
          y: y0 + r * (NODE_H + ROW_GAP),
          w: item.kind === "address" ? addressWidth(item.address) : NODE_W, h: NODE_H,
        });
      });
    });
    let right = 0;
    for (const box of boxes.values()) if (box.flow === flow) right = Math.max(right, box.x + box.w);
    const w = right + PAD - x0;
    const h = TITLE_H + PAD + rows * (NODE_H + ROW_GAP) - ROW_GAP + PAD + 18;
    groups.push({ flow, x: x0, y: top, w, h });
    width = Math.max(width, x0 + w + PAD);
    top += h + GROUP_GAP;
  }

  const placed = [];
  for (const wire of wires) {
    const from = boxes.get(`node:${wire.from}`);
    const to = wire.to.address !== undefined
      ? boxes.get(`address:${from ? from.flow : ""}:${wire.to.address}`)
      : boxes.get(`node:${wire.to.id}`);
    if (from && to) placed.push({ wire, from, to });
  }
  return { width: Math.max(width, 200), height: Math.max(top - GROUP_GAP + PAD, 80), groups,
    boxes, wires: placed, byId };
}

function el(name, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function port(p) {
  return el("rect", { class: "port", x: p.x - 5, y: p.y - 5, width: 10, height: 10, rx: 2 });
}

function outputPoint(box, output) {
  const outputs = Math.max(box.node.outputs, output + 1);
  return { x: box.x + box.w, y: box.y + (box.h * (output + 1)) / (outputs + 1) };
}

function inputPoint(box) {
  return { x: box.x, y: box.y + box.h / 2 };
}

function bend(a, b) {
  return b.x > a.x ? Math.max(36, (b.x - a.x) / 2) : 90;
}

/** The SVG path of a wire: a horizontal S-curve, wider when it runs backwards. */
export function wirePath(a, b) {
  const dx = bend(a, b);
  return `M${a.x},${a.y} C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${b.x},${b.y}`;
}

/** The area around a wire that takes clicks: the curve widened to a band (a straight
 * wire's own box would be flat, and nothing could point at it). */
export function wireHitPath(a, b, half = 7) {
  const dx = bend(a, b);
  const [at, bt, ab, bb] = [a.y - half, b.y - half, a.y + half, b.y + half];
  return `M${a.x},${at} C${a.x + dx},${at} ${b.x - dx},${bt} ${b.x},${bt}`
    + ` L${b.x},${bb} C${b.x - dx},${bb} ${a.x + dx},${ab} ${a.x},${ab} Z`;
}

/**
 * Draw a layout into a new <svg>. Nodes and wires are focusable buttons (tab order: a
 * node, then its wires). Returns {svg, nodes: Map(id -> <g>), wires: [<g>], setNode(id,
 * {status, process})}; `data-node`, `data-wire` ("<from>/<output>") and
 * `data-to` attributes let pages and tests find them.
 */
export function draw(lay) {
  const svg = el("svg", {
    class: "flow-graph", width: lay.width, height: lay.height,
    viewBox: `0 0 ${lay.width} ${lay.height}`, role: "group",
    "aria-label": "Flow graph: nodes and wires",
  });
  const nodeEls = new Map();
  const wireEls = [];

  for (const g of lay.groups) {
    svg.append(el("g", { class: "flow-group", "aria-hidden": "true" },
      el("rect", { x: g.x, y: g.y, width: g.w, height: g.h, rx: 8 }),
      el("text", { x: g.x + 12, y: g.y + 18, class: "flow-title" }, `Flow ${g.flow}`)));
  }

  const items = [...lay.boxes.values()].sort((a, b) => (a.y - b.y) || (a.x - b.x));
  // Each node's wires follow it in the document, which is the tab order; a wire's
  // curve leaves its node's edge, so painting it after the node hides nothing.
  for (const box of items) {
    if (box.kind === "address") {
      const [first, second] = addressLines(box.address);
      const chars = Math.floor((box.w - 20) / 6.8);
      svg.append(el("g", {
        class: "flow-address", "data-address": box.address, role: "img",
        "aria-label": `Bus address ${box.address}`,
      },
      el("title", {}, `Bus address ${box.address}`),
      el("rect", { x: box.x, y: box.y, width: box.w, height: box.h, rx: 14 }),
      el("text", { x: box.x + box.w / 2, y: box.y + (second ? 18 : 27), class: "address-text" },
        clip(first, chars)),
      second ? el("text", { x: box.x + box.w / 2, y: box.y + 34, class: "address-text" },
        clip(second, chars)) : null));
      continue;
    }
    const n = box.node;
    const ports = [];
    if (n.inputs > 0) {
      ports.push(port(inputPoint(box)));
    }
    for (let i = 0; i < n.outputs; i += 1) {
      ports.push(port(outputPoint(box, i)));
    }
    const title = el("title", {}, n.id);
    const nodeType = el("text", { class: "node-type", x: box.x + 12, y: box.y + 35 });
    const statusShape = el("rect", { class: "status-shape", x: box.x + 2, y: box.y + box.h + 6,
      width: 9, height: 9, rx: 2 });
    const statusText = el("text", { class: "status-text", x: box.x + 16, y: box.y + box.h + 14 });
    const procDot = el("circle", { class: "proc", cx: box.x + box.w - 10, cy: box.y + 10, r: 4 });
    const g = el("g", {
      class: "flow-node", tabindex: 0, role: "button", "data-node": n.id,
      "aria-label": `Node ${nodeLabel(n)}`,
    },
    title,
    el("rect", { class: "node-box", x: box.x, y: box.y, width: box.w, height: box.h, rx: 5 }),
    el("text", { class: "node-label", x: box.x + 12, y: box.y + 19 }, clip(nodeLabel(n))),
    nodeType,
    procDot, ...ports,
    el("g", { class: "node-status", hidden: "" }, statusShape, statusText));
    g.parts = { title, nodeType, statusShape, statusText, procDot };
    g.spec = n;
    svg.append(g);
    nodeEls.set(n.id, g);

    for (const placed of lay.wires.filter((w) => w.from === box)) {
      const { wire } = placed;
      const a = outputPoint(box, wire.output);
      const b = inputPoint(placed.to);
      const d = wirePath(a, b);
      const label = wireLabel(wire);
      const wg = el("g", {
        class: "flow-wire", tabindex: 0, role: "button", "aria-pressed": "false",
        "data-wire": `${wire.from}/${wire.output}`, "data-to": targetLabel(wire.to),
        "aria-label": `Wire from ${label}: watch its messages`,
      },
      el("title", {}, `${label} (click to watch its messages)`),
      el("path", { class: "wire-hit", d: wireHitPath(a, b) }),
      el("path", { class: "wire-line", d }));
      wg.wire = wire;
      svg.append(wg);
      wireEls.push(wg);
    }
  }
  function setNode(id, { status, process } = {}) {
    const g = nodeEls.get(id);
    if (!g) return;
    const { title, nodeType, statusShape, statusText, procDot } = g.parts;
    if (status !== undefined) {
      const s = status || {};
      const badge = g.querySelector(".node-status");
      const shown = Boolean(s.text || s.fill || s.shape);
      badge.toggleAttribute("hidden", !shown);
      g.dataset.statusText = s.text || "";
      statusText.textContent = clip(s.text || "", 30);
      const fill = ["red", "green", "yellow", "blue", "grey"].includes(s.fill) ? s.fill : "grey";
      const shape = s.shape === "ring" ? "ring" : "dot";
      // (text alone, as Node-RED shows a status without fill and shape)
      statusShape.setAttribute("class", s.fill || s.shape
        ? `status-shape fill-${fill} shape-${shape}` : "status-shape none");
      g.status = s;
    }
    if (process !== undefined) {
      g.process = process;
      g.dataset.process = process.process || "unknown";
      const state = process.crash_loop ? "crash_loop" : (process.process || "unknown");
      procDot.setAttribute("class", `proc proc-${state}`);
    }
    const s = g.status || {};
    const p = g.process;
    const procText = p ? (p.crash_loop ? "crash loop" : p.process || "unknown") : "unknown";
    const statusWords = s.text ? `, status: ${s.text}` : "";
    const type = g.spec.type && g.spec.type !== nodeLabel(g.spec) ? `${g.spec.type} · ` : "";
    nodeType.textContent = clip(`${type}${procText}`, 28);
    g.setAttribute("aria-label", `Node ${nodeLabel(g.spec)}, process ${procText}${statusWords}`);
    title.textContent = `${id}: process ${procText}${statusWords}`;
  }

  return { svg, nodes: nodeEls, wires: wireEls, setNode };
}

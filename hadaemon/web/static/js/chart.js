// History charts drawn as SVG: a line chart for numbers (with the min-max band of
// downsampled buckets) and a timeline for booleans, enums and strings (segments of each
// state; markers for event variables). Axes with "nice" ticks, time labels in local
// time, a readout of the point under the pointer or the keyboard's cursor, zoom by
// dragging a span, the wheel or + and -, reset by 0, Escape or a double click.
//
// A chart draws one time window; the page owns it (all charts of a device share it) and
// gets onZoom(start, end) / onReset() to change it.

import { h, formatValue, formatTime, setText } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 52, right: 14, top: 10, bottom: 24 };
const LINE_HEIGHT = 200;
const TIMELINE_HEIGHT = 60;
const MAX_MARKERS = 400;   // points drawn as circles up to this many (else the line only)
const MIN_DRAG = 6;        // pixels: a shorter drag is a click

/** An SVG element with attributes. */
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A step of 1, 2 or 5 times a power of ten giving about `count` ticks over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
}

/** Ticks on multiples of a nice step within [min, max]. */
export function numberTicks(min, max, count) {
  const step = niceStep(max - min, count);
  const ticks = [];
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  for (let i = Math.ceil(min / step); i * step <= max + step * 1e-9; i += 1) {
    ticks.push(Number((i * step).toFixed(digits)));
  }
  return ticks;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400, 172800, 604800];

/** Time ticks (Unix seconds) on round local times, about `count` over [start, end]. */
export function timeTicks(start, end, count) {
  const raw = (end - start) / Math.max(1, count);
  const step = TIME_STEPS.find((x) => x >= raw) || TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date(start * 1000).getTimezoneOffset() * 60;  // UTC = local + offset
  const ticks = [];
  for (let local = Math.ceil((start - offset) / step) * step; local + offset <= end; local += step) {
    ticks.push(local + offset);
  }
  return { ticks, step };
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const TIME_S = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric" });

/** A time axis label: seconds for short steps, the day at midnight and for long ones. */
export function timeLabel(t, step) {
  const date = new Date(t * 1000);
  if (step >= 86400 || (date.getHours() === 0 && date.getMinutes() === 0 && step >= 60)) {
    return DAY.format(date);
  }
  return (step < 60 ? TIME_S : TIME).format(date);
}

/** The index of the last item with item.t <= t (-1 if none): binary search. */
function indexAt(series, t) {
  let lo = 0;
  let hi = series.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (series[mid].t <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

let charts = 0;

export class Chart {
  /**
   * kind: "line" | "timeline"; title; unit; values (an enum's, for colours); isEvent
   * (markers, not states); known: whether the variable ever had a value (one that never
   * had is shown as a line of text, not an empty chart); onZoom(start, end) and
   * onReset() (the page's window).
   */
  constructor({ kind, title, label, unit, values, isEvent, known = true, onZoom, onReset }) {
    charts += 1;
    this.id = `chart-${charts}`;
    this.kind = kind;
    this.title = title;
    this.unit = unit || "";
    this.values = values || [];
    this.isEvent = Boolean(isEvent);
    this.known = known;
    this.onZoom = onZoom || (() => {});
    this.onReset = onReset || (() => {});
    this.series = [];       // {t, v, lo?, hi?, n?} in time order
    this.start = 0;
    this.end = 1;
    this.width = 600;
    this.height = kind === "line" ? LINE_HEIGHT : TIMELINE_HEIGHT;
    this.cursor = -1;       // index into series of the point read out
    this.visible = [0, -1]; // first and last index drawn
    this.drag = null;
    this.frame = 0;
    this.message = null;

    const readoutId = `${this.id}-readout`;
    this.svg = s("svg", {
      class: "chart-svg", role: "application", tabindex: "0", "aria-roledescription": "chart",
      "aria-label": `${label || title}: history chart. Arrow keys read the values, + and - zoom, 0 resets.`,
      "aria-describedby": readoutId, "data-points": "0",
    });
    this.axes = s("g", { class: "chart-axes" });
    this.data = s("g", { class: "chart-data", "clip-path": `url(#${this.id}-clip)` });
    this.clip = s("rect");
    this.cursorLayer = s("g", { class: "chart-cursor" });
    this.selection = s("rect", { class: "chart-selection", visibility: "hidden" });
    const clipPath = s("clipPath", { id: `${this.id}-clip` });
    clipPath.append(this.clip);
    const defs = s("defs");
    defs.append(clipPath);
    this.svg.append(defs, this.axes, this.data, this.cursorLayer, this.selection);
    this.readout = h("output.chart-readout", { id: readoutId, "aria-live": "polite" }, " ");
    this.emptyNote = h("p.chart-empty-note.muted", "no values recorded in this time");
    this.el = h("figure.chart", { dataset: { kind, state: "loading" } },
      h("figcaption.chart-title", title), this.emptyNote, this.svg, this.readout);

    this.svg.addEventListener("pointerdown", (e) => this.pointerDown(e));
    this.svg.addEventListener("pointermove", (e) => this.pointerMove(e));
    this.svg.addEventListener("pointerup", (e) => this.pointerUp(e));
    this.svg.addEventListener("pointercancel", () => this.endDrag());
    this.svg.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    this.svg.addEventListener("dblclick", () => this.onReset());
    this.svg.addEventListener("keydown", (e) => this.key(e));
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.el);
  }

  // -- data -----------------------------------------------------------------------------

  /** The window to draw (Unix seconds). */
  setWindow(start, end) {
    this.start = start;
    this.end = Math.max(end, start + 1);
    this.schedule();
  }

  /** An answer of GET /api/history: points, or buckets with their initial value. */
  setData(answer) {
    const series = [];
    const numeric = this.kind === "line";
    if (answer.buckets) {
      const half = (answer.bucket_seconds || 0) / 2;
      if (answer.initial && typeof answer.initial[1] === "number") {
        series.push({ t: answer.initial[0], v: answer.initial[1] });
      }
      for (const [t, lo, hi, mean, n] of answer.buckets) {
        if (typeof mean === "number") series.push({ t: t + half, v: mean, lo, hi, n });
      }
    } else {
      for (const [t, v] of answer.points || []) {
        if (!numeric || typeof v === "number") series.push({ t, v });
      }
    }
    this.series = series;
    if (series.length) this.known = true;
    this.cursor = -1;
    this.message = null;
    this.el.dataset.state = "ready";
    this.schedule();
  }

  /** A live value (from an event): appended when it is newer than the last one. */
  append(t, v) {
    if (this.kind === "line" && typeof v !== "number") return;
    const last = this.series[this.series.length - 1];
    if (last && t < last.t) return;
    this.series.push({ t, v });
    this.known = true;
    this.schedule();
  }

  /** Instead of the chart: a note (no history, an error). */
  showMessage(text) {
    this.message = text;
    this.el.dataset.state = "error";
    this.schedule();
  }

  destroy() {
    this.resizer.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  // -- drawing --------------------------------------------------------------------------

  resize() {
    const width = Math.max(240, Math.floor(this.el.clientWidth));
    if (width !== this.width) {
      this.width = width;
      this.schedule();
    }
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  x(t) {
    return PAD.left + ((t - this.start) / (this.end - this.start)) * (this.width - PAD.left - PAD.right);
  }

  timeAt(px) {
    const span = this.width - PAD.left - PAD.right;
    return this.start + ((px - PAD.left) / span) * (this.end - this.start);
  }

  draw() {
    const { width: W, height: H } = this;
    this.svg.setAttribute("width", W);
    this.svg.setAttribute("height", H);
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const x0 = PAD.left;
    const x1 = W - PAD.right;
    const y0 = PAD.top;
    const y1 = H - PAD.bottom;
    for (const [k, v] of Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 })) {
      this.clip.setAttribute(k, v);
    }
    this.axes.replaceChildren();
    this.data.replaceChildren();

    // The time axis.
    const { ticks, step } = timeTicks(this.start, this.end, Math.max(2, Math.floor((x1 - x0) / 90)));
    this.axes.append(s("line", { class: "axis", x1: x0, x2: x1, y1, y2: y1 }));
    let previous = -Infinity;  // the previous label's centre
    for (const t of ticks) {
      const x = this.x(t).toFixed(1);
      if (this.kind === "line") this.axes.append(s("line", { class: "grid", x1: x, x2: x, y1: y0, y2: y1 }));
      this.axes.append(s("line", { class: "tick", x1: x, x2: x, y1, y2: y1 + 4 }));
      // (a label at the right edge ends there rather than being cut in half, and is left
      // out when it would then run into the previous one: labels are about 70 px wide)
      const atEdge = Number(x) > W - 30;
      if (atEdge && Number(x) - 70 < previous + 40) continue;
      previous = Number(x);
      this.axes.append(s("text", { class: "tick-label time-label", x, y: y1 + 16,
        "text-anchor": atEdge ? "end" : "middle" }, timeLabel(t, step)));
    }

    const first = Math.max(0, indexAt(this.series, this.start));
    let last = indexAt(this.series, this.end);
    this.visible = [first, last];
    const inWindow = this.series.slice(first, last + 1).filter((p) => p.t >= this.start).length;
    this.svg.dataset.points = String(inWindow);
    // Nothing at all to show (a variable never reported): a line of text, not a chart.
    this.el.toggleAttribute("data-empty", !this.known && !this.series.length
      && this.message === null && this.el.dataset.state === "ready");
    if (this.message !== null || last < first || !this.series.length) {
      this.axes.append(s("text", { class: "chart-note", x: (x0 + x1) / 2, y: (y0 + y1) / 2,
        "text-anchor": "middle" }, this.message ?? "no values recorded in this time"));
      this.drawCursor();
      return;
    }
    last = Math.min(this.series.length - 1, last + 1);  // the line goes on to the right edge
    if (this.kind === "line") this.drawLine(first, last, x0, y0, y1);
    else this.drawTimeline(first, last, y0, y1);
    this.drawCursor();
  }

  drawLine(first, last, x0, y0, y1) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = first; i <= last; i += 1) {
      const p = this.series[i];
      lo = Math.min(lo, p.lo ?? p.v, p.v);
      hi = Math.max(hi, p.hi ?? p.v, p.v);
    }
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const pad = (hi - lo) * 0.08;
    const ticks = numberTicks(lo - pad, hi + pad, Math.max(2, Math.floor((y1 - y0) / 40)));
    const min = Math.min(lo - pad, ticks[0]);
    const max = Math.max(hi + pad, ticks[ticks.length - 1]);
    const y = (v) => y1 - ((v - min) / (max - min)) * (y1 - y0);
    this.y = y;
    const x1 = this.width - PAD.right;
    this.axes.append(s("line", { class: "axis", x1: x0, x2: x0, y1: y0, y2: y1 }));
    for (const v of ticks) {
      const yy = y(v).toFixed(1);
      this.axes.append(s("line", { class: "grid", x1: x0, x2: x1, y1: yy, y2: yy }));
      this.axes.append(s("text", { class: "tick-label value-label", x: x0 - 6, y: Number(yy) + 4,
        "text-anchor": "end" }, formatValue(v)));
    }
    if (this.unit) {
      this.axes.append(s("text", { class: "unit-label", x: 4, y: y0 + 4 }, this.unit));
    }

    const points = this.series.slice(first, last + 1);
    if (points.some((p) => p.lo !== undefined)) {
      const banded = points.filter((p) => p.lo !== undefined);
      const top = banded.map((p) => `${this.x(p.t).toFixed(1)},${y(p.hi).toFixed(1)}`);
      const bottom = banded.reverse().map((p) => `${this.x(p.t).toFixed(1)},${y(p.lo).toFixed(1)}`);
      this.data.append(s("polygon", { class: "chart-band", points: [...top, ...bottom].join(" ") }));
    }
    let path = "";
    for (const p of points) path += `${path ? "L" : "M"}${this.x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`;
    // The last value holds until now (or the window's end).
    const now = Date.now() / 1000;
    const tail = points[points.length - 1];
    if (tail.t < this.end) path += `L${this.x(Math.min(this.end, Math.max(tail.t, now))).toFixed(1)} ${y(tail.v).toFixed(1)}`;
    this.data.append(s("path", { class: "chart-line", d: path }));
    if (points.length <= MAX_MARKERS) {
      for (const p of points) {
        if (p.t < this.start || p.t > this.end) continue;
        this.data.append(s("circle", { class: "chart-point", cx: this.x(p.t).toFixed(1),
          cy: y(p.v).toFixed(1), r: 2.5 }));
      }
    }
  }

  stateClass(v) {
    if (v === true) return "tl-on";
    if (v === false) return "tl-off";
    if (v === null || v === undefined) return "tl-none";
    let index = this.values.findIndex((x) => x === v);
    if (index < 0) {
      index = 0;
      for (const ch of String(v)) index = (index * 31 + ch.charCodeAt(0)) % 997;
    }
    return `tl-s${index % 8}`;
  }

  drawTimeline(first, last, y0, y1) {
    const barTop = y0 + 4;
    const barHeight = y1 - y0 - 8;
    const now = Date.now() / 1000;
    if (this.isEvent) {
      for (let i = first; i <= last; i += 1) {
        const p = this.series[i];
        if (p.t < this.start || p.t > this.end) continue;
        const marker = s("rect", { class: `tl-event ${this.stateClass(p.v)}`,
          x: (this.x(p.t) - 1.5).toFixed(1), y: barTop, width: 3, height: barHeight });
        marker.append(s("title", {}, `${formatTime(p.t)} ${formatValue(p.v)}`));
        this.data.append(marker);
      }
      return;
    }
    for (let i = first; i <= last; i += 1) {
      const p = this.series[i];
      const next = this.series[i + 1];
      const from = Math.max(p.t, this.start);
      const to = Math.min(next ? next.t : Math.max(now, p.t), this.end);
      if (to <= from) continue;
      const xa = this.x(from);
      const width = Math.max(1, this.x(to) - xa);
      this.data.append(s("rect", { class: `tl-seg ${this.stateClass(p.v)}`, x: xa.toFixed(1),
        y: barTop, width: width.toFixed(1), height: barHeight }));
      const text = formatValue(p.v, this.unit);
      if (width > text.length * 7 + 8) {
        this.data.append(s("text", { class: "tl-label", x: (xa + 4).toFixed(1),
          y: barTop + barHeight / 2 + 4 }, text));
      }
    }
  }

  // -- the readout ----------------------------------------------------------------------

  drawCursor() {
    this.cursorLayer.replaceChildren();
    const p = this.series[this.cursor];
    if (!p || p.t < this.start || p.t > this.end) return;
    const x = this.x(p.t).toFixed(1);
    this.cursorLayer.append(s("line", { class: "cursor-line", x1: x, x2: x, y1: PAD.top,
      y2: this.height - PAD.bottom }));
    let y = PAD.top + 14;
    if (this.kind === "line" && this.y) {
      y = this.y(p.v);
      this.cursorLayer.append(s("circle", { class: "cursor-point", cx: x, cy: y.toFixed(1), r: 4.5 }));
    }
    // The tooltip: the value beside the point, on the side with room for it.
    const tip = s("g", { class: "chart-tip", "aria-hidden": "true" });
    const label = s("text", { y: 0 }, formatValue(p.v, this.unit));
    const box = s("rect", { rx: 3 });
    tip.append(box, label);
    this.cursorLayer.append(tip);
    const width = label.getComputedTextLength() + 10;
    const left = Number(x) + 8 + width > this.width - PAD.right;
    const tx = left ? Number(x) - 8 - width : Number(x) + 8;
    const ty = Math.min(this.height - PAD.bottom - 10, Math.max(PAD.top + 10, y));
    label.setAttribute("x", (tx + 5).toFixed(1));
    label.setAttribute("y", (ty + 4).toFixed(1));
    for (const [k, v] of Object.entries({ x: tx, y: ty - 10, width, height: 20 })) {
      box.setAttribute(k, typeof v === "number" ? v.toFixed(1) : v);
    }
  }

  readAt(index) {
    const p = this.series[index];
    if (!p) return;
    this.cursor = index;
    const withDate = this.end - this.start > 86400 || Date.now() / 1000 - p.t > 86400;
    let text = `${formatTime(p.t, { withDate })}: ${formatValue(p.v, this.unit)}`;
    if (p.lo !== undefined) {
      text = `${formatTime(p.t, { withDate })}: mean ${formatValue(p.v, this.unit)} `
        + `(min ${formatValue(p.lo)}, max ${formatValue(p.hi)}, ${p.n} values)`;
    }
    setText(this.readout, text);
    this.drawCursor();
  }

  /** The point of the window nearest to time t. */
  nearest(t) {
    const i = indexAt(this.series, t);
    const candidates = [i, i + 1].filter((k) => k >= 0 && k < this.series.length
      && this.series[k].t >= this.start && this.series[k].t <= this.end);
    if (!candidates.length) return -1;
    return candidates.reduce((a, b) => (Math.abs(this.series[a].t - t) <= Math.abs(this.series[b].t - t) ? a : b));
  }

  /** The first and last index inside the window. */
  windowIndexes() {
    let a = indexAt(this.series, this.start);
    if (a < 0 || this.series[a].t < this.start) a += 1;
    return [a, indexAt(this.series, this.end)];
  }

  // -- pointer and keyboard -------------------------------------------------------------

  localX(e) {
    return e.clientX - this.svg.getBoundingClientRect().left;
  }

  pointerDown(e) {
    if (e.button !== 0) return;
    const px = this.localX(e);
    if (px < PAD.left || px > this.width - PAD.right) return;
    this.drag = { from: px, to: px };
    this.svg.setPointerCapture(e.pointerId);
  }

  pointerMove(e) {
    const px = Math.min(this.width - PAD.right, Math.max(PAD.left, this.localX(e)));
    if (this.drag) {
      this.drag.to = px;
      const a = Math.min(this.drag.from, px);
      this.selection.setAttribute("x", a.toFixed(1));
      this.selection.setAttribute("y", PAD.top);
      this.selection.setAttribute("width", Math.abs(px - this.drag.from).toFixed(1));
      this.selection.setAttribute("height", this.height - PAD.top - PAD.bottom);
      this.selection.setAttribute("visibility", "visible");
      return;
    }
    const index = this.nearest(this.timeAt(px));
    if (index >= 0 && index !== this.cursor) this.readAt(index);
  }

  pointerUp(e) {
    const drag = this.drag;
    this.endDrag();
    if (!drag || Math.abs(drag.to - drag.from) < MIN_DRAG) return;
    const a = this.timeAt(Math.min(drag.from, drag.to));
    const b = this.timeAt(Math.max(drag.from, drag.to));
    this.onZoom(a, b);
    e.preventDefault();
  }

  endDrag() {
    this.drag = null;
    this.selection.setAttribute("visibility", "hidden");
  }

  wheel(e) {
    e.preventDefault();
    const factor = e.deltaY < 0 ? 0.8 : 1.25;
    const center = this.timeAt(this.localX(e));
    this.zoomAround(center, factor);
  }

  zoomAround(center, factor) {
    this.onZoom(center - (center - this.start) * factor, center + (this.end - center) * factor);
  }

  key(e) {
    const [a, b] = this.windowIndexes();
    let index = this.cursor;
    switch (e.key) {
      case "ArrowLeft": index = index < a || index > b ? b : Math.max(a, index - 1); break;
      case "ArrowRight": index = index < a || index > b ? a : Math.min(b, index + 1); break;
      case "Home": index = a; break;
      case "End": index = b; break;
      case "+":
      case "=": {
        const p = this.series[this.cursor];
        this.zoomAround(p && p.t >= this.start && p.t <= this.end ? p.t : (this.start + this.end) / 2, 0.5);
        e.preventDefault();
        return;
      }
      case "-":
        this.zoomAround((this.start + this.end) / 2, 2);
        e.preventDefault();
        return;
      case "0":
      case "Escape":
        this.onReset();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    if (index >= a && index <= b) this.readAt(index);
  }
}

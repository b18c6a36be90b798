// Small DOM helpers shared by every page: no framework, no innerHTML with data.

/**
 * h("div.card#id", {attrs}, ...children): an element. Attributes: "class", "text",
 * "dataset" (object), "on" ({click: fn}), "aria-*", booleans (true sets, false omits),
 * anything else via setAttribute; properties "value", "checked" set as properties.
 * Children: nodes, strings (text), numbers, arrays, null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || "div");
  for (const part of rest) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else if (part[0] === "#") el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") String(value).split(/\s+/).filter(Boolean).forEach((c) => el.classList.add(c));
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "value" || key === "checked" || key === "selected" || key === "indeterminate") el[key] = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null/false skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of el. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Set an element's text only when it changed (cheap for live updates). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** A value of the registry as text: numbers trimmed, booleans on/off, bytes, NaN. */
export function formatValue(value, unit) {
  let text;
  if (value === null || value === undefined) text = "–";
  else if (typeof value === "boolean") text = value ? "on" : "off";
  else if (typeof value === "number") {
    text = Number.isInteger(value) ? String(value)
      : String(Math.abs(value) >= 100 ? value.toFixed(1) : Number(value.toPrecision(4)));
  } else if (typeof value === "object" && "$bytes" in value) text = `${atob(value.$bytes).length} bytes`;
  else if (typeof value === "object") text = JSON.stringify(value);
  else text = String(value);
  return unit && value !== null && value !== undefined && typeof value !== "boolean" && typeof value !== "object"
    ? `${text} ${unit}` : text;
}

// (made once, when first needed: toLocaleTimeString() builds a formatter at every call,
// which made formatTime the costliest function of a page's first render)
let timeFormat = null;
let dateFormat = null;
let today = [0, -1];  // [start, end) of the local day, in ms

/** A Unix time (seconds) as local time; today: time only. */
export function formatTime(seconds, { withDate } = {}) {
  const ms = seconds * 1000;
  if (seconds === null || seconds === undefined || !Number.isFinite(ms)) return "–";
  const now = Date.now();
  if (now < today[0] || now >= today[1]) {
    const day = new Date(now);
    day.setHours(0, 0, 0, 0);
    const start = day.getTime();
    day.setDate(day.getDate() + 1);
    today = [start, day.getTime()];
  }
  timeFormat ??= new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const time = timeFormat.format(ms);
  if (ms >= today[0] && ms < today[1] && !withDate) return time;
  dateFormat ??= new Intl.DateTimeFormat([]);
  return `${dateFormat.format(ms)} ${time}`;
}

/** A duration in seconds as "3 d 4 h", "5 min 2 s", "12 s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${m} min`;
  if (m) return `${m} min ${sec} s`;
  return `${sec} s`;
}

/** Milliseconds from seconds, to the precision that matters. */
export function formatMs(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const ms = seconds * 1000;
  return `${ms >= 10 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
}

/** fn, called at most once per `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** A message in an element with role="alert" (errors) or a muted note. */
export function message(text, kind = "error") {
  return h(`p.${kind}`, kind === "error" ? { role: "alert" } : {}, text);
}

/** A unique id for label/for pairs. */
let counter = 0;
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/**
 * An action asked for twice: `trigger` shows `box` (holding `yes` and `no`) in its place
 * and moves focus to `focus`; No or Escape puts the trigger back and focuses it. Returns
 * `close()`, which does the same, for the yes handler.
 */
export function confirmation(trigger, box, no, focus) {
  const close = () => {
    box.hidden = true;
    trigger.hidden = false;
    trigger.focus();
  };
  trigger.addEventListener("click", () => {
    trigger.hidden = true;
    box.hidden = false;
    focus.focus();
  });
  no.addEventListener("click", close);
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  return close;
}

/**
 * A page's re-read: `read()` then `apply(result)`, never two at once (a call while one
 * runs is dropped: the running one fetches the newest state anyway), nothing applied once
 * `isClosed()`; a failure is left to the connection indicator and the next round.
 */
export function rereader(read, apply, isClosed) {
  let reading = false;
  return async () => {
    if (reading || isClosed()) return;
    reading = true;
    try {
      const fresh = await read();
      if (!isClosed()) apply(fresh);
    } catch { /* the connection indicator says it; the next round tries again */ } finally {
      reading = false;
    }
  };
}

// The live event stream (/api/events, Server-Sent Events): one EventSource for the whole
// app, shared by every page through topic filters (MQTT syntax).
//
// Reconnecting: the browser's EventSource retries by itself after a network error and
// resumes with Last-Event-ID. When it gives up (a 401 after the daemon restarted: sessions
// live in the daemon's memory), the app is told (onLoginRequired) and shows the login
// page; when the daemon does not answer at all, this module retries with a growing
// delay (1 s ... 10 s) and resumes from the last id it saw. After a `gap` (events lost)
// or any reconnect, onResync callbacks re-read the state.

import { api } from "./api.js";

const EVENT_TYPES = ["variable", "lifecycle", "error", "status", "device"];
const RETRY_MIN = 1000;
const RETRY_MAX = 10000;

/** A matcher for an MQTT-style filter ("variable/#", "status/+/x"): topic -> boolean.
 * Made once per subscription: thousands of events a second go through it. */
function matcher(filter) {
  if (filter === "#") return () => true;
  const f = filter.split("/");
  const hash = f.indexOf("#");
  if (!filter.includes("+")) {
    if (hash === -1) return (topic) => topic === filter;
    const prefix = filter.slice(0, -1);  // "variable/#" -> "variable/"
    const parent = filter.slice(0, -2);  // ... which also matches "variable"
    return (topic) => topic.startsWith(prefix) || topic === parent;
  }
  return (topic) => {
    const t = topic.split("/");
    for (let i = 0; i < f.length; i += 1) {
      if (f[i] === "#") return true;
      if (i >= t.length) return false;
      if (f[i] !== "+" && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  };
}

/** Whether an MQTT-style filter matches a topic. */
export function topicMatches(filter, topic) {
  return matcher(filter)(topic);
}

const subscriptions = new Set();  // {filter, handler}
const resyncs = new Set();
const states = new Set();
let source = null;
let state = "closed";
let lastId = null;
let wanted = false;
let retryTimer = null;
let retryDelay = RETRY_MIN;
let hadOpen = false;
let onLoginRequired = () => {};

function setState(next) {
  if (next === state) return;
  state = next;
  for (const cb of [...states]) {
    try { cb(state); } catch (exc) { console.error(exc); }
  }
}

function resync(reason) {
  for (const cb of [...resyncs]) {
    try { cb(reason); } catch (exc) { console.error(exc); }
  }
}

function dispatch(type, message) {
  if (message.lastEventId) lastId = message.lastEventId;
  let data;
  try {
    data = JSON.parse(message.data);
  } catch {
    return;
  }
  const topic = data.topic || type;
  // (a Set iterates safely while handlers unsubscribe: removed ones are not visited)
  for (const sub of subscriptions) {
    if (sub.matches(topic)) {
      try { sub.handler(data, type); } catch (exc) { console.error(exc); }
    }
  }
}

function open() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (!wanted) return;
  const path = lastId ? `/api/events?last_event_id=${encodeURIComponent(lastId)}` : "/api/events";
  const es = new EventSource(path);
  source = es;
  setState("connecting");
  es.addEventListener("hello", (message) => {
    if (source !== es) return;
    const reconnected = hadOpen;
    hadOpen = true;
    retryDelay = RETRY_MIN;
    setState("open");
    if (reconnected) resync("reconnect");
    // (a first connection resumes from here; a resumed one keeps its own last id)
    try {
      const data = JSON.parse(message.data);
      if (data.id && !lastId) lastId = data.id;
    } catch { /* a hello without data */ }
  });
  // (an `error` listener also hears the stream's own failures, plain Events: skipped)
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (m) => source === es && m instanceof MessageEvent && dispatch(type, m));
  }
  es.addEventListener("gap", () => source === es && resync("gap"));
  es.addEventListener("dropped", () => {
    if (source !== es) return;
    es.close();
    retryLater(0);
  });
  es.addEventListener("closed", () => {
    // The daemon is stopping: the next connection will be refused for a while.
    if (source !== es) return;
    es.close();
    setState("connecting");
    retryLater(RETRY_MIN);
  });
  es.onerror = (ev) => {
    if (source !== es) return;
    // The daemon's own `event: error` (a bus error event) is dispatched as a MessageEvent
    // of type "error", which onerror hears too: it is data, not a failure of the stream.
    if (ev instanceof MessageEvent || es.readyState === EventSource.OPEN) return;
    if (es.readyState === EventSource.CONNECTING) {
      setState("connecting");  // the browser retries (and resumes) by itself
      return;
    }
    // CLOSED: the browser gave up (an HTTP error such as 401, or a bad id): find out why.
    es.close();
    setState("connecting");
    checkAndRetry();
  };
}

async function checkAndRetry() {
  let session;
  try {
    session = await api.session();
  } catch {
    retryLater();  // the daemon does not answer: keep trying
    return;
  }
  if (!wanted) return;
  if (session === null) {
    stop();
    onLoginRequired();
    return;
  }
  // Logged in but the stream was refused (a resume id of an old daemon, ...): start afresh.
  lastId = null;
  retryLater();
}

function retryLater(delay) {
  if (!wanted) return;
  clearTimeout(retryTimer);
  const wait = delay === undefined ? retryDelay : delay;
  retryDelay = Math.min(RETRY_MAX, retryDelay * 2);
  retryTimer = setTimeout(open, wait);
}

/** Start following the stream (after a login). */
export function start() {
  if (wanted) return;
  wanted = true;
  retryDelay = RETRY_MIN;
  open();
}

/** Stop following it (logout, login required). */
export function stop() {
  wanted = false;
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  hadOpen = false;
  setState("closed");
}

export const events = {
  /** handler(event, type) for each event whose topic matches; returns unsubscribe. */
  on(filter, handler) {
    const sub = { filter, handler, matches: matcher(filter) };
    subscriptions.add(sub);
    return () => subscriptions.delete(sub);
  },
  /** cb(reason) after a gap or a reconnect: re-read the state. */
  onResync(cb) {
    resyncs.add(cb);
    return () => resyncs.delete(cb);
  },
  /** cb("open" | "connecting" | "closed"), now and on every change. */
  onState(cb) {
    states.add(cb);
    cb(state);
    return () => states.delete(cb);
  },
  get state() {
    return state;
  },
  /**
   * A separate stream of the messages node `nodeId` sends on `output` (0-based):
   * handler({node, output, time, msg}) for each. onError(text) if it cannot be opened
   * (an unknown node answers 404). Returns close().
   */
  tap(nodeId, output, handler, onError) {
    const spec = encodeURIComponent(`${nodeId}/${output}`);
    // (a topic no event has: this stream carries the tapped messages only)
    const es = new EventSource(`/api/events?tap=${spec}&topics=tap-only%2Fnone`);
    es.addEventListener("wire", (m) => {
      try { handler(JSON.parse(m.data)); } catch (exc) { console.error(exc); }
    });
    es.addEventListener("tap-dropped", () => onError && onError("some messages were dropped (too many)"));
    es.onerror = (ev) => {
      if (ev instanceof MessageEvent) return;  // (an `event: error`: not the stream's failure)
      if (es.readyState === EventSource.CLOSED && onError) onError(`cannot watch ${nodeId}/${output}`);
    };
    return () => es.close();
  },
  /** (app.js) what to do when the session is gone. */
  setLoginRequiredHandler(fn) {
    onLoginRequired = fn;
  },
};

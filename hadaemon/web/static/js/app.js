// The console's shell: a hash router over the page modules (js/pages/*.js), the login
// gate, the navigation, the connection indicator and each page's lifecycle.
//
// Page module interface: `export async function mount(root, params, ctx)` returning a
// cleanup function (or nothing); ctx = {api, events, navigate(hash), setTitle(text)}.
// A page sets data-ready="true" on its root once its first data is on screen.

import { api } from "./api.js";
import { events, start as startEvents, stop as stopEvents } from "./events.js";
import { h, replace } from "./dom.js";

const ROUTES = [
  [/^\/login$/, "login", []],
  [/^\/?$/, "overview", []],
  [/^\/devices$/, "devices", []],
  [/^\/devices\/([^/]+)$/, "device", ["peer_id"]],
  [/^\/flows$/, "flows", []],
  [/^\/services$/, "services", []],
  [/^\/zigbee$/, "zigbee", []],
  [/^\/sysvars$/, "sysvars", []],
  [/^\/log$/, "log", []],
];
const NAV_OF = { device: "devices" };
const PUBLIC = new Set(["login"]);
/** The modules each page imports besides dom.js (tests/console/test_static.py checks this
 * against the pages' import lines): fetched with the page's, not after it. */
export const PAGE_IMPORTS = {
  devices: ["controls.js"],
  device: ["controls.js", "chart.js"],
  flows: ["graph.js"],
};
const pageModules = new Map();  // name -> Promise of the module

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const navToggle = document.getElementById("nav-toggle");
const connection = document.getElementById("connection");
const logoutButton = document.getElementById("logout");

let session = null;       // {kind, name, csrf_token} once logged in
let current = null;       // {name, cleanup, root}
let generation = 0;       // the navigation being mounted (a later one wins)
let returnTo = "#/";      // where the login page goes afterwards
let sessionCheckedAt = -Infinity;  // when the daemon last said who we are (performance.now())

/** A page's module, imported once (a failed import is tried again next time). */
function loadPage(name) {
  let loading = pageModules.get(name);
  if (!loading) {
    for (const file of PAGE_IMPORTS[name] || []) {
      const link = document.createElement("link");
      link.rel = "modulepreload";
      link.href = new URL(`./${file}`, import.meta.url).href;
      document.head.append(link);
    }
    loading = import(`./pages/${name}.js`);
    loading.catch(() => pageModules.delete(name));
    pageModules.set(name, loading);
  }
  return loading;
}

/** The route of a hash: {name, params, path}; unknown paths: {name: null}. */
export function resolve(hash) {
  const raw = (hash || "").replace(/^#/, "");
  const [path, queryText] = raw.split("?");
  for (const [pattern, name, keys] of ROUTES) {
    const found = pattern.exec(path || "/");
    if (found) {
      const params = Object.fromEntries(new URLSearchParams(queryText || ""));
      keys.forEach((key, i) => { params[key] = decodeURIComponent(found[i + 1]); });
      return { name, params, path };
    }
  }
  return { name: null, params: {}, path };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function setTitle(text) {
  document.title = text ? `${text} · hadaemon` : "hadaemon";
}

function setLoggedIn(value) {
  if (!value) everOpen = false;
  document.body.dataset.auth = value ? "in" : "out";
  logoutButton.hidden = !value;
}

function highlight(name) {
  const section = NAV_OF[name] || name;
  for (const link of nav.querySelectorAll("a[data-route]")) {
    if (link.dataset.route === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function leave() {
  if (!current) return;
  const { cleanup } = current;
  current = null;
  if (typeof cleanup === "function") {
    try { cleanup(); } catch (exc) { console.error("cleanup failed", exc); }
  }
}

function focusHeading(root) {
  const heading = root.querySelector("h1") || view;
  if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
  heading.focus({ preventScroll: false });
}

async function route() {
  const mine = ++generation;
  const target = resolve(location.hash);
  closeNav();
  if (target.name !== "login" && !PUBLIC.has(target.name) && session === null) {
    returnTo = location.hash && !location.hash.startsWith("#/login") ? location.hash : "#/";
    location.replace("#/login");
    return;  // (the hashchange mounts the login page)
  }
  leave();
  const root = h("section", { class: "page", "aria-labelledby": "page-title" });
  replace(view, root);
  highlight(target.name);
  if (target.name === null) {
    setTitle("Not found");
    replace(root, h("h1#page-title", "No such page"),
      h("p", `Nothing lives at ${target.path}. `, h("a", { href: "#/" }, "The overview"), " does."));
    root.dataset.ready = "true";
    focusHeading(root);
    return;
  }
  const ctx = { api, events, navigate, setTitle, session, returnTo, loggedIn: onLoggedIn,
    sessionCheckedAt };
  current = { name: target.name, cleanup: null, root };
  let cleanup;
  try {
    const page = await loadPage(target.name);
    if (mine !== generation) return;
    cleanup = await page.mount(root, target.params, ctx);
  } catch (exc) {
    if (mine !== generation) return;
    console.error(exc);
    if (exc && exc.status === 401) return;  // the login page is on its way
    replace(root, h("h1#page-title", "This page failed"),
      h("p.error", { role: "alert" }, exc && exc.message ? exc.message : String(exc)),
      h("p", h("button.btn", { type: "button", on: { click: () => route() } }, "Try again")));
    root.dataset.ready = "true";
  }
  if (mine !== generation) {
    // A later navigation already replaced this page: undo what it set up.
    if (typeof cleanup === "function") cleanup();
    return;
  }
  current.cleanup = cleanup;
  focusHeading(root);
}

/** The login page calls this with the new session. */
function onLoggedIn(newSession) {
  session = newSession;
  setLoggedIn(true);
  startEvents();
  const next = returnTo || "#/";
  returnTo = "#/";
  navigate(next);
}

function loginRequired() {
  if (session === null && resolve(location.hash).name === "login") return;
  sessionCheckedAt = performance.now();  // (a 401 login_required just said: nobody)
  session = null;
  setLoggedIn(false);
  stopEvents();
  const hash = location.hash;
  if (!hash.startsWith("#/login")) returnTo = hash || "#/";
  navigate("#/login");
}

function closeNav() {
  navToggle.setAttribute("aria-expanded", "false");
  nav.classList.remove("open");
}

const STATE_TEXT = { open: "Live", connecting: "Reconnecting…", closed: "Not connected" };
let everOpen = false;

function showConnection(state) {
  everOpen = everOpen || state === "open";
  connection.dataset.state = state;
  connection.textContent = session === null && state === "closed" ? "Logged out"
    : state === "connecting" && !everOpen ? "Connecting…" : STATE_TEXT[state];
  connection.title = state === "open" ? "following the daemon's live events"
    : state === "connecting" ? "the daemon does not answer: trying again" : "";
}

async function boot() {
  // The page asked for is fetched beside the session check, not after it (a fresh tab:
  // index.html -> app.js -> [session | page module and its imports] -> the page's data).
  const first = resolve(location.hash).name;
  if (first !== null) loadPage(first).catch(() => {});
  api.setLoginRequiredHandler(loginRequired);
  events.setLoginRequiredHandler(loginRequired);
  events.onState(showConnection);
  navToggle.addEventListener("click", () => {
    const open = navToggle.getAttribute("aria-expanded") !== "true";
    navToggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  logoutButton.addEventListener("click", async () => {
    try { await api.logout(); } catch (exc) { console.error(exc); }
    session = null;
    setLoggedIn(false);
    stopEvents();
    returnTo = "#/";
    navigate("#/login");
  });
  // The skip link jumps to the page's heading without changing the route.
  document.querySelector(".skip")?.addEventListener("click", (event) => {
    event.preventDefault();
    focusHeading(view);
  });
  window.addEventListener("hashchange", (event) => {
    // an in-page anchor ("#view"), not a route: go back to the page's route, unmounted
    if (location.hash && !location.hash.startsWith("#/")) {
      history.replaceState(null, "", event.oldURL);
      return;
    }
    route();
  });
  // The first look: a session already (a reload), or the login page.
  for (let attempt = 0; ; attempt += 1) {
    try {
      session = await api.session();
      sessionCheckedAt = performance.now();
      break;
    } catch (exc) {
      // The daemon does not answer (yet): say so and keep trying.
      connection.dataset.state = "connecting";
      connection.textContent = "Daemon not answering…";
      await new Promise((resolveWait) => setTimeout(resolveWait, Math.min(10000, 1000 * (attempt + 1))));
    }
  }
  setLoggedIn(session !== null);
  if (session !== null) startEvents();
  else showConnection("closed");
  await route();
}

boot();

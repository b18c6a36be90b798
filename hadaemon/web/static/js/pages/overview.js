// The overview: the daemon (name, uptime, versions), every plugin and its state, the
// counts of each world, the reactor's lag, and the recent errors. Live: re-read every
// 5 s and at once on a lifecycle or error event (a plugin started, failed, stopped).

import { h, replace, setText, formatDuration, formatMs, formatTime, debounce } from "../dom.js";

const REFRESH_MS = 5000;

function plugins(status) {
  const rows = status.plugins.map((p) => h("tr", { dataset: { plugin: p.name } },
    h("th", { scope: "row" }, p.name),
    h("td", h("span.badge", { dataset: { state: p.state } }, p.state),
      p.error ? h("div.error.plugin-error", String(p.error)) : null)));
  return h("div.table-wrap", h("table.table#plugins",
    h("caption.visually-hidden", "Plugins and their state"),
    h("thead", h("tr", h("th", { scope: "col" }, "Plugin"), h("th", { scope: "col" }, "State"))),
    h("tbody", rows)));
}

const COUNT_LABELS = [
  ["devices", "Devices", "#/devices"],
  ["variables", "Variables", "#/devices"],
  ["system_variables", "System variables", "#/sysvars"],
  ["nodes", "Nodes", "#/flows"],
  ["services", "Services", "#/services"],
  ["event_clients", "Event clients", null],
];

function counts(status) {
  return h("dl.facts#counts", COUNT_LABELS.flatMap(([key, label, link]) => [
    h("dt", link ? h("a", { href: link }, label) : label),
    h("dd", { dataset: { count: key } }, String(status.counts[key] ?? "–")),
  ]));
}

function lag(status) {
  const reactor = status.reactor || {};
  const figures = reactor.lag || {};
  const watchdog = reactor.watchdog;
  const items = [
    ["last", figures.last], ["p50", figures.p50], ["p99", figures.p99], ["max", figures.max],
  ];
  const blocked = watchdog && watchdog.blocked && watchdog.blocked.length
    ? h("div", h("h3", "What blocked it lately"),
      h("ul", watchdog.blocked.slice().reverse().map((b) => h("li",
        h("code", b.component), ` ${formatMs(b.seconds)}`, b.ongoing ? " (still blocking)" : ""))))
    : null;
  return [
    h("dl.facts#lag", items.flatMap(([k, v]) => [h("dt", k), h("dd", { dataset: { lag: k } }, formatMs(v))])),
    h("p.muted", watchdog
      ? `Over the last ${figures.samples ?? 0} ticks (one every ${formatMs(figures.interval)}); `
        + `the watchdog reports anything blocking longer than ${formatMs(watchdog.threshold)}.`
      : "The watchdog is off ([watchdog] enabled = false): no figures."),
    blocked,
  ];
}

// A plugin that failed before the web plugin started (the start order puts most plugins
// first) is not among the errors the web plugin heard: its failure, from the plugin
// list, is shown first, "at start".
function failedAtStart(status) {
  const heard = new Set((status.recent_errors || []).map((e) => e.source));
  return status.plugins
    .filter((p) => p.state === "failed" && p.error && !heard.has(`plugin:${p.name}`))
    .map((p) => ({ source: `plugin:${p.name}`, message: String(p.error), level_name: "error",
      atStart: true }));
}

function errors(status) {
  const list = (status.recent_errors || []).slice(-20).reverse();
  list.push(...failedAtStart(status));
  if (!list.length) return h("p.muted#errors", "No errors since the daemon started.");
  return h("ul.errors#errors", list.map((e) => h("li",
    h("span.badge.bad", e.level_name || "error"), " ",
    e.atStart ? h("span.muted", "at start")
      : h("time", { datetime: new Date((e.time || e.timestamp || 0) * 1000).toISOString() },
        formatTime(e.time || e.timestamp)), " ",
    h("strong", e.source || e.topic || ""), " ",
    h("span", e.message || e.text || JSON.stringify(e)))));
}

// The three worlds, each from its own endpoint (404 not_enabled / 503 not_running when
// its plugin is off or failed).
const WORLDS = [
  {
    key: "nodes", title: "Node-BLUE nodes", path: "/api/nodes", link: "#/flows",
    summary(data) {
      const nodes = data.nodes || [];
      const running = nodes.filter((n) => n.process === "running").length;
      const looping = nodes.filter((n) => n.crash_loop).length;
      return {
        ok: running === nodes.length && !looping,
        text: `${running} of ${nodes.length} running`
          + (looping ? `, ${looping} in a crash loop` : ""),
      };
    },
  },
  {
    key: "zigbee", title: "zigbee2mqtt", path: "/api/zigbee", link: "#/zigbee",
    summary(data) {
      const bridge = !data.started ? "not started" : data.online ? "bridge online" : "bridge offline";
      return {
        ok: Boolean(data.started && data.online),
        text: `${bridge}, ${data.devices ?? 0} devices`
          + (data.permit_join ? ", permit join open" : ""),
      };
    },
  },
  {
    key: "services", title: "microServiceBus services", path: "/api/services", link: "#/services",
    summary(data) {
      const services = data.services || [];
      const running = services.filter((x) => x.state === "running").length;
      return { ok: running === services.length, text: `${running} of ${services.length} running` };
    },
  },
];

async function readWorld(ctx, world) {
  try {
    return { world, ...world.summary(await ctx.api.get(world.path)) };
  } catch (exc) {
    if (exc.status === 401) throw exc;
    const text = exc.code === "not_enabled" ? "not enabled"
      : exc.code === "not_running" ? "not running" : `unknown: ${exc.message}`;
    return { world, ok: exc.code === "not_enabled" ? null : false, text };
  }
}

function worlds(results) {
  return h("ul.worlds#worlds", results.map(({ world, ok, text }) => h("li",
    { dataset: { world: world.key } },
    h("a", { href: world.link }, world.title), " ",
    h("span.badge", { class: ok === null ? "muted" : ok ? "ok" : "bad" },
      ok === null ? "off" : ok ? "ok" : "attention"), " ",
    h("span.world-text", text))));
}

export async function mount(root, params, ctx) {
  ctx.setTitle("Overview");
  const heading = h("h1#page-title", "Overview");
  const summary = h("p.muted#daemon-summary", "Reading the daemon's status…");
  const body = h("div");
  const updated = h("p.muted.small", { "aria-live": "off" });
  replace(root, heading, summary, body, updated);

  let status = null;
  let worldResults = [];
  let timer = null;
  let uptimeTimer = null;
  let readAt = 0;
  let stopped = false;
  let reading = null;

  // The focused element (a link of the counts), found again after a re-render by its
  // id or href, so that reading the page with the keyboard is not reset every 5 s.
  function focusKey() {
    const el = document.activeElement;
    if (!el || !body.contains(el)) return null;
    return el.id ? `#${el.id}` : el.getAttribute("href") ? `a[href="${el.getAttribute("href")}"]` : null;
  }

  function render() {
    const focused = focusKey();
    const running = status.plugins.filter((p) => p.state === "running").length;
    replace(summary,
      h("strong", status.name), " · up ", h("span#uptime", formatDuration(status.uptime)),
      ` · hadaemon ${status.versions.hadaemon}, Python ${status.versions.python}, `
      + `Twisted ${status.versions.twisted} · `,
      h("span", { class: running === status.plugins.length ? "ok" : "warn" },
        `${running} of ${status.plugins.length} plugins running`));
    replace(body, h("div.cards",
      h("section.card", { "aria-labelledby": "h-worlds" }, h("h2#h-worlds", "Worlds"), worlds(worldResults)),
      h("section.card", { "aria-labelledby": "h-plugins" }, h("h2#h-plugins", "Plugins"), plugins(status)),
      h("section.card", { "aria-labelledby": "h-counts" }, h("h2#h-counts", "Counts"), counts(status)),
      h("section.card", { "aria-labelledby": "h-lag" }, h("h2#h-lag", "Reactor lag"), lag(status))),
    h("section.card", { "aria-labelledby": "h-errors" }, h("h2#h-errors", "Recent errors"), errors(status)));
    setText(updated, `Updated ${formatTime(Date.now() / 1000)}`);
    if (focused) body.querySelector(focused)?.focus();
  }

  async function read() {
    if (reading) return reading;
    reading = (async () => {
      try {
        const [next, ...results] = await Promise.all([
          ctx.api.get("/api/status"), ...WORLDS.map((world) => readWorld(ctx, world))]);
        status = next;
        worldResults = results;
        readAt = performance.now();
        if (stopped) return;
        render();
        root.dataset.ready = "true";
      } catch (exc) {
        if (stopped || exc.status === 401) return;
        replace(updated, h("span.error", { role: "alert" }, `Cannot read the status: ${exc.message}`));
      } finally {
        reading = null;
      }
    })();
    return reading;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await read();
      if (!stopped) schedule();
    }, REFRESH_MS);
  }

  const soon = debounce(read, 250);
  await read();
  schedule();
  // the uptime ticks between reads
  uptimeTimer = setInterval(() => {
    const el = root.querySelector("#uptime");
    if (el && status) setText(el, formatDuration(status.uptime + (performance.now() - readAt) / 1000));
  }, 1000);
  const offs = [
    ctx.events.on("lifecycle/#", soon),
    ctx.events.on("error/#", soon),
    ctx.events.onResync(soon),
  ];
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(uptimeTimer);
    soon.cancel();
    offs.forEach((off) => off());
  };
}

// Services: each microServiceBus-style service's state, starts, restarts and failures,
// its recent lines (GET /api/services/{id}: the last 50, its Debug lines among them),
// and a restart button that asks first and shows what came of it. Read again when a
// service's lifecycle or error events arrive, and every few seconds for new lines.

import { h, replace, setText, formatTime, message, confirmation, rereader } from "../dom.js";

const REFRESH_MS = 5000;
const LEVELS = new Set(["debug", "info", "warn", "error", "critical"]);

export async function mount(root, params, ctx) {
  const { api, events } = ctx;
  ctx.setTitle("Services");
  const heading = h("h1#page-title", "Services");
  replace(root, heading, h("p.muted", "Loading the services…"));

  const cards = new Map();   // service id -> {card, update(info)}
  let closed = false;
  const offs = [];
  const list = h("div.services");

  async function readAll() {
    const answer = await api.get("/api/services");
    // One by one: each for its 50 lines (a handful of services; failures keep the 5).
    const details = await Promise.all(answer.services.map(
      (s) => api.get(`/api/services/${encodeURIComponent(s.id)}`).catch(() => s)));
    return details;
  }

  async function refreshOne(id) {
    try {
      const info = await api.get(`/api/services/${encodeURIComponent(id)}`);
      if (!closed && cards.has(id)) cards.get(id).update(info);
    } catch { /* the next round tries again */ }
  }

  function render(services) {
    const seen = new Set();
    for (const info of services) {
      seen.add(info.id);
      if (!cards.has(info.id)) {
        const card = serviceCard(info, api);
        cards.set(info.id, card);
        list.append(card.card);
      } else {
        cards.get(info.id).update(info);
      }
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.card.remove();
        cards.delete(id);
      }
    }
  }

  let services;
  try {
    services = await readAll();
  } catch (exc) {
    if (exc.status === 401) throw exc;
    const why = exc.code === "not_enabled"
      ? "The services plugin is not enabled: add \"services\" to [daemon].plugins."
      : `The services cannot be read: ${exc.message}`;
    replace(root, heading, message(why));
    root.dataset.ready = "true";
    return undefined;
  }
  render(services);
  replace(root, heading,
    h("p.muted", "Services run in the daemon (docs/services.md). Their lines are the newest "
      + "first; restarting one runs its Stop, then its Start."),
    services.length ? list
      : h("p.muted", "No services are configured ([services.service.<Name>])."));
  root.dataset.ready = "true";

  const pending = new Map();
  const soon = (id) => {
    clearTimeout(pending.get(id));
    pending.set(id, setTimeout(() => { pending.delete(id); refreshOne(id); }, 250));
  };
  // lifecycle/service:<id>/<state> and error/service:<id>/<level>
  const onEvent = (event) => {
    const topic = String(event.topic || "");
    const part = topic.split("/")[1] || "";
    if (part.startsWith("service:")) soon(part.slice("service:".length));
  };
  offs.push(events.on("lifecycle/#", onEvent), events.on("error/#", onEvent));
  const reread = rereader(readAll, render, () => closed);
  offs.push(events.onResync(reread));
  const timer = setInterval(reread, REFRESH_MS);

  return () => {
    closed = true;
    clearInterval(timer);
    for (const t of pending.values()) clearTimeout(t);
    offs.forEach((off) => off());
  };
}

function serviceCard(info, api) {
  const id = info.id;
  const titleId = `service-${id}`;
  const state = h("span.badge.service-state", { role: "status" });
  const counts = h("dl.facts");
  // (not read out as they come: the list is redrawn every few seconds)
  const lines = h("ol.service-lines", { role: "log", "aria-live": "off",
    "aria-label": `Recent lines of ${info.name}, newest first` });
  const result = h("p.service-result", { role: "status" });
  const restart = h("button.btn.service-restart", { type: "button" }, "Restart");
  const confirmBox = h("div.confirm", { role: "group", "aria-label": `Restart ${info.name}?`,
    hidden: true });
  const yes = h("button.btn.btn-primary.service-confirm", { type: "button" }, "Restart now");
  const no = h("button.btn", { type: "button" }, "Cancel");
  replace(confirmBox, h("span", `Restart ${info.name}? Its Stop runs, then its Start.`), yes, no);

  const close = confirmation(restart, confirmBox, no, yes);
  yes.addEventListener("click", async () => {
    close();
    restart.disabled = true;
    setText(restart, "Restarting…");
    result.className = "service-result pending";
    setText(result, `Restarting ${info.name}…`);
    try {
      const answer = await api.post(`/api/services/${encodeURIComponent(id)}/restart`);
      update(answer);
      result.className = "service-result ok";
      setText(result, `Restarted at ${formatTime(Date.now() / 1000)}: ${answer.state}, `
        + `${answer.starts} start(s).`);
    } catch (exc) {
      result.className = "service-result error";
      setText(result, `The restart failed: ${exc.message}`);
    } finally {
      restart.disabled = false;
      setText(restart, "Restart");
      restart.focus();
    }
  });

  const card = h("article.card.service", { "aria-labelledby": titleId, dataset: { service: id } },
    h("div.service-head", h("h2", { id: titleId }, info.name), state),
    counts,
    h("div.service-actions", restart, confirmBox),
    result,
    h("h3", "Recent lines"),
    lines);

  let lastLines = "";
  function update(s) {
    info = { ...info, ...s };
    state.dataset.state = s.state;
    setText(state, s.state);
    replace(counts,
      h("dt", "Id"), h("dd", id),
      h("dt", "Starts"), h("dd.service-starts", String(s.starts)),
      h("dt", "Restarts"), h("dd.service-restarts", String(s.restarts)),
      h("dt", "Failures"), h("dd.service-failures", String(s.failures)),
      h("dt", "Running calls"), h("dd", String(s.running_calls)));
    const recent = s.recent || [];
    const key = recent.length ? `${recent.length}:${recent[recent.length - 1].time}` : "0";
    if (key === lastLines) return;
    lastLines = key;
    if (!recent.length) {
      replace(lines, h("li.muted", "No lines yet."));
      return;
    }
    replace(lines, [...recent].reverse().map((line) => {
      const level = LEVELS.has(line.level) ? line.level : "info";
      return h(`li.log-line.level-${level}`,
        h("time", { datetime: new Date(line.time * 1000).toISOString() }, formatTime(line.time)),
        h("span.level", line.level), h("span.text", line.message));
    }));
  }
  update(info);
  return { card, update };
}

// Zigbee: the zigbee2mqtt bridge's state (GET /api/zigbee, read again every few seconds
// and when its devices change) and permit join for N seconds with a live countdown
// (POST /api/zigbee/permit_join; 0 closes it).

import { h, replace, setText, message, uid, rereader } from "../dom.js";

const REFRESH_MS = 3000;

export async function mount(root, params, ctx) {
  const { api, events } = ctx;
  ctx.setTitle("Zigbee");
  const heading = h("h1#page-title", "Zigbee");
  replace(root, heading, h("p.muted", "Loading the bridge…"));

  let bridge;
  try {
    bridge = await api.get("/api/zigbee");
  } catch (exc) {
    if (exc.status === 401) throw exc;
    const why = exc.code === "not_enabled"
      ? "The zigbee2mqtt adapter is not enabled: add \"zigbee2mqtt\" (after \"mqtt\") to "
        + "[daemon].plugins."
      : `The bridge cannot be read: ${exc.message}`;
    replace(root, heading, message(why));
    root.dataset.ready = "true";
    return undefined;
  }

  let closed = false;
  let endsAt = null;          // ms timestamp the join window closes (known from our request)
  let requestedAt = 0;
  const facts = h("dl.facts.bridge-facts");
  const joinState = h("p.permit-state", { role: "status" });
  const countdown = h("p.permit-countdown", { role: "timer", "aria-live": "off" });
  const problem = h("p.error", { role: "alert", hidden: true });
  const secondsId = uid("permit-seconds");
  const seconds = h("input", { id: secondsId, type: "number", min: 1, max: 254, step: 1,
    value: "60", required: true, inputmode: "numeric" });
  const open = h("button.btn.btn-primary.permit-open", { type: "submit" }, "Permit join");
  const close = h("button.btn.permit-close", { type: "button", disabled: true }, "Close now");
  const form = h("form.permit-form", { "aria-label": "Permit join", novalidate: true },
    h("label", { for: secondsId }, "Seconds (1 to 254)", seconds), open, close);

  function yesNo(v) { return v ? "yes" : "no"; }

  function show(b) {
    bridge = b;
    replace(facts,
      h("dt", "Started"), h("dd.bridge-started", yesNo(b.started)),
      h("dt", "Ready"), h("dd.bridge-ready", yesNo(b.ready)),
      h("dt", "Online"), h("dd.bridge-online", h(`span.badge.${b.online ? "ok" : "bad"}`,
        b.online ? "online" : "offline")),
      h("dt", "Version"), h("dd.bridge-version", b.version || "–"),
      h("dt", "Base topic"), h("dd", b.base_topic || "–"),
      h("dt", "Devices"), h("dd.bridge-devices", String(b.devices ?? "–")),
      h("dt", "Groups"), h("dd.bridge-groups", String(b.groups ?? "–")),
      h("dt", "Messages received"), h("dd", String(b.messages_received ?? "–")));
    // The bridge's word wins, except just after our own request (its state may lag).
    const fresh = Date.now() - requestedAt < 2500;
    if (!b.permit_join && !fresh) endsAt = null;
    if (b.permit_join && endsAt === null && typeof b.permit_join_timeout === "number") {
      endsAt = Date.now() + b.permit_join_timeout * 1000;
    }
    tick();
  }

  function tick() {
    const isOpen = endsAt !== null ? endsAt > Date.now() : Boolean(bridge.permit_join);
    root.dataset.permitJoin = isOpen ? "open" : "closed";
    close.disabled = !isOpen;
    if (!isOpen) {
      setText(joinState, "Permit join is closed: no new device can join.");
      setText(countdown, "");
      delete countdown.dataset.remaining;
      return;
    }
    setText(joinState, "Permit join is open: new devices may join.");
    if (endsAt === null) {
      setText(countdown, "Time left: unknown (opened elsewhere).");
      delete countdown.dataset.remaining;
      return;
    }
    const left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    countdown.dataset.remaining = String(left);
    setText(countdown, `Closes in ${left} s.`);
  }

  async function permit(n) {
    problem.hidden = true;
    open.disabled = true;
    close.disabled = true;
    try {
      const answer = await api.post("/api/zigbee/permit_join", { seconds: n });
      requestedAt = Date.now();
      endsAt = n > 0 ? Date.now() + n * 1000 : null;
      if (!closed) show(answer.bridge);
    } catch (exc) {
      problem.hidden = false;
      setText(problem, `zigbee2mqtt did not do it: ${exc.message}`);
      tick();
    } finally {
      open.disabled = false;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const n = Number(seconds.value);
    if (!Number.isInteger(n) || n < 1 || n > 254) {
      problem.hidden = false;
      setText(problem, "Seconds: a whole number from 1 to 254.");
      seconds.focus();
      return;
    }
    permit(n);
  });
  close.addEventListener("click", () => permit(0));

  show(bridge);
  replace(root, heading,
    h("section.card.bridge", { "aria-labelledby": "bridge-title" },
      h("h2#bridge-title", "Bridge"), facts),
    h("section.card.permit", { "aria-labelledby": "permit-title" },
      h("h2#permit-title", "Permit join"),
      h("p.muted", "Lets new devices join the network for a while (zigbee2mqtt's permit join)."),
      joinState, countdown, form, problem));
  root.dataset.ready = "true";

  const reread = rereader(() => api.get("/api/zigbee"), show, () => closed);
  let soon = null;
  const offs = [
    events.on("device/zigbee2mqtt/#", () => {
      clearTimeout(soon);
      soon = setTimeout(reread, 300);
    }),
    events.onResync(reread),
  ];
  const ticker = setInterval(tick, 1000);
  const poller = setInterval(reread, REFRESH_MS);

  return () => {
    closed = true;
    clearInterval(ticker);
    clearInterval(poller);
    clearTimeout(soon);
    offs.forEach((off) => off());
  };
}

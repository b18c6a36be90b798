// The log: the daemon's recent lines (GET /api/log), followed live by polling once a
// second (log lines are not events of the stream), filtered by lowest level and by
// source (a log namespace and its children), with pause.

import { h, replace, setText, formatTime, debounce, uid } from "../dom.js";

const POLL_MS = 1000;
const KEEP = 1000;          // lines kept on screen
const SLICE = 60;           // lines drawn in one task
const LEVELS = ["debug", "info", "warn", "error", "critical"];

function key(line) {
  return `${line.time}|${line.source}|${line.level}|${line.message}`;
}

export async function mount(root, params, ctx) {
  ctx.setTitle("Log");
  const levelId = uid("level");
  const sourceId = uid("source");
  const level = h("select", { id: levelId, name: "level" },
    LEVELS.map((l) => h("option", { value: l, selected: l === (params.level || "info") }, l)));
  const sources = h("datalist", { id: `${sourceId}-list` });
  const source = h("input", {
    id: sourceId, name: "source", type: "search", list: `${sourceId}-list`,
    placeholder: "hadaemon.nodes", value: params.source || "", autocomplete: "off", spellcheck: "false",
  });
  const pause = h("button.btn#log-pause", { type: "button", "aria-pressed": "false" }, "Pause");
  const state = h("span.muted#log-state", { role: "status", "aria-live": "polite" }, "");
  const tbody = h("tbody");
  const table = h("table.table.log-table#log",
    h("caption.visually-hidden", "Log lines, oldest first"),
    h("thead", h("tr",
      h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Level"),
      h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Message"))),
    tbody);
  const scroller = h("div.table-wrap.log-scroll", { tabindex: "0", role: "region", "aria-label": "Log lines" }, table);
  const empty = h("p.muted#log-empty", "No lines match.");
  replace(root,
    h("h1#page-title", "Log"),
    h("form.toolbar", { role: "search", "aria-label": "Filter the log", on: { submit: (e) => e.preventDefault() } },
      h("label", { for: levelId }, "Lowest level", level),
      h("label", { for: sourceId }, "Source", source, sources),
      pause, state),
    scroller, empty);

  let paused = false;
  let stopped = false;
  let timer = null;
  let seen = new Set();      // keys of the lines on screen
  let newest = 0;            // the newest line's time
  let inFlight = false;
  let missed = 0;
  let generation = 0;     // which first read a backfill belongs to
  const known = new Set();

  function follow() {
    return scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40;
  }

  function row(line) {
    return h("tr", { dataset: { level: line.level, key: key(line) } },
      h("td.mono.nowrap", h("time", { datetime: new Date(line.time * 1000).toISOString() },
        formatTime(line.time))),
      h("td", h("span.level", { dataset: { level: line.level } }, line.level)),
      h("td.mono.source", line.source),
      h("td.message", line.message));
  }

  function addSources(lines) {
    let added = false;
    for (const line of lines) {
      if (line.source && !known.has(line.source)) {
        known.add(line.source);
        added = true;
      }
    }
    if (added) replace(sources, [...known].sort().map((s) => h("option", { value: s })));
  }

  function rows(lines) {
    const fragment = document.createDocumentFragment();
    lines.forEach((line) => fragment.append(row(line)));
    return fragment;
  }

  function backfill(older, gen) {
    if (stopped || gen !== generation || !older.length) return;
    requestAnimationFrame(() => {
      if (stopped || gen !== generation) return;
      const atBottom = follow();
      const from = Math.max(0, older.length - SLICE);
      tbody.insertBefore(rows(older.slice(from)), tbody.firstChild);
      if (atBottom) scroller.scrollTop = scroller.scrollHeight;
      backfill(older.slice(0, from), gen);
    });
  }

  async function poll(reset) {
    if (inFlight) return;
    inFlight = true;
    try {
      const answer = await ctx.api.get("/api/log", {
        level: level.value, source: source.value.trim(), limit: reset ? 500 : 200,
      });
      if (stopped) return;
      const lines = answer.lines || [];
      addSources(lines);
      if (reset) {
        seen = new Set();
        newest = 0;
        generation += 1;   // a backfill of the previous read stops
        tbody.replaceChildren();
      }
      const atBottom = follow();
      const fresh = [];
      for (const line of lines) {
        const k = key(line);
        if (line.time < newest || seen.has(k)) continue;
        seen.add(k);
        fresh.push(line);
      }
      if (fresh.length) {
        newest = Math.max(newest, fresh[fresh.length - 1].time || 0);
        // The newest lines first, in one go; older ones of a first read (up to 500) go
        // in above them a slice per frame, so no task blocks the page for long.
        const now = reset ? fresh.slice(-SLICE) : fresh;
        tbody.append(rows(now));
        if (reset && fresh.length > SLICE) backfill(fresh.slice(0, -SLICE), generation);
        while (tbody.rows.length > KEEP) {
          const first = tbody.rows[0];
          seen.delete(first.dataset.key);
          first.remove();
        }
        if (atBottom || reset) scroller.scrollTop = scroller.scrollHeight;
      }
      // keep `seen` to the lines of the newest second or so (older keys cannot recur)
      if (seen.size > 5000) seen = new Set(lines.map(key));
      empty.hidden = tbody.rows.length > 0;
      if (!paused) setText(state, "Following");
      root.dataset.ready = "true";
    } catch (exc) {
      if (stopped || exc.status === 401) return;
      if (exc.status === 400) setText(state, exc.message);
      else { missed += 1; setText(state, `The daemon does not answer: trying again (${missed})`); }
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (stopped || paused) return;
    timer = setTimeout(async () => {
      await poll(false);
      schedule();
    }, POLL_MS);
  }

  const refilter = debounce(async () => {
    await poll(true);
    schedule();
  }, 300);
  level.addEventListener("change", refilter);
  source.addEventListener("input", refilter);

  pause.addEventListener("click", async () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    setText(pause, paused ? "Resume" : "Pause");
    if (paused) {
      clearTimeout(timer);
      setText(state, "Paused: new lines wait");
    } else {
      setText(state, "Following");
      await poll(false);
      schedule();
    }
  });

  await poll(true);
  schedule();
  const offResync = ctx.events.onResync(() => { if (!paused) poll(false); });
  return () => {
    stopped = true;
    clearTimeout(timer);
    refilter.cancel();
    offResync();
  };
}

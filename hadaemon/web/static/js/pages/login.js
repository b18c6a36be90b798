// The login page: the admin password for a session (POST /api/login); the session's CSRF
// token is kept by api.js. A daemon with no password set says so in its 401
// login_required ("password_set": false, api.passwordSet): the page then says at once how
// to set one, and turns into the form by itself once the daemon has one (it must restart
// for that). A login's 403 no_password_set says the same.

import { h, replace } from "../dom.js";

const HOW_TO_SET = [
  "Stop the daemon and run ",
  h("code", "hadaemon passwd --config etc/hadaemon.toml"),
  " (with your config file; it asks for the password twice), then start it again; or ",
  "start the daemon with the environment variable ",
  h("code", "HADAEMON_ADMIN_PASSWORD"),
  " set to the password (containers).",
];
const RECHECK_MS = 5000;  // while no password is set: has the daemon got one now?

function howToSet() {
  return h("p", HOW_TO_SET.map((part) => (part instanceof Node ? part.cloneNode(true) : part)));
}

export async function mount(root, params, ctx) {
  ctx.setTitle("Log in");
  let timer = null;
  let recheck = null;
  let alive = true;
  let shown = null;  // "form" | "none"

  // Already logged in (a reload of #/login, or back from another tab): go on. The same
  // answer says whether a password is set. When the shell has just asked (a fresh tab)
  // nobody asks again; when it asked a while ago, the page is drawn at once from what it
  // heard and the check runs beside it.
  const fresh = performance.now() - (ctx.sessionCheckedAt ?? -Infinity) < 2000;
  const check = fresh && ctx.api.passwordSet !== null ? Promise.resolve(null)
    : ctx.api.session().catch(() => null);
  if (ctx.api.passwordSet === null) {
    const existing = await check;
    if (!alive) return undefined;
    if (existing) {
      ctx.loggedIn(existing);
      return undefined;
    }
  } else {
    check.then((existing) => {
      if (!alive) return;
      if (existing) ctx.loggedIn(existing);
      else draw();
    });
  }

  const status = h("div#login-status", { role: "alert", "aria-live": "assertive" });
  const input = h("input#password", {
    type: "password", name: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button.btn.btn-primary", { type: "submit" }, "Log in");
  const form = h("form", { "aria-labelledby": "page-title", novalidate: true },
    // (for password managers: the account is always "admin")
    h("input", { type: "text", name: "username", autocomplete: "username", value: "admin",
      hidden: true, "aria-hidden": "true", tabindex: "-1" }),
    h("div.field", h("label", { for: "password" }, "Admin password"), input),
    submit,
    status);
  const card = h("div.card.login");
  replace(root, card);

  /** The form, or the no-password page: whichever the daemon's last answer calls for. */
  function draw() {
    const want = ctx.api.passwordSet === false ? "none" : "form";
    if (want === shown) return;
    const focus = shown !== null;  // (the first time, the shell focuses the heading)
    shown = want;
    if (want === "none") showNoPassword(null, focus);
    else showForm(focus);
  }

  function showForm(focus) {
    clearInterval(recheck);
    recheck = null;
    ctx.setTitle("Log in");
    delete root.dataset.noPassword;
    replace(card, h("h1#page-title", "Log in to hadaemon"), form);
    if (focus) {
      const heading = card.querySelector("h1");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function showNoPassword(messageText, focus = true) {
    shown = "none";
    ctx.setTitle("No password set");
    replace(card,
      h("h1#page-title", { tabindex: "-1" }, "No admin password is set yet"),
      h("p", "The console needs the admin password, and this daemon has none yet."),
      howToSet(),
      messageText ? h("p.muted", "The daemon says: ", messageText) : null,
      h("p.muted", "This page turns into the login form by itself once the daemon has one."),
      h("p", h("button.btn", { type: "button", on: { click: () => location.reload() } },
        "I have set one: try again")));
    root.dataset.noPassword = "true";
    if (focus) card.querySelector("h1").focus();
    if (recheck === null) {
      recheck = setInterval(async () => {
        const existing = await ctx.api.session().catch(() => null);
        if (!alive) return;
        if (existing) ctx.loggedIn(existing);
        else draw();
      }, RECHECK_MS);
    }
  }

  draw();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = input.value;
    if (!password) {
      replace(status, h("p.error", "Enter the admin password."));
      input.focus();
      return;
    }
    submit.disabled = true;
    input.setAttribute("aria-busy", "true");
    replace(status, h("p.muted", "Checking…"));
    try {
      await ctx.api.login(password);
      const session = await ctx.api.session();
      if (!alive) return;
      ctx.loggedIn(session);
    } catch (exc) {
      if (!alive) return;
      input.removeAttribute("aria-busy");
      submit.disabled = false;
      if (exc.code === "no_password_set") {
        showNoPassword(exc.message);
        return;
      }
      let text = exc.message;
      if (exc.code === "bad_password" && exc.status === 401) text = "Wrong password: refused.";
      if (exc.code === "too_many_attempts") {
        const wait = Math.ceil(exc.details.retry_after || 1);
        text = `Too many wrong passwords: try again in ${wait} s.`;
        submit.disabled = true;
        clearTimeout(timer);
        timer = setTimeout(() => { submit.disabled = false; }, wait * 1000);
      }
      replace(status, h("p.error", text, exc.code === "bad_password" || exc.code === "too_many_attempts"
        ? "" : ` (${exc.code})`));
      input.setAttribute("aria-invalid", "true");
      input.select();
      input.focus();
    }
  });

  root.dataset.ready = "true";
  return () => {
    alive = false;
    clearTimeout(timer);
    clearInterval(recheck);
  };
}

// The login page: the admin password for a session (POST /api/login); the session's CSRF
// token is kept by api.js. With no password set, the daemon answers 403
// no_password_set: the page then says how to set one.

import { h, replace } from "../dom.js";

const HOW_TO_SET = [
  "Stop the daemon and run ",
  h("code", "hadaemon passwd --config etc/hadaemon.toml"),
  " (it asks for the password twice), then start it again; or start the daemon with the ",
  "environment variable ",
  h("code", "HADAEMON_ADMIN_PASSWORD"),
  " set to the password (containers).",
];

function howToSet() {
  return h("p", HOW_TO_SET.map((part) => (part instanceof Node ? part.cloneNode(true) : part)));
}

export async function mount(root, params, ctx) {
  ctx.setTitle("Log in");
  let timer = null;
  let alive = true;

  // Already logged in (a reload of #/login, or back from another tab): go on.
  const existing = await ctx.api.session().catch(() => null);
  if (!alive) return undefined;
  if (existing) {
    ctx.loggedIn(existing);
    return undefined;
  }

  const status = h("div#login-status", { role: "alert", "aria-live": "assertive" });
  const input = h("input#password", {
    type: "password", name: "password", autocomplete: "current-password", required: true,
    "aria-describedby": "login-hint",
  });
  const submit = h("button.btn.btn-primary", { type: "submit" }, "Log in");
  const form = h("form", { "aria-labelledby": "page-title", novalidate: true },
    // (for password managers: the account is always "admin")
    h("input", { type: "text", name: "username", autocomplete: "username", value: "admin",
      hidden: true, "aria-hidden": "true", tabindex: "-1" }),
    h("div.field", h("label", { for: "password" }, "Admin password"), input),
    submit,
    status);
  const hint = h("p#login-hint.muted",
    "No password set yet? ", HOW_TO_SET.map((p) => (p instanceof Node ? p.cloneNode(true) : p)));

  const card = h("div.card.login",
    h("h1#page-title", "Log in to hadaemon"),
    form,
    hint);
  replace(root, card);

  function showNoPassword(messageText) {
    ctx.setTitle("No password set");
    replace(card,
      h("h1#page-title", { tabindex: "-1" }, "No admin password is set yet"),
      h("p", "The console needs the admin password, and this daemon has none yet."),
      howToSet(),
      messageText ? h("p.muted", "The daemon says: ", messageText) : null,
      h("p", h("button.btn", { type: "button", on: { click: () => location.reload() } },
        "I have set one: try again")));
    root.dataset.noPassword = "true";
    card.querySelector("h1").focus();
  }

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
  };
}

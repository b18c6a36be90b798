// System variables: list, edit in place (PUT), create (POST: 409 when it exists),
// delete (DELETE, after asking). Values are typed as JSON (42, true, "text",
// {"a": 1}); text that is not JSON is a string, as `hadaemon set` reads it. Changes
// arrive live as `variable` events from source "system"; a deletion has no event, so
// the list is read again now and then (and after a reconnect).

import { h, replace, setText, message, uid, confirmation, rereader } from "../dom.js";

const REFRESH_MS = 10000;

/** The value typed in a field: JSON, else the text itself as a string. */
export function parseValue(text) {
  const trimmed = text.trim();
  if (!trimmed) throw new Error("no value: type one (\"\" is the empty string)");
  try {
    return JSON.parse(trimmed);
  } catch {
    return text;
  }
}

/** A value as the text to edit it: JSON, so that it reads back as the same value. */
export function valueText(value) {
  return JSON.stringify(value);
}

function kindOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "$bytes" in value ? "bytes" : "map";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (value === "NaN" || value === "Infinity" || value === "-Infinity") return "string / number";
  return typeof value;
}

function byName(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function mount(root, params, ctx) {
  const { api, events } = ctx;
  ctx.setTitle("System variables");
  const heading = h("h1#page-title", "System variables");
  replace(root, heading, h("p.muted", "Loading the system variables…"));

  let closed = false;
  const rows = new Map();   // name -> row controller
  const tbody = h("tbody");
  const empty = h("p.muted.sysvars-empty", "No system variables yet.");
  const notice = h("p.sysvars-notice", { role: "status" });

  // -- a row ---------------------------------------------------------------------------

  function makeRow(name, value) {
    const inputId = uid("sysvar");
    const input = h("input.sysvar-value", { id: inputId, type: "text", value: valueText(value),
      "aria-label": `Value of ${name}`, autocomplete: "off", spellcheck: "false" });
    const save = h("button.btn.btn-small.sysvar-save", { type: "submit", disabled: true }, "Save");
    const error = h("p.error.sysvar-error", { role: "alert", hidden: true });
    const kind = h("td.sysvar-kind");
    const form = h("form.sysvar-edit", { "aria-label": `Edit ${name}` }, input, save);
    const del = h("button.btn.btn-small.btn-danger.sysvar-delete", { type: "button",
      "aria-label": `Delete ${name}` }, "Delete");
    const yes = h("button.btn.btn-small.btn-danger.sysvar-confirm", { type: "button" }, "Delete");
    const no = h("button.btn.btn-small", { type: "button" }, "Cancel");
    const confirmBox = h("span.confirm",
      { role: "group", "aria-label": `Delete ${name}?`, hidden: true },
      h("span", `Delete ${name}?`), yes, no);
    const tr = h("tr", { dataset: { sysvar: name } },
      h("th", { scope: "row" }, h("code", name)),
      h("td", form, error), kind, h("td.sysvar-actions", del, confirmBox));
    const row = { name, value, tr, input };

    const dirty = () => input.value !== valueText(row.value);
    const showError = (text) => {
      error.hidden = !text;
      setText(error, text || "");
      input.setAttribute("aria-invalid", text ? "true" : "false");
      if (text) input.setAttribute("aria-describedby", error.id || (error.id = uid("err")));
      else input.removeAttribute("aria-describedby");
    };
    row.set = (v) => {
      const editing = dirty();   // an edit not saved yet is kept; Save then overwrites
      row.value = v;
      setText(kind, kindOf(v));
      if (!editing) input.value = valueText(v);
      save.disabled = !dirty();
    };
    row.set(value);
    input.addEventListener("input", () => {
      save.disabled = !dirty();
      showError("");
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && dirty()) {
        e.preventDefault();
        input.value = valueText(row.value);
        save.disabled = true;
        showError("");
      }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      let next;
      try {
        next = parseValue(input.value);
      } catch (exc) {
        showError(exc.message);
        return;
      }
      save.disabled = true;
      tr.classList.add("pending");
      try {
        const answer = await api.put(`/api/sysvars/${encodeURIComponent(name)}`, { value: next });
        input.value = valueText(answer.value);
        row.set(answer.value);
        showError("");
        setText(notice, `Saved ${name}.`);
      } catch (exc) {
        showError(`Not saved: ${exc.message}`);
        save.disabled = !dirty();
      } finally {
        tr.classList.remove("pending");
      }
    });
    const cancel = confirmation(del, confirmBox, no, no);
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api.del(`/api/sysvars/${encodeURIComponent(name)}`);
        remove(name);
        setText(notice, `Deleted ${name}.`);
        createName.focus();
      } catch (exc) {
        if (exc.status === 404) {
          remove(name);
          setText(notice, `${name} was already gone.`);
          createName.focus();
          return;
        }
        cancel();
        showError(`Not deleted: ${exc.message}`);
      } finally {
        yes.disabled = false;
      }
    });
    return row;
  }

  function upsert(name, value) {
    const row = rows.get(name);
    if (row) {
      row.set(value);
      return;
    }
    const made = makeRow(name, value);
    rows.set(name, made);
    const after = [...rows.keys()].filter((n) => byName(n, name) > 0).sort(byName)[0];
    tbody.insertBefore(made.tr, after ? rows.get(after).tr : null);
    empty.hidden = rows.size > 0;
  }

  function remove(name) {
    const row = rows.get(name);
    if (!row) return;
    row.tr.remove();
    rows.delete(name);
    empty.hidden = rows.size > 0;
  }

  function showAll(variables) {
    for (const name of [...rows.keys()]) if (!(name in variables)) remove(name);
    for (const name of Object.keys(variables).sort(byName)) upsert(name, variables[name]);
  }

  // -- create ----------------------------------------------------------------------------

  const nameId = uid("new-name");
  const valueId = uid("new-value");
  const createName = h("input.sysvar-new-name", { id: nameId, type: "text", required: true,
    autocomplete: "off", spellcheck: "false" });
  const createValue = h("input.sysvar-new-value", { id: valueId, type: "text", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": `${valueId}-hint` });
  const createError = h("p.error.sysvar-create-error", { role: "alert", hidden: true });
  const createForm = h("form.sysvar-create", { "aria-labelledby": "sysvar-create-title",
    novalidate: true },
    h("h2#sysvar-create-title", "New system variable"),
    h("div.row",
      h("label", { for: nameId }, "Name", createName),
      h("label", { for: valueId }, "Value", createValue),
      h("button.btn.btn-primary.sysvar-create-button", { type: "submit" }, "Create")),
    h("p.muted.hint", { id: `${valueId}-hint` },
      "Values are JSON: 42, 19.5, true, \"text\", [1, 2], {\"a\": 1}; other text is a string."),
    createError);
  createForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = createName.value.trim();
    const fail = (text, field) => {
      createError.hidden = false;
      setText(createError, text);
      field.setAttribute("aria-invalid", "true");
      field.focus();
    };
    createName.removeAttribute("aria-invalid");
    createValue.removeAttribute("aria-invalid");
    createError.hidden = true;
    if (!name) { fail("Name: type one.", createName); return; }
    let value;
    try {
      value = parseValue(createValue.value);
    } catch (exc) {
      fail(`Value: ${exc.message}`, createValue);
      return;
    }
    try {
      const answer = await api.post("/api/sysvars", { name, value });
      upsert(answer.name, answer.value);
      setText(notice, `Created ${answer.name}.`);
      createName.value = "";
      createValue.value = "";
      createName.focus();
    } catch (exc) {
      if (exc.code === "exists") fail(`${name} exists already: edit it in the list.`, createName);
      else fail(`Not created: ${exc.message}`, exc.code === "bad_name" ? createName : createValue);
    }
  });

  // -- first read, then live -------------------------------------------------------------

  const offs = [events.on("variable/system/#", (event) => {
    if (!closed && typeof event.name === "string") upsert(event.name, event.value);
  })];
  let first;
  try {
    first = await api.get("/api/sysvars");
  } catch (exc) {
    offs.forEach((off) => off());
    if (exc.status === 401) throw exc;
    replace(root, heading, message(`The system variables cannot be read: ${exc.message}`));
    root.dataset.ready = "true";
    return undefined;
  }
  showAll(first.variables);
  const table = h("div.table-wrap", h("table.table.sysvars-table",
    h("caption.visually-hidden", "System variables: name, value (edit and save), type"),
    h("thead", h("tr", h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"),
      h("th", { scope: "col" }, "Type"),
      h("th", { scope: "col" }, h("span.visually-hidden", "Actions")))),
    tbody));
  empty.hidden = rows.size > 0;
  replace(root, heading,
    h("p.muted", "Named values of the house itself, kept in the state store. Edit a value and "
      + "press Enter (Escape undoes the edit)."),
    notice, table, empty, createForm);
  root.dataset.ready = "true";

  const reread = rereader(() => api.get("/api/sysvars"), (fresh) => showAll(fresh.variables),
    () => closed);
  offs.push(events.onResync(reread));
  const timer = setInterval(reread, REFRESH_MS);

  return () => {
    closed = true;
    clearInterval(timer);
    offs.forEach((off) => off());
  };
}

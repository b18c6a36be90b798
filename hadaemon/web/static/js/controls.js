// A variable's value and, when it is writable, the control that fits it: a switch for
// booleans, a slider (with a number field for the exact value) within a declared range,
// a select for enums, a number field for other numbers, a text field for strings and a
// JSON field for the rest. A change goes out as PUT /api/devices/{peer}/{ch}/{name} with
// confirm, is shown as pending in place until the device reports it (or the API answers),
// and an error stays next to the control until the next change.
//
// Shared by the Devices page (many at once: update() is cheap, touching only what
// changed) and the device page.

import { h, formatValue, setText, uid } from "./dom.js";

/** Which control a variable gets (null: none, it is not writable). */
export function controlKind(variable) {
  if (!variable.access || !variable.access.write) return null;
  switch (variable.type) {
    case "bool": return "switch";
    case "enum": return variable.values && variable.values.length ? "select" : "json";
    case "int":
    case "float": {
      const range = variable.range;
      return range && isNum(range.min) && isNum(range.max) ? "slider" : "number";
    }
    case "string": return "text";
    case "bytes": return null;
    default: return "json";  // any, array, struct: JSON text, other text is a string
  }
}

function isNum(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** Whether two values of the API are the same value (as the registry's `same`). */
export function sameValue(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A variable's name to show: its label, with its name when the label is another word
 * (zigbee2mqtt labels several variables "State"). */
export function variableName(variable) {
  const { label, name } = variable;
  if (!label) return name;
  return label.toLowerCase().replace(/[\s-]+/g, "_") === name.toLowerCase() ? label
    : `${label} (${name})`;
}

/** The accessible name of a variable: device, channel when it has several, variable. */
export function variableLabel(device, channel, variable) {
  const name = variableName(variable);
  return device.channels.length > 1 ? `${device.name} channel ${channel.index} ${name}`
    : `${device.name} ${name}`;
}

/** The API path of a variable. */
export function variablePath(peerId, channel, name) {
  return `/api/devices/${peerId}/${channel}/${encodeURIComponent(name)}`;
}

/** The key pages index variables by: "peer/channel/name" (as an event's fields). */
export function variableKey(peerId, channel, name) {
  return `${peerId}/${channel}/${name}`;
}

/**
 * One variable on screen: `value` (the formatted value; data-variable is its key,
 * data-value its JSON), `control` (null when read-only) and `status` (pending / error text).
 * update(value) takes a reported value; setPending(value) shows a write made elsewhere.
 */
export class VariableView {
  constructor(api, device, channel, variable) {
    this.api = api;
    this.path = variablePath(device.peer_id, channel.index, variable.name);
    this.variable = variable;
    this.label = variableLabel(device, channel, variable);
    this.kind = controlKind(variable);
    this.confirmed = variable.known === false ? null : variable.confirmed ?? variable.value;
    this.pending = undefined;  // the value a write in flight (or made elsewhere) sets
    this.sequence = 0;         // the latest write of ours; older answers are ignored
    this.shownJson = undefined;
    this.value = h("span.var-value", { dataset: {
      variable: variableKey(device.peer_id, channel.index, variable.name), value: "null" } });
    this.inputs = [];          // the control's focusable parts (described by the status)
    this.control = null;
    this.status = null;        // pending / error text, beside a control (none read-only)
    if (this.kind) {
      this.status = h("span.var-status", { id: uid("var-status"), "aria-live": "polite" });
      this.control = this.buildControl();
      for (const input of this.inputs) input.setAttribute("aria-describedby", this.status.id);
    }
    if (variable.pending !== undefined) this.pending = variable.pending;
    this.render();
  }

  /** The elements to place: value, control and status (none when read-only). */
  get elements() {
    return [this.value, this.control, this.status];
  }

  /** The device reported `value` (an event, or a fresh read of the API). */
  update(value) {
    this.confirmed = value;
    if (this.pending !== undefined && sameValue(value, this.pending)) this.settle();
    this.render();
  }

  /** A write not yet confirmed (the API's `pending` field): shown as pending. */
  setPending(value) {
    this.pending = value;
    this.render();
  }

  settle() {
    this.pending = undefined;
    if (this.status) {
      setText(this.status, "");
      this.status.className = "var-status";
    }
  }

  render() {
    const shown = this.pending !== undefined ? this.pending : this.confirmed;
    const json = JSON.stringify(shown === undefined ? null : shown);
    if (json !== this.shownJson) {
      this.shownJson = json;
      this.value.dataset.value = json;
      setText(this.value, formatValue(shown, this.variable.unit));
      if (this.control) this.showInControl(shown);
    }
    const pending = this.pending !== undefined;
    if (pending !== this.value.classList.contains("pending")) {
      this.value.classList.toggle("pending", pending);
      if (!this.control) return;
      this.control.setAttribute("aria-busy", String(pending));
      if (pending) {
        this.status.className = "var-status pending";
        setText(this.status, "pending…");
      } else if (this.status.classList.contains("pending")) {
        this.status.className = "var-status";
        setText(this.status, "");
      }
    }
  }

  showError(text) {
    this.status.className = "var-status error";
    setText(this.status, text);
    for (const input of this.inputs) input.setAttribute("aria-invalid", "true");
  }

  clearError() {
    for (const input of this.inputs) input.removeAttribute("aria-invalid");
    if (this.status.classList.contains("error")) {
      this.status.className = "var-status";
      setText(this.status, "");
    }
  }

  /** Write `value` through the API, pending until the device confirms it. */
  async write(value) {
    this.sequence += 1;
    const mine = this.sequence;
    this.clearError();
    this.pending = value;
    this.render();
    try {
      const answer = await this.api.put(this.path, { value, confirm: true, timeout: 10 });
      if (mine !== this.sequence) return;
      if (answer && answer.pending === undefined) {
        this.confirmed = answer.confirmed;
        this.settle();
      }
    } catch (exc) {
      if (mine !== this.sequence) return;
      this.pending = undefined;
      this.shownJson = undefined;  // put the confirmed value back into the control
      this.render();
      this.showError(exc.message || String(exc));
    }
    this.render();
  }

  // -- the controls ---------------------------------------------------------------------

  buildControl() {
    const v = this.variable;
    const label = this.label;
    switch (this.kind) {
      case "switch": {
        const button = h("button.switch", {
          type: "button", role: "switch", "aria-checked": "false", "aria-label": label,
          on: { click: () => this.write(button.getAttribute("aria-checked") !== "true") },
        }, h("span.switch-knob", { "aria-hidden": "true" }));
        this.input = button;
        this.inputs = [button];
        return button;
      }
      case "select": {
        const select = h("select.var-select", { "aria-label": label },
          v.values.map((value, i) => h("option", { value: String(i) }, formatValue(value))));
        select.addEventListener("change", () => this.write(v.values[Number(select.value)]));
        this.input = select;
        this.inputs = [select];
        return select;
      }
      case "slider": {
        const { min, max, step } = v.range;
        const stepText = isNum(step) && step > 0 ? String(step) : v.type === "int" ? "1" : "any";
        const slider = h("input.var-slider", {
          type: "range", min: String(min), max: String(max),
          step: stepText === "any" ? String((max - min) / 100) : stepText, "aria-label": label,
        });
        const exact = h("input.var-number", {
          type: "number", step: stepText, inputmode: "decimal",
          "aria-label": `${label} (exact value${v.unit ? `, ${v.unit}` : ""})`,
        });
        slider.addEventListener("input", () => { exact.value = slider.value; });
        slider.addEventListener("change", () => this.write(this.parseNumber(slider.value)));
        this.listenTyped(exact);
        this.input = slider;
        this.exact = exact;
        this.inputs = [slider, exact];
        return h("span.var-range", slider, exact);
      }
      case "number": {
        const input = h("input.var-number", {
          type: "number", step: v.type === "int" ? "1" : "any", inputmode: "decimal",
          "aria-label": v.unit ? `${label} (${v.unit})` : label,
        });
        this.listenTyped(input);
        this.input = input;
        this.inputs = [input];
        return input;
      }
      default: {  // text, json
        const input = h("input.var-text", { type: "text", "aria-label": label,
          spellcheck: "false", autocomplete: "off" });
        this.listenTyped(input);
        this.input = input;
        this.inputs = [input];
        return input;
      }
    }
  }

  /** A field's value is written on Enter or when it loses focus, once per edit. */
  listenTyped(input) {
    let sent = false;
    input.addEventListener("input", () => { sent = false; });
    const commit = () => {
      if (sent) return;
      sent = true;
      this.writeTyped(input);
    };
    input.addEventListener("change", commit);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") commit(); });
  }

  writeTyped(input) {
    const text = input.value;
    let value;
    if (this.kind === "text") value = text;
    else if (this.kind === "json") {
      try {
        value = JSON.parse(text);
      } catch {
        value = text;  // as the command line: other text is a string
      }
    } else {
      if (input.validity && input.validity.badInput) {
        this.showError(`${this.variable.name}: "${text}" is not a number`);
        return;
      }
      if (text.trim() === "") {
        this.showError(`${this.variable.name}: enter a number`);
        return;
      }
      value = this.parseNumber(text);
      if (value === null) {
        this.showError(`${this.variable.name}: "${text}" is not a number`);
        return;
      }
    }
    this.write(value);
  }

  parseNumber(text) {
    const number = Number(text);
    return Number.isFinite(number) ? number : null;
  }

  /** Show `value` in the control, unless the user is editing it right now. */
  showInControl(value) {
    const input = this.input;
    switch (this.kind) {
      case "switch":
        input.setAttribute("aria-checked", value === true ? "true" : "false");
        break;
      case "select": {
        const index = this.variable.values.findIndex((v) => sameValue(v, value));
        input.value = index < 0 ? "" : String(index);
        break;
      }
      case "slider":
        if (document.activeElement !== input) {
          // No value yet: the thumb rests at the minimum, and says so to screen readers.
          input.value = String(typeof value === "number" ? value : this.variable.range.min);
          if (typeof value === "number") input.removeAttribute("aria-valuetext");
          else input.setAttribute("aria-valuetext", "no value yet");
        }
        if (document.activeElement !== this.exact) this.exact.value = typeof value === "number" ? String(value) : "";
        break;
      case "number":
        if (document.activeElement !== input) input.value = typeof value === "number" ? String(value) : "";
        break;
      default:
        if (document.activeElement !== input) {
          input.value = value === null || value === undefined ? ""
            : this.kind === "text" && typeof value === "string" ? value : JSON.stringify(value);
        }
    }
  }
}

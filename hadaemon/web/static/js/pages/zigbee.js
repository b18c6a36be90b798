// Stub by helper A (the foundation): the page's owner replaces this file whole.
import { h, replace } from "../dom.js";

export async function mount(root, params, ctx) {
  ctx.setTitle("zigbee");
  replace(root, h("h1#page-title", "zigbee"), h("p.muted", "This page is being written."));
  root.dataset.ready = "true";
  return undefined;
}

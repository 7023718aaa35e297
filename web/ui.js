// DOM helpers: every element is built with createElement and text nodes (never HTML
// strings), so nothing a server or a model sends can become markup or script.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let fieldIds = 0;
// A labelled input; `attrs` go to the input (or select/textarea via attrs.tag).
export function field(label, attrs = {}, options = []) {
  const id = attrs.id || `f${++fieldIds}`;
  const tag = attrs.tag || "input";
  const input = h(tag, { ...attrs, tag: undefined, id });
  for (const option of options) {
    input.append(h("option", { value: option.value ?? option }, option.label ?? option));
  }
  return { label: h("label", { for: id }, label, input), input };
}

export function checkbox(label, attrs = {}) {
  const input = h("input", { type: "checkbox", ...attrs });
  return { label: h("label", { class: "inline" }, input, label), input };
}

// Shows a sentence to the user in the page's live region.
export function notify(text, kind = "ok") {
  const box = document.getElementById("notice");
  clear(box);
  if (text) box.append(h("p", { class: `msg ${kind}`, role: kind === "error" ? "alert" : null }, text));
}

export function errorBox() {
  return h("p", { class: "msg error", role: "alert", hidden: true });
}

export function showError(box, err) {
  box.textContent = err && err.sentence ? err.sentence : String(err && err.message ? err.message : err);
  box.hidden = false;
}

export function when(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function table(headings, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headings.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) =>
      h("td", { "data-label": headings[i] }, cell))))));
}

// Runs `work` with the button disabled; errors go to `box` as a sentence.
export async function busy(button, box, work) {
  button.disabled = true;
  if (box) box.hidden = true;
  try {
    return await work();
  } catch (err) {
    if (box) showError(box, err); else notify(err.sentence || String(err), "error");
    return undefined;
  } finally {
    button.disabled = false;
  }
}

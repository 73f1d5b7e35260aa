// Small DOM and formatting helpers shared by the panels.

import { sign } from "/web/js/decimal.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** An element: el("td", {class: "num", dataset: {price: "1"}}, "text", childNode, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "testid") node.setAttribute("data-testid", value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A table cell holding `text`; numeric cells align right in the mono font. */
export const td = (text, cls = "") => el("td", { class: cls || null }, text ?? "");
export const num = (text, extra = "") => td(text ?? "", `num ${extra}`.trim());

/** A numeric cell coloured by the sign of a decimal string. */
export function signed(text, suffix = "") {
  const s = sign(text);
  return num(text === null || text === undefined ? "" : `${text}${suffix}`, s > 0 ? "pos" : s < 0 ? "neg" : "");
}

export function emptyRow(columns, text) {
  return el("tr", {}, el("td", { class: "empty", colspan: columns }, text));
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** HH:MM:SS local time of nanoseconds since the epoch (a number), or of an RFC 3339 string. */
export function clock(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value / 1e6) : new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "MM-DD HH:MM:SS" local time, for lists that span days. */
export function stamp(value) {
  if (!value) return "";
  const d = typeof value === "number" ? new Date(value / 1e6) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(value)}`;
}

/** Thousands separators for an integer count (volume, shares). */
export function count(value) {
  if (value === null || value === undefined || value === "") return "";
  const s = String(value);
  return /^-?\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ",") : s;
}

/** "1234.5" -> "1,234.5" without changing digits (display of money strings). */
export function money(value) {
  if (value === null || value === undefined || value === "") return "–";
  const [whole, frac] = String(value).split(".");
  return count(whole) + (frac !== undefined ? `.${frac}` : "");
}

/** A ratio string from the API ("0.0123") as a percentage with two decimals, for display. */
export function percent(ratio) {
  const x = Number(ratio);
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : "";
}

let toastTimer = null;

/** A short message in the corner; errors stay longer. */
export function toast(text, { error = false, ms } = {}) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.classList.toggle("error", error);
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), ms ?? (error ? 8000 : 3000));
}

/** Ask a yes/no question in the page's own dialog (never window.confirm). */
export function confirmDialog(text) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Show `message` in a form's message line, as an error or not. */
export function say(node, message, kind = "") {
  if (!node) return;
  node.textContent = message;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

/** Trailing-edge debounce. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

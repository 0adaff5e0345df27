// DOM helpers for the chat page. User data only ever becomes text nodes or attribute
// values set through the DOM, never HTML: there is no innerHTML anywhere in the UI.

/**
 * h("a", {class: "x", href, onclick, dataset: {k: v}, "aria-label": "…"}, child, …)
 * Children: strings (text nodes), nodes, arrays of either; null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(id) {
  return document.getElementById(id);
}

/** One or two letters for an avatar. */
export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

/** Fills an avatar element: initials on a hue picked from the id, the same on every page. */
export function paintAvatar(el, name, id) {
  el.textContent = initials(name);
  el.style.setProperty("--avatar-hue", String((Number(id) * 47) % 360));
  return el;
}

export function avatar(name, id, extraClass = "") {
  return paintAvatar(h("span", { class: `avatar ${extraClass}`.trim(), "aria-hidden": "true" }), name, id);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const shortDayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

export function formatTime(iso) {
  return timeFormat.format(new Date(iso));
}

/** The local calendar day of a time, as a sortable key. */
export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function formatDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return "Today";
  if (dayKey(d) === dayKey(yesterday)) return "Yesterday";
  return dayFormat.format(d);
}

/** A conversation list time: the hour today, the day before. */
export function formatListTime(iso) {
  return dayKey(iso) === dayKey(new Date()) ? formatTime(iso) : shortDayFormat.format(new Date(iso));
}

export function formatSize(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A short-lived message at the bottom of the screen, read out by screen readers. */
export function toast(text) {
  let region = $("toasts");
  if (!region) {
    region = h("div", { id: "toasts", class: "toasts", role: "alert" });
    document.body.append(region);
  }
  const item = h("p", { class: "toast", text });
  region.append(item);
  setTimeout(() => item.remove(), 5000);
}

// The notification bell: the user's notifications by priority, the unread count, marking
// read, and a banner for every unread P0 that stays until acknowledged.

import { optionalApi } from "./api.js";
import { $, formatListTime, h } from "./dom.js";

const PRIORITY_LABELS = { P0: "Urgent", P1: "High", P2: "Normal", P3: "Low" };

const notifications = new Map(); // id -> notification, with `read` (bool)
let serverUnread = null; // the server's count, when the endpoint answered
let wsRead = null; // (ids) => bool: the WebSocket `read` frame, when REST is missing

function isRead(n) {
  return Boolean(n.read || n.read_at || n.status === "read");
}

function unreadCount() {
  const local = [...notifications.values()].filter((n) => !isRead(n)).length;
  return Math.max(local, serverUnread ?? 0);
}

function sorted() {
  return [...notifications.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
}

function drawBadge() {
  const count = unreadCount();
  const badge = $("bell-badge");
  badge.hidden = count === 0;
  badge.textContent = count > 99 ? "99+" : String(count);
  $("bell-label").textContent = count ? `Notifications, ${count} unread` : "Notifications";
}

function item(n) {
  const priority = PRIORITY_LABELS[n.priority] ? n.priority : "P2";
  return h(
    "li",
    { class: `notification priority-${priority}${isRead(n) ? "" : " unread"}` },
    h(
      "button",
      { type: "button", class: "notification-button", onclick: () => markRead([n.id]) },
      h("span", { class: `priority-tag priority-${priority}` }, PRIORITY_LABELS[priority]),
      h("span", { class: "notification-title" }, n.title),
      h("span", { class: "notification-content" }, n.content),
      h("time", { datetime: n.created_at, class: "muted" }, formatListTime(n.created_at)),
      isRead(n) ? null : h("span", { class: "visually-hidden" }, "Unread"),
    ),
  );
}

function banner(n) {
  return h(
    "div",
    { class: "p0-banner", role: "alert", dataset: { notificationId: n.id } },
    h("strong", { class: "p0-title" }, n.title),
    h("span", { class: "p0-content" }, n.content),
    h("button", { type: "button", class: "p0-ack", onclick: () => markRead([n.id]) }, "Acknowledge"),
  );
}

function draw() {
  drawBadge();
  const list = sorted();
  $("bell-list").replaceChildren(...list.map(item));
  $("bell-empty").hidden = list.length > 0;
  const urgent = list.filter((n) => n.priority === "P0" && !isRead(n));
  $("p0-banners").replaceChildren(...urgent.map(banner));
}

export async function markRead(ids) {
  const unread = ids.filter((id) => notifications.has(id) && !isRead(notifications.get(id)));
  if (!unread.length) return;
  for (const id of unread) notifications.get(id).read = true;
  if (serverUnread !== null) serverUnread = Math.max(0, serverUnread - unread.length);
  draw();
  try {
    const done = await optionalApi("/api/notifications/read/", {
      method: "POST",
      json: { notification_ids: unread },
    });
    if (done === null) wsRead?.(unread);
  } catch {
    wsRead?.(unread);
  }
}

/** A `notification` item (live, replayed or from a batch). */
export function addNotification(n) {
  if (notifications.has(n.id)) return false;
  notifications.set(n.id, { ...n });
  if (serverUnread !== null) serverUnread += 1;
  draw();
  return true;
}

/** A read receipt for notifications (from this user's other device). */
export function notificationsRead(ids) {
  for (const id of ids) {
    const n = notifications.get(id);
    if (n && !isRead(n)) {
      n.read = true;
      if (serverUnread !== null) serverUnread = Math.max(0, serverUnread - 1);
    }
  }
  draw();
}

export async function loadNotifications() {
  let page = null;
  try {
    page = await optionalApi("/api/notifications/");
  } catch {
    page = null; // the bell stays usable with live notifications only
  }
  if (page) {
    for (const n of page.results || []) notifications.set(n.id, n);
    serverUnread = typeof page.unread === "number" ? page.unread : null;
  }
  draw();
}

function togglePanel(force) {
  const panel = $("bell-panel");
  const show = force ?? panel.hidden;
  panel.hidden = !show;
  $("bell-button").setAttribute("aria-expanded", String(show));
}

export function initBell({ readOverWs }) {
  wsRead = readOverWs;
  $("bell-button").addEventListener("click", () => togglePanel());
  $("bell-read-all").addEventListener("click", () => markRead([...notifications.keys()]));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("bell-panel").hidden) {
      togglePanel(false);
      $("bell-button").focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".bell")) togglePanel(false);
  });
  draw();
}

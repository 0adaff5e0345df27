// The IMS service worker, served at /sw.js so its scope is the whole site. It shows Web
// Push messages while no IMS tab is visible. A push carries one item as JSON, shaped like a
// WebSocket frame ({"type": "message" | "notification" | "batch", ...}), plus the `title`
// and `body` the server wrote for it (notifications/services/content.py), `silent: true`
// for a silent push, and, when the server sends it, the push's `priority`
// (docs/push-providers.md).

const ICON = "/static/ims/icon.svg";
// Messages have no priority of their own: chat is P1 (PROTOCOL.md, Priorities).
const MESSAGE_PRIORITY = "P1";
// Messages have no category either; their merged pushes are "chat", as the server's.
const MESSAGE_CATEGORY = "chat";
// How each priority presents (DESIGN.md): P0 wakes the screen and stays until the user acts,
// P1 vibrates, P2 and P3 (merged) arrive silently.
const PRESENTATION = {
  P0: { requireInteraction: true, renotify: true, vibrate: [300, 100, 300, 100, 300] },
  P1: { vibrate: [200, 100, 200] },
  P2: { silent: true },
  P3: { silent: true },
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function isPriority(value) {
  return Object.hasOwn(PRESENTATION, value);
}

/** The priority of one item frame; a batch is as urgent as its most urgent item. */
function itemPriority(item) {
  if (item.type === "message" || item.type === "message_update") return MESSAGE_PRIORITY;
  if (item.type === "notification") return isPriority(item.data?.priority) ? item.data.priority : MESSAGE_PRIORITY;
  if (item.type === "batch") {
    const priorities = [...(item.items || []), item.last].filter(Boolean).map(itemPriority);
    return priorities.sort()[0] || MESSAGE_PRIORITY;
  }
  return MESSAGE_PRIORITY;
}

/** The push's own `priority` when the server sent one, else the item's. */
function pushPriority(push) {
  return isPriority(push.priority) ? push.priority : itemPriority(push);
}

function categoryOf(item) {
  return item?.type === "notification" ? item.data?.category || "" : MESSAGE_CATEGORY;
}

/** One notification per message or notification: a newer push about it (a recall) replaces
 * it, and so does the chat tab's own notification of it (chat/notify.js uses the same tags).
 * A merged P3 push replaces the previous one of its category, as its Web Push Topic does. */
function tagOf(item, priority) {
  if (item.type === "message" || item.type === "message_update") return `msg:${item.data?.msg_id}`;
  if (item.type === "notification") return `ntf:${item.data?.id}`;
  if (item.type === "batch" && item.last) {
    return priority === "P3" ? `batch:${categoryOf(item.last)}` : tagOf(item.last, priority);
  }
  return "ims";
}

function messageText(data) {
  if (data.recalled) return "Message recalled";
  if (data.msg_type === "image") return "Photo";
  if (data.msg_type === "file") return `File: ${data.content?.name ?? ""}`;
  return String(data.content ?? "");
}

/** What to say when the push carries no title and body of the server's (an older server). */
function fallbackText(item) {
  const data = item.data || {};
  if (item.type === "message" || item.type === "message_update") return { title: "New message", body: messageText(data) };
  if (item.type === "notification") return { title: data.title || "Notification", body: data.content || "" };
  if (item.type === "batch") {
    const last = item.last ? fallbackText(item.last) : { title: "", body: "" };
    return { title: `${item.count} new items`, body: last.title || last.body };
  }
  return { title: "IMS", body: "" };
}

/** Where a click on it leads: the message's conversation, else the chat page. */
function conversationOf(item) {
  if (item.type === "batch") {
    const ids = new Set([...(item.items || []), item.last].filter(Boolean).map(conversationOf));
    return ids.size === 1 ? [...ids][0] : null;
  }
  return item.type === "message" || item.type === "message_update" ? (item.data?.conversation_id ?? null) : null;
}

/** The title and options of the notification that shows this push document. */
function present(push) {
  const fallback = fallbackText(push);
  const priority = pushPriority(push);
  const { requireInteraction = false, renotify = false, vibrate, silent = false } = PRESENTATION[priority];
  const options = {
    body: typeof push.body === "string" ? push.body : fallback.body,
    tag: tagOf(push, priority),
    icon: ICON,
    requireInteraction,
    renotify,
    silent: silent || push.silent === true,
    data: { conversationId: conversationOf(push), priority },
  };
  // A silent notification must not vibrate (the Notifications API refuses both).
  if (vibrate && !options.silent) options.vibrate = vibrate;
  const title = typeof push.title === "string" && push.title ? push.title : fallback.title;
  return { title, options };
}

async function visibleClient() {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.some((client) => client.visibilityState === "visible");
}

self.addEventListener("push", (event) => {
  let push = {};
  try {
    push = event.data ? event.data.json() : {};
  } catch {
    push = { type: "unknown" };
  }
  event.waitUntil(
    (async () => {
      // A visible tab shows the item itself (it has the WebSocket).
      if (await visibleClient()) return;
      const { title, options } = present(push);
      await self.registration.showNotification(title, options);
    })(),
  );
});

/** Brings the chat forward at this conversation: an open chat tab switches to it without a
 * reload (chat/notify.js listens), else a new tab opens there. */
async function openChat(conversationId) {
  const url = conversationId ? `/chat/#c=${conversationId}` : "/chat/";
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const chat = windows.find((client) => new URL(client.url).pathname === "/chat/");
  if (!chat) return self.clients.openWindow(url);
  if (conversationId) chat.postMessage({ type: "ims:open", conversationId });
  return chat.focus();
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openChat(event.notification.data?.conversationId));
});

// The IMS service worker, served at /sw.js so its scope is the whole site. It shows Web
// Push messages while no IMS tab is visible. A push carries one item as JSON, shaped like a
// WebSocket frame: {"type": "message" | "notification" | "batch", ...}.

const ICON = "/static/ims/icon.svg";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function describe(item) {
  if (item.type === "message") {
    const data = item.data || {};
    const content = data.content;
    const body =
      data.msg_type === "image" ? "Photo" : data.msg_type === "file" ? `File: ${content?.name ?? ""}` : String(content ?? "");
    return { title: "New message", body, tag: `msg:${data.msg_id}`, conversationId: data.conversation_id };
  }
  if (item.type === "notification") {
    const data = item.data || {};
    return {
      title: data.title || "Notification",
      body: data.content || "",
      tag: `ntf:${data.id}`,
      requireInteraction: data.priority === "P0",
    };
  }
  if (item.type === "batch") {
    const last = item.last ? describe(item.last) : { title: "IMS" };
    return { title: `${item.count} new items`, body: last.body || last.title, tag: "batch" };
  }
  return { title: "IMS", body: "", tag: "ims" };
}

async function visibleClient() {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.some((client) => client.visibilityState === "visible");
}

self.addEventListener("push", (event) => {
  let item = {};
  try {
    item = event.data ? event.data.json() : {};
  } catch {
    item = { type: "unknown" };
  }
  event.waitUntil(
    (async () => {
      // A visible tab shows the item itself (it has the WebSocket).
      if (await visibleClient()) return;
      const { title, body, tag, conversationId, requireInteraction } = describe(item);
      await self.registration.showNotification(title, {
        body,
        tag,
        icon: ICON,
        requireInteraction: Boolean(requireInteraction),
        data: { conversationId },
      });
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const conversationId = event.notification.data?.conversationId;
  const url = conversationId ? `/chat/#c=${conversationId}` : "/chat/";
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const chat = windows.find((client) => new URL(client.url).pathname === "/chat/");
      if (chat) {
        await chat.focus();
        return chat.navigate(url);
      }
      return self.clients.openWindow(url);
    })(),
  );
});

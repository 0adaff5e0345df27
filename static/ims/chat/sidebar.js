// The conversation list: latest activity first, with preview, unread badge and presence.

import { $, avatar, formatListTime, h } from "./dom.js";
import { isOnline, otherMembers, personName, sortedConversations, state, titleOf } from "./store.js";

let onOpen = () => {}; // (conversation id) => void, from initSidebar

export function previewText(message) {
  if (!message) return "No messages yet";
  if (message.msg_type === "image") return "Photo";
  if (message.msg_type === "file") return `File: ${message.content?.name ?? ""}`;
  return String(message.content).replace(/\s+/g, " ");
}

function previewOf(conversation) {
  const message = conversation.last_message;
  const text = previewText(message);
  if (!message) return text;
  if (message.sender_id === state.me.id) return `You: ${text}`;
  return conversation.kind === "group" ? `${personName(message.sender_id)}: ${text}` : text;
}

function presenceDot(conversation) {
  if (conversation.kind !== "direct") return null;
  const peer = otherMembers(conversation)[0];
  const online = peer && isOnline(peer.id);
  if (online === undefined) return null;
  return h("span", {
    class: `presence ${online ? "online" : "offline"}`,
    role: "img",
    "aria-label": online ? "Online" : "Offline",
    title: online ? "Online" : "Offline",
  });
}

function unreadBadge(count) {
  if (!count) return null;
  const label = `${count} unread message${count === 1 ? "" : "s"}`;
  return h("span", { class: "badge", "aria-label": label, title: label }, count > 99 ? "99+" : String(count));
}

function listItem(conversation) {
  const title = titleOf(conversation);
  const when = conversation.last_message?.created_at;
  const open = String(conversation.id) === String(state.openKey);
  const button = h(
    "button",
    {
      type: "button",
      class: `conversation-item${open ? " active" : ""}${conversation.unread_count ? " unread" : ""}`,
      "aria-current": open ? "true" : null,
      dataset: { conversationId: conversation.id },
      onclick: () => onOpen(conversation.id),
    },
    h("span", { class: "avatar-wrap" }, avatar(title, conversation.id), presenceDot(conversation)),
    h(
      "span",
      { class: "conversation-text" },
      h(
        "span",
        { class: "conversation-top" },
        h("span", { class: "conversation-title" }, title),
        when ? h("time", { datetime: when, class: "conversation-time" }, formatListTime(when)) : null,
      ),
      h(
        "span",
        { class: "conversation-bottom" },
        h("span", { class: "conversation-preview" }, previewOf(conversation)),
        unreadBadge(conversation.unread_count),
      ),
    ),
  );
  return h("li", {}, button);
}

export function initSidebar(callbacks) {
  onOpen = callbacks.onOpen;
}

export function renderSidebar() {
  const filter = state.filter.trim().toLowerCase();
  const conversations = sortedConversations().filter(
    (c) => !filter || titleOf(c).toLowerCase().includes(filter) || c.members.some((m) => m.username.includes(filter)),
  );
  $("conversation-list").replaceChildren(...conversations.map((c) => listItem(c)));
  $("conversation-empty").hidden = state.conversations.size > 0;
  const unread = [...state.conversations.values()].reduce((sum, c) => sum + (c.unread_count || 0), 0);
  document.title = unread ? `(${unread}) IMS` : "IMS";
}

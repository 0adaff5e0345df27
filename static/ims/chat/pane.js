// The open conversation: header, history with day separators, ticks, typing indicator.

import { $, avatar, dayKey, formatDay, formatSize, formatTime, h, paintAvatar } from "./dom.js";
import { isOnline, otherMembers, personName, state, thread, titleOf } from "./store.js";

// Consecutive messages of one sender within this time are drawn as one group.
const GROUP_GAP_MS = 5 * 60 * 1000;
const SAFE_IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const TICKS = {
  failed: { glyph: "!", label: "Not sent" },
  uploading: { glyph: "…", label: "Uploading" },
  sending: { glyph: "◷", label: "Sending" },
  sent: { glyph: "✓", label: "Sent" },
  delivered: { glyph: "✓✓", label: "Delivered" },
  read: { glyph: "✓✓", label: "Read" },
};

export function currentConversation() {
  return state.conversations.get(Number(state.openKey)) || null;
}

export function renderHeader() {
  const conversation = currentConversation();
  const peerId = String(state.openKey).startsWith("u:") ? Number(String(state.openKey).slice(2)) : null;
  const title = conversation ? titleOf(conversation) : personName(peerId);
  $("pane-title").textContent = title;
  paintAvatar($("pane-avatar"), title, conversation ? conversation.id : peerId);
  $("members-button").hidden = conversation?.kind !== "group";
  $("pane-subtitle").textContent = subtitle(conversation, peerId);
}

function subtitle(conversation, peerId) {
  if (conversation?.kind === "group") {
    const names = conversation.members.map((m) => (m.id === state.me.id ? "you" : m.display_name || m.username));
    return `${conversation.members.length} members: ${names.join(", ")}`;
  }
  const peer = conversation ? otherMembers(conversation)[0]?.id : peerId;
  const online = isOnline(peer);
  if (online === undefined) return "Direct message";
  return online ? "Online" : "Offline";
}

function tick(record) {
  const { glyph, label } = TICKS[record.status] || TICKS.sent;
  const conversation = currentConversation();
  // Readers counted by the history, plus those whose receipts came since.
  const readers = (record.readCount || 0) + record.readers.size;
  const text =
    record.status === "read" && conversation?.kind === "group" ? `Read by ${readers}` : label;
  return h("span", { class: `tick tick-${record.status}`, role: "img", "aria-label": text, title: text }, glyph);
}

/** Text with @mentions of members highlighted; only text nodes, never HTML. */
function textWithMentions(text, mentionIds) {
  const names = mentionIds.map((id) => personName(id)).filter(Boolean);
  if (!names.length) return [text];
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).sort((a, b) => b.length - a.length);
  const pattern = new RegExp(`@(?:${escaped.join("|")})`, "g");
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parts.push(text.slice(last, match.index), h("span", { class: "mention" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

const SVG = "http://www.w3.org/2000/svg";

function fileIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "file-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8Zm-1 7V3.5L18.5 9Z");
  svg.append(path);
  return svg;
}

function body(record) {
  const content = record.content;
  if (record.msg_type === "image" && SAFE_IMAGE_TYPES.has(content.mime)) {
    const img = h("img", { class: "thumb", src: content.url, alt: content.name, loading: "lazy" });
    img.addEventListener("load", () => keepBottom(), { once: true });
    return h("a", { href: content.url, target: "_blank", rel: "noopener", class: "thumb-link" }, img);
  }
  if (record.msg_type === "image" || record.msg_type === "file") {
    return h(
      "a",
      { href: content.url, class: "file-link", download: content.name },
      fileIcon(),
      h("span", { class: "file-name" }, content.name),
      h("span", { class: "file-size" }, formatSize(content.size)),
    );
  }
  return h("p", { class: "text" }, textWithMentions(String(content), record.mentions));
}

function messageNode(record, previous) {
  const own = record.sender_id === state.me.id;
  const grouped =
    previous &&
    previous.sender_id === record.sender_id &&
    dayKey(previous.created_at) === dayKey(record.created_at) &&
    new Date(record.created_at) - new Date(previous.created_at) < GROUP_GAP_MS;
  const mentionsMe = !own && record.mentions.includes(state.me.id);
  const group = currentConversation()?.kind === "group";
  const sender = personName(record.sender_id);
  return h(
    "div",
    {
      class: `msg ${own ? "own" : "other"}${grouped ? " grouped" : ""}${mentionsMe ? " mentions-me" : ""}`,
      dataset: { key: record.key, status: record.status },
    },
    !own && !grouped ? avatar(sender, record.sender_id, "small") : null,
    h(
      "div",
      { class: `bubble${record.msg_type === "text" ? "" : " attachment"}` },
      h("span", { class: "sender" + (group && !own && !grouped ? "" : " visually-hidden") }, own ? "You" : sender),
      body(record),
      h(
        "span",
        { class: "meta" },
        h("time", { datetime: record.created_at }, formatTime(record.created_at)),
        own ? tick(record) : null,
      ),
    ),
  );
}

function isNearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

let stickToBottom = true;

export function keepBottom() {
  const list = $("messages");
  if (stickToBottom) list.scrollTop = list.scrollHeight;
}

/** Redraws the open thread; keeps the reader where they were (or at the bottom). */
export function renderMessages({ toBottom = false } = {}) {
  const list = $("messages");
  const fromBottom = list.scrollHeight - list.scrollTop;
  stickToBottom = toBottom || isNearBottom(list);
  const t = thread(state.openKey);
  const nodes = [];
  if (t.next) nodes.push(h("p", { class: "history-note muted" }, "Scroll up for older messages"));
  else if (t.next === null) nodes.push(h("p", { class: "history-note muted" }, "This is the beginning of the conversation."));
  let previous = null;
  for (const record of t.sorted()) {
    if (!previous || dayKey(previous.created_at) !== dayKey(record.created_at)) {
      nodes.push(h("div", { class: "day", role: "separator" }, h("span", {}, formatDay(record.created_at))));
      previous = null;
    }
    nodes.push(messageNode(record, previous));
    previous = record;
  }
  list.replaceChildren(...nodes);
  if (stickToBottom) list.scrollTop = list.scrollHeight;
  else list.scrollTop = list.scrollHeight - fromBottom;
}

export function renderTyping() {
  const typers = state.typing.get(Number(state.openKey));
  const now = Date.now();
  const names = typers ? [...typers].filter(([, until]) => until > now).map(([id]) => personName(id)) : [];
  $("typing").textContent = names.length
    ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`
    : "";
}

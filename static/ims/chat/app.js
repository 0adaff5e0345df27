// The chat page: wires the protocol client (ims-client.js) to the state and the views.
// Frames and REST answers change `state`; the render functions redraw from it.

import { csrfToken, IMSClient } from "../ims-client.js";
import { api, optionalApi } from "./api.js";
import { addNotification, initBell, loadNotifications, notificationsRead } from "./bell.js";
import { initComposer, loadDraft } from "./composer.js";
import { $, paintAvatar, toast } from "./dom.js";
import { initNotify, notifyIfHidden } from "./notify.js";
import { currentConversation, keepBottom, renderHeader, renderMessages, renderTyping } from "./pane.js";
import { initPeople } from "./people.js";
import { previewText, renderSidebar } from "./sidebar.js";
import {
  conversationKeyOf,
  directWith,
  personName,
  putMessage,
  recordFromMessage,
  rememberPeople,
  state,
  thread,
  titleOf,
  upgradeStatus,
} from "./store.js";

const PAGE_SIZE = 50;
const TYPING_SHOWN_MS = 6000;
const REFRESH_DELAY_MS = 250;
const LOAD_OLDER_WITHIN_PX = 120;
const SAFE_IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

// Receipts are hints sent once: one that overtakes its message's `sent` waits here.
const EARLY_RECEIPTS_KEPT = 500;

let client = null;
let refreshTimer = null;
let replays = 0;
const earlyReceipts = new Map(); // msg_id -> [{status, user_id}]

// --- conversations --------------------------------------------------------------------

async function loadConversations() {
  const list = await api("/api/conversations/");
  for (const c of list) {
    // A frame may have brought a newer message while this answer was on its way.
    const local = state.conversations.get(c.id)?.last_message;
    if (local && (!c.last_message || local.created_at > c.last_message.created_at)) c.last_message = local;
  }
  state.conversations = new Map(list.map((c) => [c.id, c]));
  for (const c of list) rememberPeople(c.members);
  adoptDraftThreads();
  // The open conversation is being read; the server's count may predate our `read`.
  const open = state.conversations.get(Number(state.openKey));
  if (open && document.visibilityState === "visible") open.unread_count = 0;
  if (state.openKey !== null && !String(state.openKey).startsWith("u:") && !state.conversations.has(Number(state.openKey))) {
    closeConversation();
  }
  renderSidebar({ onOpen: navigateTo });
  if (state.openKey !== null) renderHeader();
}

/** The server's view (titles, members, unread counts) after anything it announced. */
function refreshConversations() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadConversations().catch(() => {}), REFRESH_DELAY_MS);
}

/** A first message to someone opened a direct conversation: move the draft thread into it. */
function adoptDraftThreads() {
  for (const [key, draft] of state.threads) {
    if (!String(key).startsWith("u:")) continue;
    const conversation = directWith(Number(String(key).slice(2)));
    if (!conversation) continue;
    const target = thread(conversation.id);
    for (const record of draft.records.values()) {
      record.conversation_id = conversation.id;
      if (!target.records.has(record.key)) target.records.set(record.key, record);
    }
    state.threads.delete(key);
    if (state.openKey === key) navigateTo(conversation.id, { replace: true });
  }
}

function navigateTo(key, { replace = false } = {}) {
  const hash = String(key).startsWith("u:") ? `#u=${String(key).slice(2)}` : `#c=${key}`;
  if (replace) history.replaceState(null, "", hash);
  else if (location.hash !== hash) location.hash = hash;
  openConversation(key);
}

function keyFromHash() {
  const match = location.hash.match(/^#([cu])=(\d+)$/);
  if (!match) return null;
  return match[1] === "c" ? Number(match[2]) : `u:${match[2]}`;
}

function openConversation(key) {
  if (key === null) return closeConversation();
  state.openKey = key;
  document.body.classList.add("pane-open");
  $("pane-empty").hidden = true;
  $("conversation").hidden = false;
  renderHeader();
  loadDraft(key);
  renderTyping();
  const t = thread(key);
  if (t.next === undefined && !String(key).startsWith("u:")) loadOlder();
  else if (String(key).startsWith("u:")) t.next = null;
  renderMessages({ toBottom: true });
  markRead();
  renderSidebar({ onOpen: navigateTo });
  if (window.matchMedia("(min-width: 721px)").matches) $("composer-input").focus();
}

function closeConversation() {
  state.openKey = null;
  document.body.classList.remove("pane-open");
  $("pane-empty").hidden = false;
  $("conversation").hidden = true;
  renderSidebar({ onOpen: navigateTo });
}

// --- history and reading --------------------------------------------------------------

/** The tick of an own message from its history `delivery`: read or delivered once every
 * recipient has it (in a group, read as soon as one member has read it: "Read by N"). */
function historyStatus(delivery) {
  if (!delivery || delivery.recipients === 0) return "sent";
  const group = delivery.recipients > 1;
  if (delivery.read === delivery.recipients || (group && delivery.read > 0)) return "read";
  if (delivery.delivered === delivery.recipients) return "delivered";
  return "sent";
}

async function loadOlder() {
  const key = state.openKey;
  const t = thread(key);
  if (t.loading || t.next === null) return;
  t.loading = true;
  try {
    const url = t.next || `/api/conversations/${key}/messages/?page_size=${PAGE_SIZE}`;
    const page = await api(url);
    const firstPage = t.next === undefined;
    const conversation = state.conversations.get(key);
    let unread = firstPage ? conversation?.unread_count || 0 : 0;
    for (const data of page.results) {
      const own = data.sender_id === state.me.id;
      const record = putMessage(recordFromMessage(data, own ? historyStatus(data.delivery) : "received"));
      if (own && data.delivery) record.readCount = data.delivery.read;
      // The newest `unread_count` messages of others are the unread ones.
      if (!own && record.readByMe === undefined) record.readByMe = unread-- <= 0;
    }
    t.next = page.next;
    if (state.openKey === key) {
      renderMessages({ toBottom: firstPage });
      markRead();
    }
  } catch (error) {
    toast(`Could not load messages: ${error.message}`);
  } finally {
    t.loading = false;
  }
}

/** Marks what the user can see as read; every device of theirs clears the same count. */
function markRead() {
  const conversation = currentConversation();
  if (!conversation || document.visibilityState !== "visible") return;
  const unread = [...thread(conversation.id).records.values()].filter(
    (r) => r.msg_id && r.sender_id !== state.me.id && r.readByMe === false,
  );
  for (const record of unread) record.readByMe = true;
  const msgIds = unread.map((r) => r.msg_id).slice(-1000);
  if (msgIds.length && !client.read({ msgIds })) {
    api("/api/messages/read/", { method: "POST", json: { msg_ids: msgIds } }).catch(() => {});
  }
  if (conversation.unread_count) {
    conversation.unread_count = 0;
    renderSidebar({ onOpen: navigateTo });
  }
}

// --- sending --------------------------------------------------------------------------

function target(key) {
  return String(key).startsWith("u:") ? { to: Number(String(key).slice(2)) } : { conversation_id: Number(key) };
}

function optimisticRecord(entry) {
  const frame = entry.frame;
  return {
    key: entry.client_msg_id,
    msg_id: null,
    client_msg_id: entry.client_msg_id,
    conversation_id: conversationKeyOf(frame),
    sender_id: state.me.id,
    msg_type: frame.msg_type,
    content: frame.content,
    mentions: frame.mentions || [],
    created_at: entry.queued_at,
    status: "sending",
    readers: new Set(),
  };
}

function sendMessage(message) {
  const key = state.openKey;
  const entry = client.send({ ...target(key), ...message });
  const record = optimisticRecord(entry);
  thread(key).records.set(record.key, record);
  const conversation = state.conversations.get(Number(key));
  if (conversation) conversation.last_message = { ...record, created_at: entry.queued_at };
  renderMessages({ toBottom: true });
  renderSidebar({ onOpen: navigateTo });
}

async function uploadFiles(files) {
  const key = state.openKey;
  if (String(key).startsWith("u:")) return toast("Send a first message, then share files.");
  for (const file of files) {
    if (file.size > state.maxUploadBytes) {
      toast(`${file.name} is too large (limit ${Math.round(state.maxUploadBytes / 1048576)} MB).`);
      continue;
    }
    const placeholder = {
      key: `upload:${Math.random()}`,
      msg_id: null,
      conversation_id: key,
      sender_id: state.me.id,
      msg_type: "file",
      content: { url: "#", name: file.name || "image", size: file.size, mime: file.type },
      mentions: [],
      created_at: new Date().toISOString(),
      status: "uploading",
      readers: new Set(),
    };
    thread(key).records.set(placeholder.key, placeholder);
    renderMessages({ toBottom: true });
    const form = new FormData();
    form.append("file", file, file.name || "pasted-image.png");
    try {
      const content = await api(`/api/conversations/${key}/uploads/`, { method: "POST", form });
      thread(key).records.delete(placeholder.key);
      const msgType = SAFE_IMAGE_TYPES.has(content.mime) ? "image" : "file";
      if (state.openKey === key) sendMessage({ msg_type: msgType, content });
    } catch (error) {
      placeholder.status = "failed";
      toast(error.status === 413 ? `${file.name} is too large.` : `Upload failed: ${error.message}`);
      renderMessages();
    }
  }
}

/** Messages still in the outbox (typed before a reload or offline) show as sending. */
function restoreOutbox() {
  for (const entry of client.outbox) {
    const record = optimisticRecord(entry);
    thread(record.conversation_id).records.set(record.key, record);
  }
}

// --- frames ---------------------------------------------------------------------------

function isOpenAndVisible(conversationId) {
  return String(state.openKey) === String(conversationId) && document.visibilityState === "visible";
}

function onMessage({ detail }) {
  const data = detail.data;
  const own = data.sender_id === state.me.id;
  const record = putMessage(recordFromMessage(data, own ? "sent" : "received"));
  record.readByMe = own ? undefined : false;
  if (own) applyEarlyReceipts(record);
  const conversation = state.conversations.get(data.conversation_id);
  if (!conversation) refreshConversations();
  else {
    if (!conversation.last_message || conversation.last_message.created_at <= data.created_at) {
      conversation.last_message = data;
    }
    // Replayed items may already be in the counts loaded over REST; `replayed` reloads them.
    if (!own && !detail.replayed && !isOpenAndVisible(data.conversation_id)) {
      conversation.unread_count = (conversation.unread_count || 0) + 1;
    }
  }
  if (String(state.openKey) === String(data.conversation_id)) {
    renderMessages();
    markRead();
  }
  renderSidebar({ onOpen: navigateTo });
  if (!own && !detail.replayed) {
    const from = personName(data.sender_id);
    const title = conversation?.kind === "group" ? `${from} in ${titleOf(conversation)}` : from;
    notifyIfHidden({ title, body: previewText(data), tag: `msg:${data.msg_id}`, conversationId: data.conversation_id });
  }
}

function onSent({ detail }) {
  if (!detail.entry) return;
  const key = conversationKeyOf(detail.entry.frame);
  const t = thread(key);
  const record = t.records.get(detail.client_msg_id) || optimisticRecord(detail.entry);
  t.records.delete(detail.client_msg_id);
  record.msg_id = detail.msg_id;
  record.key = detail.msg_id;
  record.created_at = detail.created_at;
  upgradeStatus(record, "sent");
  if (!t.records.has(record.key)) t.records.set(record.key, record);
  state.byMsgId.set(record.msg_id, t.records.get(record.key));
  applyEarlyReceipts(t.records.get(record.key));
  const conversation = state.conversations.get(Number(key));
  if (conversation && conversation.last_message?.client_msg_id === detail.client_msg_id) {
    conversation.last_message = { ...conversation.last_message, msg_id: detail.msg_id, created_at: detail.created_at };
  }
  if (String(key).startsWith("u:")) refreshConversations();
  if (String(state.openKey) === String(key)) renderMessages();
}

function onFailed({ detail }) {
  const key = conversationKeyOf(detail.entry.frame);
  const record = thread(key).records.get(detail.entry.client_msg_id);
  if (record) record.status = "failed";
  toast(`Not sent: ${detail.error.detail}`);
  if (String(state.openKey) === String(key)) renderMessages();
}

/** Receipts for a message this page did not know yet, applied once it does. */
function applyEarlyReceipts(record) {
  const early = earlyReceipts.get(record.msg_id);
  if (!early) return;
  earlyReceipts.delete(record.msg_id);
  for (const { status, user_id } of early) {
    if (status === "read") record.readers.add(user_id);
    upgradeStatus(record, status);
  }
}

function keepEarlyReceipt(msgId, status, userId) {
  if (!earlyReceipts.has(msgId) && earlyReceipts.size >= EARLY_RECEIPTS_KEPT) {
    earlyReceipts.delete(earlyReceipts.keys().next().value);
  }
  earlyReceipts.set(msgId, [...(earlyReceipts.get(msgId) || []), { status, user_id: userId }]);
}

/** After a reconnect: receipts sent while this page was offline are gone, so the ticks of
 * the open conversation come from its history again. */
async function refreshTicks() {
  const key = state.openKey;
  if (key === null || String(key).startsWith("u:")) return;
  const page = await api(`/api/conversations/${key}/messages/?page_size=${PAGE_SIZE}`).catch(() => null);
  if (!page) return;
  for (const data of page.results) {
    const record = state.byMsgId.get(data.msg_id);
    if (!record || record.sender_id !== state.me.id || !data.delivery) continue;
    upgradeStatus(record, historyStatus(data.delivery));
    record.readCount = Math.max(record.readCount || 0, data.delivery.read - record.readers.size);
  }
  if (state.openKey === key) renderMessages();
}

function onReplayed() {
  refreshConversations();
  if (replays++ > 0) refreshTicks();
}

function onReceipt({ detail }) {
  if (detail.notification_ids) {
    if (detail.user_id === state.me.id) notificationsRead(detail.notification_ids);
    return;
  }
  if (detail.user_id === state.me.id) {
    // Read on another device of ours: the server has the new unread counts.
    for (const id of detail.msg_ids) {
      const record = state.byMsgId.get(id);
      if (record) record.readByMe = true;
    }
    return refreshConversations();
  }
  let changed = false;
  for (const id of detail.msg_ids) {
    const record = state.byMsgId.get(id);
    if (!record) keepEarlyReceipt(id, detail.status, detail.user_id);
    if (!record || record.sender_id !== state.me.id) continue;
    if (detail.status === "read") record.readers.add(detail.user_id);
    upgradeStatus(record, detail.status);
    changed = changed || String(record.conversation_id) === String(state.openKey);
  }
  if (changed) renderMessages();
}

function onPresence({ detail }) {
  const person = state.people.get(detail.user_id) || { id: detail.user_id, username: "" };
  state.people.set(detail.user_id, { ...person, online: detail.online });
  renderSidebar({ onOpen: navigateTo });
  if (state.openKey !== null) renderHeader();
}

function onTyping({ detail }) {
  if (detail.user_id === state.me.id) return;
  const typers = state.typing.get(detail.conversation_id) || new Map();
  typers.set(detail.user_id, Date.now() + TYPING_SHOWN_MS);
  state.typing.set(detail.conversation_id, typers);
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 100);
}

function onConversation({ detail }) {
  const { event, data } = detail;
  if (event === "member_removed" && !data.member_ids.includes(state.me.id)) {
    state.conversations.delete(data.id);
    if (String(state.openKey) === String(data.id)) {
      toast(`You are no longer a member of ${data.title || "this group"}.`);
      history.replaceState(null, "", "#");
      closeConversation();
    }
  }
  refreshConversations();
}

function onNotification({ detail }) {
  const n = detail.data;
  if (addNotification(n) && !detail.replayed) {
    notifyIfHidden({ title: n.title, body: n.content, tag: `ntf:${n.id}` });
  }
}

const STATE_TEXT = {
  connecting: () => "Connecting…",
  open: () => "Connected",
  waiting: (d) => `Offline. Reconnecting in ${Math.max(1, Math.round(d.retryInMs / 1000))} s…`,
  closed: () => "Signed out",
};

function onState({ detail }) {
  const el = $("connection-state");
  el.dataset.state = detail.state;
  el.textContent = STATE_TEXT[detail.state](detail);
}

async function onTruncated() {
  // Items were purged before this device caught up: history over REST is the truth.
  state.threads.clear();
  state.byMsgId.clear();
  restoreOutbox();
  await loadConversations();
  if (state.openKey !== null) openConversation(state.openKey);
}

function wireClient() {
  const handlers = {
    message: onMessage,
    sent: onSent,
    failed: onFailed,
    receipt: onReceipt,
    presence: onPresence,
    typing: onTyping,
    conversation: onConversation,
    notification: onNotification,
    state: onState,
    truncated: onTruncated,
    replayed: onReplayed,
    authlost: () => location.assign("/login/?next=/chat/"),
    error: ({ detail }) => {
      if (!detail.ref && detail.code !== "rate_limited") console.warn("IMS error", detail);
    },
  };
  for (const [type, handler] of Object.entries(handlers)) client.addEventListener(type, handler);
}

async function sessionAlive() {
  const response = await fetch("/api/ws-ticket/", {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  return response.status !== 401 && response.status !== 403;
}

/** Who is online right now; `presence` frames keep it current from here on. */
async function loadPresence() {
  const people = await optionalApi("/api/users/?q=").catch(() => null);
  if (!Array.isArray(people)) return;
  rememberPeople(people);
  renderSidebar({ onOpen: navigateTo });
  if (state.openKey !== null) renderHeader();
}

// --- page -----------------------------------------------------------------------------

function wirePage() {
  $("conversation-filter").addEventListener("input", (event) => {
    state.filter = event.target.value;
    renderSidebar({ onOpen: navigateTo });
  });
  $("back-button").addEventListener("click", () => {
    history.replaceState(null, "", "#");
    closeConversation();
  });
  $("messages").addEventListener("scroll", (event) => {
    if (event.target.scrollTop < LOAD_OLDER_WITHIN_PX && thread(state.openKey).next) loadOlder();
  });
  window.addEventListener("hashchange", () => openConversation(keyFromHash()));
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
  window.addEventListener("online", () => client.reconnectNow());
  window.addEventListener("ims:signedout", () => location.assign("/login/?next=/chat/"));
  window.addEventListener("resize", keepBottom);
  const me = $("me-button");
  me.addEventListener("click", () => {
    const menu = $("me-menu");
    menu.hidden = !menu.hidden;
    me.setAttribute("aria-expanded", String(!menu.hidden));
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".menu")) $("me-menu").hidden = true;
  });
  setInterval(renderTyping, 1000);
}

async function boot() {
  const data = document.body.dataset;
  state.me = { id: Number(data.userId), username: data.username, displayName: data.displayName };
  state.maxUploadBytes = Number(data.maxUploadBytes);
  rememberPeople([{ id: state.me.id, username: state.me.username, display_name: state.me.displayName }]);
  paintAvatar($("me-avatar"), state.me.displayName, state.me.id);
  client = new IMSClient({ userKey: state.me.id, checkAuth: sessionAlive });
  wireClient();
  wirePage();
  initComposer({
    onSend: (text, mentions) => sendMessage({ msg_type: "text", content: text, mentions }),
    onFiles: uploadFiles,
    onTyping: () => {
      if (!String(state.openKey).startsWith("u:")) client.typing(Number(state.openKey));
    },
  });
  initPeople({
    onOpenDirect: (person) => {
      const existing = directWith(person.id);
      navigateTo(existing ? existing.id : `u:${person.id}`);
    },
    onCreated: async (summary) => {
      state.conversations.set(summary.id, summary);
      rememberPeople(summary.members);
      navigateTo(summary.id);
    },
    onChanged: loadConversations,
  });
  initBell({ readOverWs: (ids) => client.read({ notificationIds: ids }) });
  restoreOutbox();
  await loadConversations();
  client.start();
  openConversation(keyFromHash());
  loadPresence();
  loadNotifications();
  initNotify();
}

boot().catch((error) => toast(`IMS could not start: ${error.message}`));

// What the page does with each event of the protocol client: frames change `state`, and
// the views redraw from it.

import { addNotification } from "./bell.js";
import { loadConversations, refreshConversations } from "./conversations.js";
import { $, toast } from "./dom.js";
import { markRead, refreshTicks } from "./history.js";
import { closeConversation, openConversation } from "./navigation.js";
import { notifyIfHidden } from "./notify.js";
import { renderHeader, renderMessages, renderTyping } from "./pane.js";
import { applyEarlyReceipts, onReceipt } from "./receipts.js";
import { optimisticRecord, restoreOutbox } from "./sending.js";
import { previewText, renderSidebar } from "./sidebar.js";
import { conversationKeyOf, personName, putMessage, recordFromMessage, state, thread, titleOf, upgradeStatus } from "./store.js";

const TYPING_SHOWN_MS = 6000;
const STATE_TEXT = {
  connecting: () => "Connecting…",
  open: () => "Connected",
  waiting: (d) => `Offline. Reconnecting in ${Math.max(1, Math.round(d.retryInMs / 1000))} s…`,
  closed: () => "Signed out",
};

let replays = 0;

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
  renderSidebar();
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

function onReplayed() {
  refreshConversations();
  if (replays++ > 0) refreshTicks();
}

function onPresence({ detail }) {
  const person = state.people.get(detail.user_id) || { id: detail.user_id, username: "" };
  state.people.set(detail.user_id, { ...person, online: detail.online });
  renderSidebar();
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

export function wireClient(client) {
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

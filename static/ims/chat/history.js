// The open conversation's messages over REST: older pages on demand, ticks after a
// reconnect, and marking what the user sees as read.

import { api } from "./api.js";
import { client } from "./connection.js";
import { toast } from "./dom.js";
import { currentConversation, renderMessages } from "./pane.js";
import { renderSidebar } from "./sidebar.js";
import { putMessage, recordFromMessage, state, thread, upgradeStatus } from "./store.js";

const PAGE_SIZE = 50;

/** The tick of an own message from its history `delivery`: read or delivered once every
 * recipient has it (in a group, read as soon as one member has read it: "Read by N"). */
function historyStatus(delivery) {
  if (!delivery || delivery.recipients === 0) return "sent";
  const group = delivery.recipients > 1;
  if (delivery.read === delivery.recipients || (group && delivery.read > 0)) return "read";
  if (delivery.delivered === delivery.recipients) return "delivered";
  return "sent";
}

export async function loadOlder() {
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
export function markRead() {
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
    renderSidebar();
  }
}

/** After a reconnect: receipts sent while this page was offline are gone, so the ticks of
 * the open conversation come from its history again. */
export async function refreshTicks() {
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

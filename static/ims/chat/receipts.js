// Receipts: ticks on our own messages (delivered, read by whom), and reads on our other
// devices. A receipt is a hint sent once, so one that overtakes its message's `sent`
// waits here until the page knows the message.

import { notificationsRead } from "./bell.js";
import { refreshConversations } from "./conversations.js";
import { renderMessages } from "./pane.js";
import { state, upgradeStatus } from "./store.js";

const EARLY_RECEIPTS_KEPT = 500;

const earlyReceipts = new Map(); // msg_id -> [{status, user_id}]

/** Receipts for a message this page did not know yet, applied once it does. */
export function applyEarlyReceipts(record) {
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

export function onReceipt({ detail }) {
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

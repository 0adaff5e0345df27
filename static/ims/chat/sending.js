// Sending from this page: a message shows at once as "sending" (its outbox entry), files
// are uploaded first, and what the outbox still holds after a reload is drawn again.

import { api } from "./api.js";
import { client } from "./connection.js";
import { toast } from "./dom.js";
import { renderMessages } from "./pane.js";
import { renderSidebar } from "./sidebar.js";
import { conversationKeyOf, state, thread } from "./store.js";

const SAFE_IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

function target(key) {
  return String(key).startsWith("u:") ? { to: Number(String(key).slice(2)) } : { conversation_id: Number(key) };
}

/** The record of a message in the outbox, until its `sent` arrives. */
export function optimisticRecord(entry) {
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

export function sendMessage(message) {
  const key = state.openKey;
  const entry = client.send({ ...target(key), ...message });
  const record = optimisticRecord(entry);
  thread(key).records.set(record.key, record);
  const conversation = state.conversations.get(Number(key));
  if (conversation) conversation.last_message = { ...record, created_at: entry.queued_at };
  renderMessages({ toBottom: true });
  renderSidebar();
}

export async function uploadFiles(files) {
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
export function restoreOutbox() {
  for (const entry of client.outbox) {
    const record = optimisticRecord(entry);
    thread(record.conversation_id).records.set(record.key, record);
  }
}

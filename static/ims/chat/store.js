// The chat page's state: conversations, messages, people. Plain data and small functions;
// rendering modules read it, app.js changes it and asks them to redraw.

const STATUS_ORDER = ["failed", "uploading", "sending", "sent", "delivered", "read"];

export const state = {
  me: null, // {id, username, displayName}
  conversations: new Map(), // id -> the REST summary, kept current by frames
  threads: new Map(), // conversation key (id, or "u:<peer>" before a first message) -> Thread
  people: new Map(), // user id -> {id, username, display_name, online?}
  byMsgId: new Map(), // msg_id -> message record, for receipts
  openKey: null,
  typing: new Map(), // conversation id -> Map(user id -> expiry ms)
  filter: "",
};

export class Thread {
  constructor() {
    this.records = new Map(); // record key (msg_id, or client_msg_id while sending) -> record
    this.next = undefined; // undefined: never loaded; null: no older page; else the URL
    this.loading = false;
  }

  sorted() {
    return [...this.records.values()].sort(compareRecords);
  }
}

function compareRecords(a, b) {
  // msg_ids are UUIDv7: they sort by creation time. Messages not yet stored come last.
  if (a.msg_id && b.msg_id) return a.msg_id < b.msg_id ? -1 : a.msg_id > b.msg_id ? 1 : 0;
  if (a.msg_id) return -1;
  if (b.msg_id) return 1;
  return a.created_at < b.created_at ? -1 : 1;
}

export function thread(key) {
  if (!state.threads.has(key)) state.threads.set(key, new Thread());
  return state.threads.get(key);
}

/** A message record from REST or a `message` frame's data. */
export function recordFromMessage(data, status) {
  return {
    key: data.msg_id,
    msg_id: data.msg_id,
    client_msg_id: data.client_msg_id,
    conversation_id: data.conversation_id,
    sender_id: data.sender_id,
    msg_type: data.msg_type,
    content: data.content,
    mentions: data.mentions || [],
    created_at: data.created_at,
    status,
    readers: new Set(),
  };
}

/** Adds a stored message to its thread, replacing the optimistic copy with its client_msg_id. */
export function putMessage(record) {
  const t = thread(record.conversation_id);
  const existing = t.records.get(record.msg_id);
  if (existing) return existing;
  if (record.sender_id === state.me.id) t.records.delete(record.client_msg_id);
  t.records.set(record.key, record);
  state.byMsgId.set(record.msg_id, record);
  return record;
}

/** Moves a status forward only (a late `delivered` never undoes `read`). */
export function upgradeStatus(record, status) {
  if (STATUS_ORDER.indexOf(status) > STATUS_ORDER.indexOf(record.status)) record.status = status;
}

export function conversationKeyOf(frame) {
  if (frame.conversation_id !== undefined) return frame.conversation_id;
  const direct = directWith(frame.to);
  return direct ? direct.id : `u:${frame.to}`;
}

export function directWith(userId) {
  for (const c of state.conversations.values()) {
    if (c.kind === "direct" && c.members.some((m) => m.id === userId)) return c;
  }
  return null;
}

export function otherMembers(conversation) {
  return conversation.members.filter((m) => m.id !== state.me.id);
}

export function titleOf(conversation) {
  if (conversation.kind === "group") return conversation.title || "Group";
  const peer = otherMembers(conversation)[0];
  return peer ? peer.display_name || peer.username : "Only you";
}

export function personName(userId) {
  if (userId === state.me.id) return state.me.displayName;
  const person = state.people.get(userId);
  return person ? person.display_name || person.username : `User ${userId}`;
}

export function rememberPeople(members) {
  for (const m of members) {
    const known = state.people.get(m.id) || {};
    state.people.set(m.id, { ...known, ...m });
  }
}

/** Latest activity first: the last message, or the creation of an empty conversation. */
export function sortedConversations() {
  const activity = (c) => c.last_message?.created_at || c.created_at;
  return [...state.conversations.values()].sort((a, b) => (activity(a) < activity(b) ? 1 : -1));
}

export function isOnline(userId) {
  return state.people.get(userId)?.online;
}

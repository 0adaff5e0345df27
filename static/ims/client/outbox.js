// Messages sent but not yet confirmed by a `sent`: kept in storage so they survive a
// reload, and sent again with the same client_msg_id until the server answers (it stores
// and delivers a retried send once).

/** A random UUID; crypto.randomUUID exists only on https and localhost pages. */
export function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The `send` frame of a message: to a user (`to`) or into a conversation. */
export function sendFrame({ to, conversation_id, msg_type = "text", content, mentions }, clientMsgId) {
  const frame = { type: "send", client_msg_id: clientMsgId, msg_type, content };
  if (conversation_id !== undefined) frame.conversation_id = conversation_id;
  else frame.to = to;
  if (mentions?.length) frame.mentions = mentions;
  return frame;
}

export class Outbox {
  /** @param {import("./stored-state.js").StoredState} state */
  constructor(state) {
    this.state = state;
  }

  /** Entries {client_msg_id, frame, queued_at}, oldest first, of every tab of this user. */
  get entries() {
    return this.state.outbox;
  }

  /** Keeps a new message; `queuedAt` is a time in ms. */
  add(message, queuedAt) {
    const clientMsgId = newClientMsgId();
    const entry = { client_msg_id: clientMsgId, frame: sendFrame(message, clientMsgId), queued_at: new Date(queuedAt).toISOString() };
    this.state.outbox = [...this.state.outbox, entry];
    return entry;
  }

  find(clientMsgId) {
    return this.state.outbox.find((e) => e.client_msg_id === clientMsgId);
  }

  /** Removes the entry and returns it, or undefined when no tab of ours sent it. */
  take(clientMsgId) {
    const entries = this.state.outbox;
    const entry = entries.find((e) => e.client_msg_id === clientMsgId);
    if (entry) this.state.outbox = entries.filter((e) => e !== entry);
    return entry;
  }
}

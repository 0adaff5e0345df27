// The IMS protocol client (PROTOCOL.md, docs/client.md): one reusable ES module, no DOM.
//
// It owns the delivery guarantee on the client side: resume with last_seq, ack after the
// application has handled an item, dedupe by seq and msg_id, sync on a gap, an outbox that
// survives reloads and retries with the same client_msg_id, heartbeats, and reconnects with
// backoff and jitter. The application listens to events and renders; it never acks.

const PROTOCOL = 1;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
// A server that says nothing for this many heartbeats is gone (a dead TCP path sends no FIN).
const SILENT_HEARTBEATS = 2.5;
// Errors after which resending the same frame cannot succeed.
const PERMANENT_SEND_ERRORS = new Set(["bad_request", "forbidden", "not_found", "too_large"]);
const SEEN_MSG_IDS_KEPT = 5000;
const RETRY_OUTBOX_MS = 5000;
// Live items kept while a replay runs; past this many a `sync` after it reads the rest.
const HELD_LIVE_ITEMS_KEPT = 1000;

/** A random UUID; crypto.randomUUID exists only on https and localhost pages. */
export function newClientMsgId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** ws(s)://<this host>/ws/ for a page served by IMS itself. */
export function defaultUrl(location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/`;
}

/** Full-jitter exponential backoff: a random delay up to min(max, first * 2^attempt). */
export function backoffDelay(attempt, { firstMs = BACKOFF_FIRST_MS, maxMs = BACKOFF_MAX_MS } = {}) {
  const ceiling = Math.min(maxMs, firstMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** The value of the csrftoken cookie, for REST writes with a session. */
export function csrfToken(cookie = globalThis.document?.cookie ?? "") {
  const match = cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** Persistent client state in localStorage (or any Storage), one namespace per user. */
class ClientState {
  constructor(storage, prefix) {
    this.storage = storage;
    this.prefix = prefix;
  }

  read(name, fallback) {
    try {
      const raw = this.storage?.getItem(`${this.prefix}:${name}`);
      return raw === null || raw === undefined ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  }

  write(name, value) {
    try {
      this.storage?.setItem(`${this.prefix}:${name}`, JSON.stringify(value));
    } catch {
      // Storage full or disabled (private mode): the session still works, only without resume.
    }
  }

  get lastSeq() {
    return this.read("last_seq", null);
  }

  // Tabs of one user share the value; the highest wins, as every seq up to it was handled
  // (and acked) by some tab.
  set lastSeq(seq) {
    if (seq > (this.lastSeq ?? -1)) this.write("last_seq", seq);
  }

  get outbox() {
    return this.read("outbox", []);
  }

  set outbox(entries) {
    this.write("outbox", entries);
  }
}

/**
 * Events (CustomEvent, payload in `detail`):
 *   state        {state: "connecting"|"open"|"waiting"|"closed", retryInMs?, reason?}
 *   hello        the hello frame
 *   message      {seq, data, replayed}  a chat message (deduped by seq and msg_id)
 *   notification {seq, data, replayed}
 *   conversation {seq, event, data, replayed}
 *   sent         the sent frame, plus `entry` (the outbox entry it answers)
 *   failed       {entry, error}  a send the server refused for good
 *   receipt, presence, typing, error   the frames as they are
 *   truncated    replay lost items: reload history over REST
 *   replayed     a replay finished (more: false)
 *   authlost     credentials are gone (close 4403 or a refused handshake): go to login
 */
export class IMSClient extends EventTarget {
  /**
   * @param {object} options
   * @param {number|string} options.userKey  namespaces the stored state (e.g. the user id)
   * @param {string} [options.url]  the WebSocket URL, default ws(s)://<host>/ws/
   * @param {() => Promise<string>} [options.getTicket]  connect with ?ticket= from this
   *   (e.g. POST /api/ws-ticket/); it throws an error with `authLost = true` when the
   *   credentials are gone. Without it the browser's session cookie is used.
   * @param {() => Promise<boolean>} [options.checkAuth]  called when a cookie handshake
   *   fails: false means the session is gone (no more reconnects).
   * @param {Storage} [options.storage]  default localStorage
   */
  constructor({ userKey, url = defaultUrl(), getTicket, checkAuth, storage = globalThis.localStorage }) {
    super();
    this.url = url;
    this.getTicket = getTicket;
    this.checkAuth = checkAuth;
    this.state = new ClientState(storage, `ims:${userKey}`);
    this.status = "closed";
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.lastSeq = this.state.lastSeq; // null: this device never connected
    this.handledSeqs = new Set(); // seqs handled in a pending-only replay, which may jump
    this.seenMsgIds = new Set();
    this.replaying = false;
    this.syncing = false;
    this.heldLive = []; // live items that came while a replay ran
    this.heldOverflow = false;
    this.pendingAcks = [];
    this.timers = {};
  }

  // --- lifecycle ------------------------------------------------------------------------

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    this.ws?.close(1000);
    this.setStatus("closed");
  }

  async connect() {
    if (this.stopped) return;
    this.clearTimers();
    this.setStatus("connecting");
    let url;
    try {
      url = await this.connectUrl();
    } catch (error) {
      if (error.authLost) return this.authLost("credentials refused");
      return this.scheduleReconnect();
    }
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event) => this.onFrame(event.data);
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(event.code, opened);
    };
  }

  async connectUrl() {
    const params = new URLSearchParams();
    if (this.getTicket) params.set("ticket", await this.getTicket());
    if (this.lastSeq !== null) params.set("last_seq", String(this.lastSeq));
    const query = params.toString();
    return query ? `${this.url}?${query}` : this.url;
  }

  async onClose(code, opened) {
    this.clearTimers();
    this.replaying = false;
    this.syncing = false;
    this.heldLive = [];
    this.heldOverflow = false;
    if (this.stopped) return;
    if (code === 4403) return this.authLost("signed out");
    if (!opened && !this.getTicket && this.checkAuth) {
      // A refused handshake looks like any network failure (1006): ask over HTTP.
      const ok = await this.checkAuth().catch(() => true);
      if (!ok) return this.authLost("session expired");
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const delay = backoffDelay(this.attempt++);
    this.setStatus("waiting", { retryInMs: delay });
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect now (e.g. the browser came back online), skipping the backoff wait. */
  reconnectNow() {
    if (this.stopped || this.status === "open" || this.status === "connecting") return;
    this.attempt = 0;
    this.connect();
  }

  authLost(reason) {
    this.stopped = true;
    this.clearTimers();
    this.setStatus("closed", { reason });
    this.emit("authlost", { reason });
  }

  clearTimers() {
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    this.timers = {};
  }

  setStatus(state, extra = {}) {
    this.status = state;
    this.emit("state", { state, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  transmit(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // --- inbound --------------------------------------------------------------------------

  onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    this.armSilenceTimer();
    const handler = this.handlers[frame.type];
    if (handler) handler.call(this, frame);
    else this.emit(frame.type, frame);
  }

  armSilenceTimer() {
    clearTimeout(this.timers.silence);
    if (!this.heartbeatMs) return;
    this.timers.silence = setTimeout(() => this.ws?.close(4000), this.heartbeatMs * SILENT_HEARTBEATS);
  }

  handlers = {
    hello(frame) {
      if (frame.protocol !== PROTOCOL) console.warn("IMS: unexpected protocol", frame.protocol);
      this.attempt = 0;
      this.userId = frame.user_id;
      this.heartbeatMs = frame.heartbeat_s * 1000;
      this.helloLastSeq = frame.last_seq;
      this.replaying = true;
      this.armSilenceTimer();
      this.setStatus("open");
      this.emit("hello", frame);
    },
    offline_messages(frame) {
      if (frame.truncated) this.emit("truncated", {});
      this.handleItems(frame.items, { replayed: true });
      this.flushAcks();
      if (frame.more) return;
      this.replaying = false;
      this.syncing = false;
      // A pending-only replay skips acked items; everything up to hello.last_seq is now known.
      if (this.lastSeq === null || this.lastSeq < this.helloLastSeq) this.advanceTo(this.helloLastSeq);
      this.handledSeqs.clear();
      this.handleHeldLive();
      this.emit("replayed", {});
      // After the replay, so the seqs of the `sent` answers follow the replayed ones.
      this.flushOutbox();
    },
    message(frame) {
      this.handleLive([frame]);
    },
    notification(frame) {
      this.handleLive([frame]);
    },
    conversation(frame) {
      this.handleLive([frame]);
    },
    batch(frame) {
      this.handleLive(frame.items);
    },
    sent(frame) {
      const entry = this.removeFromOutbox(frame.client_msg_id);
      this.seenMsgIds.add(frame.msg_id);
      // `sent` stands for the sender's own copy: that seq is handled, in order.
      if (this.lastSeq !== null && frame.seq === this.lastSeq + 1) this.advanceTo(frame.seq);
      else if (this.lastSeq !== null && frame.seq > this.lastSeq + 1) this.requestSync();
      this.emit("sent", { ...frame, entry });
    },
    error(frame) {
      const entry = frame.ref && this.state.outbox.find((e) => e.client_msg_id === frame.ref);
      if (entry && PERMANENT_SEND_ERRORS.has(frame.code)) {
        this.removeFromOutbox(entry.client_msg_id);
        this.emit("failed", { entry, error: frame });
      } else if (entry) {
        // rate_limited or server_error: the same client_msg_id later is safe.
        this.timers.outbox = setTimeout(() => this.flushOutbox(), RETRY_OUTBOX_MS);
      }
      this.emit("error", frame);
    },
    ping() {
      this.transmit({ type: "pong" });
    },
  };

  handleLive(items) {
    if (this.replaying || this.syncing) {
      // The server holds live items until its replay ends, but a replay only reaches the
      // seq it started from: an item that overtook it anyway must not be lost. Those the
      // replay also brings are skipped by seq afterwards.
      if (this.heldLive.length < HELD_LIVE_ITEMS_KEPT) this.heldLive.push(...items);
      else this.heldOverflow = true;
      return;
    }
    const first = items[0]?.seq;
    if (this.lastSeq !== null && first > this.lastSeq + 1) return this.requestSync();
    this.handleItems(items, { replayed: false });
    this.flushAcks();
  }

  /** After a replay: the live items that came meanwhile, in seq order, each once. */
  handleHeldLive() {
    const held = this.heldLive.sort((a, b) => a.seq - b.seq);
    const overflow = this.heldOverflow;
    this.heldLive = [];
    this.heldOverflow = false;
    const fresh = held.filter((item, i) => (this.lastSeq === null || item.seq > this.lastSeq) && held[i - 1]?.seq !== item.seq);
    if (fresh.length) this.handleLive(fresh);
    if (overflow) this.requestSync();
  }

  /** The channel layer may drop an event: ask for everything after the last seq handled. */
  requestSync() {
    if (this.replaying || this.syncing) return;
    this.syncing = true;
    this.transmit({ type: "sync", after_seq: this.lastSeq });
  }

  handleItems(items, { replayed }) {
    for (const item of items) {
      const known = this.lastSeq !== null && item.seq <= this.lastSeq;
      if (!known && !this.handledSeqs.has(item.seq)) this.dispatchItem(item, replayed);
      this.handledSeqs.add(item.seq);
      if (this.lastSeq === null || item.seq > this.lastSeq) this.lastSeq = item.seq;
      // Ack every item handled, duplicates too: a repeated ack is harmless, a missing one
      // leaves the item pending (and stalls the replay).
      this.pendingAcks.push(item.seq);
    }
  }

  dispatchItem(item, replayed) {
    if (item.type === "message") {
      const msgId = item.data.msg_id;
      if (this.seenMsgIds.has(msgId)) return;
      this.rememberMsgId(msgId);
      // Our own message sent from this outbox and answered on a connection that died
      // before its `sent` arrived: the stream copy completes it.
      const entry = item.data.sender_id === this.userId && this.removeFromOutbox(item.data.client_msg_id);
      if (entry) this.emit("sent", { client_msg_id: entry.client_msg_id, msg_id: msgId, seq: item.seq, created_at: item.data.created_at, entry });
    }
    this.emit(item.type, { ...item, replayed });
  }

  rememberMsgId(msgId) {
    this.seenMsgIds.add(msgId);
    if (this.seenMsgIds.size > SEEN_MSG_IDS_KEPT) {
      this.seenMsgIds.delete(this.seenMsgIds.values().next().value);
    }
  }

  advanceTo(seq) {
    this.lastSeq = Math.max(this.lastSeq ?? 0, seq);
    this.state.lastSeq = this.lastSeq;
  }

  flushAcks() {
    if (!this.pendingAcks.length) return;
    if (this.transmit({ type: "ack", seqs: this.pendingAcks })) this.pendingAcks = [];
    // Handled means rendered: from here on a reload resumes after it.
    if (this.lastSeq !== null) this.state.lastSeq = this.lastSeq;
  }

  // --- outbound -------------------------------------------------------------------------

  /**
   * Queue a message: it is kept in storage until `sent` arrives, survives reloads, and is
   * retried with the same client_msg_id (the server stores and delivers it once).
   * @param {{to?: number, conversation_id?: number, msg_type?: string, content: any, mentions?: number[]}} message
   * @returns the outbox entry: {client_msg_id, frame, queued_at}
   */
  send({ to, conversation_id, msg_type = "text", content, mentions }) {
    const clientMsgId = newClientMsgId();
    const frame = { type: "send", client_msg_id: clientMsgId, msg_type, content };
    if (conversation_id !== undefined) frame.conversation_id = conversation_id;
    else frame.to = to;
    if (mentions?.length) frame.mentions = mentions;
    const entry = { client_msg_id: clientMsgId, frame, queued_at: new Date().toISOString() };
    this.state.outbox = [...this.state.outbox, entry];
    this.transmit(frame);
    return entry;
  }

  /** Messages typed here (or in another tab) that the server has not confirmed yet. */
  get outbox() {
    return this.state.outbox;
  }

  flushOutbox() {
    for (const entry of this.state.outbox) {
      if (!this.transmit(entry.frame)) return;
    }
  }

  removeFromOutbox(clientMsgId) {
    const entries = this.state.outbox;
    const entry = entries.find((e) => e.client_msg_id === clientMsgId);
    if (entry) this.state.outbox = entries.filter((e) => e !== entry);
    return entry;
  }

  read({ msgIds = [], notificationIds = [] }) {
    const frame = { type: "read" };
    if (msgIds.length) frame.msg_ids = msgIds;
    if (notificationIds.length) frame.notification_ids = notificationIds;
    if (frame.msg_ids || frame.notification_ids) return this.transmit(frame);
    return false;
  }

  typing(conversationId) {
    return this.transmit({ type: "typing", conversation_id: conversationId });
  }
}

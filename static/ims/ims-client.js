// The IMS protocol client (PROTOCOL.md, docs/client.md): one reusable ES module, no DOM.
//
// IMSClient owns the WebSocket: it connects (resuming after last_seq), answers heartbeats,
// notices a silent server, and reconnects with backoff until the credentials are gone.
// What crosses the socket goes through client/delivery.js, which keeps the delivery
// guarantee on the client's side: dedupe by seq and msg_id, sync on a gap, acks after the
// application handled an item, and an outbox that survives reloads and retries with the
// same client_msg_id. The application listens to events and renders; it never acks.

import { backoffDelay } from "./client/backoff.js";
import { Delivery } from "./client/delivery.js";
import { defaultUrl } from "./client/page.js";

export { backoffDelay } from "./client/backoff.js";
export { newClientMsgId } from "./client/outbox.js";
export { csrfToken, defaultUrl } from "./client/page.js";

const PROTOCOL = 1;
// A server that says nothing for this many heartbeats is gone (a dead TCP path sends no FIN).
const SILENT_HEARTBEATS = 2.5;

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
    this.delivery = new Delivery({
      userKey,
      storage,
      transmit: (frame) => this.transmit(frame),
      emit: (type, detail) => this.emit(type, detail),
    });
    this.status = "closed";
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.heartbeatMs = 0;
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
    this.delivery.connectionLost();
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
    if (this.delivery.lastSeq !== null) params.set("last_seq", String(this.delivery.lastSeq));
    const query = params.toString();
    return query ? `${this.url}?${query}` : this.url;
  }

  async onClose(code, opened) {
    this.clearTimers();
    this.delivery.connectionLost();
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
    if (frame.type === "hello") this.onHello(frame);
    else if (frame.type === "ping") this.transmit({ type: "pong" });
    else if (!this.delivery.receive(frame)) this.emit(frame.type, frame);
  }

  onHello(frame) {
    if (frame.protocol !== PROTOCOL) console.warn("IMS: unexpected protocol", frame.protocol);
    this.attempt = 0;
    this.heartbeatMs = frame.heartbeat_s * 1000;
    this.delivery.connected(frame);
    this.armSilenceTimer();
    this.setStatus("open");
    this.emit("hello", frame);
  }

  armSilenceTimer() {
    clearTimeout(this.timers.silence);
    if (!this.heartbeatMs) return;
    this.timers.silence = setTimeout(() => this.ws?.close(4000), this.heartbeatMs * SILENT_HEARTBEATS);
  }

  // --- outbound -------------------------------------------------------------------------

  /**
   * Queue a message: it is kept in storage until `sent` arrives, survives reloads, and is
   * retried with the same client_msg_id (the server stores and delivers it once).
   * @param {{to?: number, conversation_id?: number, msg_type?: string, content: any, mentions?: number[]}} message
   * @returns the outbox entry: {client_msg_id, frame, queued_at}
   */
  send(message) {
    return this.delivery.send(message);
  }

  /** Messages typed here (or in another tab) that the server has not confirmed yet. */
  get outbox() {
    return this.delivery.outbox.entries;
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

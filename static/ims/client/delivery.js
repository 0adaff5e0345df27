// The client's half of the delivery guarantee (PROTOCOL.md), without a socket: fed the
// server's frames, it dedupes items by seq and msg_id, asks for a `sync` on a gap, holds
// live items while a replay runs, acks what the application handled, keeps last_seq for
// resume, and owns the outbox. ims-client.js feeds it from the WebSocket; tests feed it
// frames directly, with their own transmit, storage and clock.

import { Outbox } from "./outbox.js";
import { StoredState } from "./stored-state.js";

// Errors after which resending the same frame cannot succeed.
const PERMANENT_SEND_ERRORS = new Set(["bad_request", "forbidden", "not_found", "too_large"]);
const SEEN_MSG_IDS_KEPT = 5000;
const RETRY_OUTBOX_MS = 5000;
// Live items kept while a replay runs; past this many a `sync` after it reads the rest.
const HELD_LIVE_ITEMS_KEPT = 1000;

export const systemClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer),
};

export class Delivery {
  /**
   * @param {object} options
   * @param {number|string} options.userKey  namespaces the stored state (`ims:<userKey>:…`)
   * @param {Storage} [options.storage]  where last_seq and the outbox live; none keeps nothing
   * @param {(frame: object) => boolean} options.transmit  sends a frame; false when no socket is open
   * @param {(type: string, detail: object) => void} options.emit  hands an event to the
   *   application; acks go out when it returns, so it must handle the item synchronously
   * @param {{now: () => number, setTimeout: Function, clearTimeout: Function}} [options.clock]
   */
  constructor({ userKey, storage, transmit, emit, clock = systemClock }) {
    this.state = new StoredState(storage, `ims:${userKey}`);
    this.outbox = new Outbox(this.state);
    this.transmit = transmit;
    this.emit = emit;
    this.clock = clock;
    this.userId = null;
    this.lastSeq = this.state.lastSeq; // null: this device never connected
    this.helloLastSeq = null;
    this.handledSeqs = new Set(); // seqs handled in a pending-only replay, which may jump
    this.seenMsgIds = new Set();
    this.replaying = false;
    this.syncing = false;
    this.heldLive = []; // live items that came while a replay ran
    this.heldOverflow = false;
    this.pendingAcks = [];
    this.retryTimer = null;
  }

  // --- connection -----------------------------------------------------------------------

  /** A handshake completed: the server replays next (PROTOCOL.md, Sync on connect). */
  connected(hello) {
    this.userId = hello.user_id;
    this.helloLastSeq = hello.last_seq;
    this.replaying = true;
  }

  /** The socket is gone: a replay in flight ends with it, and so does a pending retry. */
  connectionLost() {
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.replaying = false;
    this.syncing = false;
    this.heldLive = [];
    this.heldOverflow = false;
  }

  /** Handles a frame of the stream or the outbox; false for any other type. */
  receive(frame) {
    const handler = this.handlers[frame.type];
    if (!handler) return false;
    handler.call(this, frame);
    return true;
  }

  handlers = {
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
      const entry = this.outbox.take(frame.client_msg_id);
      this.seenMsgIds.add(frame.msg_id);
      // `sent` stands for the sender's own copy: that seq is handled, in order.
      if (this.lastSeq !== null && frame.seq === this.lastSeq + 1) this.advanceTo(frame.seq);
      else if (this.lastSeq !== null && frame.seq > this.lastSeq + 1) this.requestSync();
      this.emit("sent", { ...frame, entry });
    },
    error(frame) {
      const entry = frame.ref && this.outbox.find(frame.ref);
      if (entry && PERMANENT_SEND_ERRORS.has(frame.code)) {
        this.outbox.take(entry.client_msg_id);
        this.emit("failed", { entry, error: frame });
      } else if (entry) {
        // rate_limited or server_error: the same client_msg_id later is safe.
        this.clock.clearTimeout(this.retryTimer);
        this.retryTimer = this.clock.setTimeout(() => this.flushOutbox(), RETRY_OUTBOX_MS);
      }
      this.emit("error", frame);
    },
  };

  // --- items ----------------------------------------------------------------------------

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
      const entry = item.data.sender_id === this.userId && this.outbox.take(item.data.client_msg_id);
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

  // --- outbox ---------------------------------------------------------------------------

  /** Keeps a message in the outbox and sends it if a socket is open; returns the entry. */
  send(message) {
    const entry = this.outbox.add(message, this.clock.now());
    this.transmit(entry.frame);
    return entry;
  }

  flushOutbox() {
    for (const entry of this.outbox.entries) {
      if (!this.transmit(entry.frame)) return;
    }
  }
}

// A Delivery (static/ims/client/delivery.js) under test, in the browser, with no socket:
// the test hands it frames and reads back one log of what it transmitted and emitted, in
// the order it did. Storage is the page's localStorage (a reload keeps it); the clock
// moves only when the test says so. Served to the test page by tests/browser/test_client_delivery.py.

import { Delivery } from "/static/ims/client/delivery.js";

class ManualClock {
  constructor() {
    this.ms = Date.parse("2025-03-01T09:00:00Z");
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.ms;
  }

  setTimeout(callback, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.ms + ms, callback });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Moves time forward, running each timer that comes due, earliest first. */
  advance(ms) {
    const until = this.ms + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= until).sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.timers.delete(id);
      this.ms = timer.at;
      timer.callback();
    }
    this.ms = until;
  }
}

export class DeliveryHarness {
  constructor({ userKey }) {
    this.log = [];
    this.online = true;
    this.clock = new ManualClock();
    this.delivery = new Delivery({
      userKey,
      storage: localStorage,
      clock: this.clock,
      transmit: (frame) => {
        if (!this.online) return false;
        this.log.push(["transmit", structuredClone(frame)]);
        return true;
      },
      emit: (type, detail) => this.log.push(["emit", type, structuredClone(detail)]),
    });
  }

  /** The log so far, emptied. */
  take() {
    const log = this.log;
    this.log = [];
    return log;
  }
}

// What the client keeps across reloads, in localStorage (or any Storage), one namespace per
// user: the last seq handled and the outbox. Tabs of one user share both.

export class StoredState {
  /**
   * @param {Storage|null|undefined} storage  none (or a failing one) keeps nothing
   * @param {string} prefix  e.g. "ims:42"
   */
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

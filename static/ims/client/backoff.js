// How long to wait before the next reconnect.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** Exponential backoff with jitter: a random delay between half and all of
 * min(max, first * 2^attempt), so clients dropped together do not return together. */
export function backoffDelay(attempt, { firstMs = BACKOFF_FIRST_MS, maxMs = BACKOFF_MAX_MS } = {}) {
  const ceiling = Math.min(maxMs, firstMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

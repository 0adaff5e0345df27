// What the client reads from the page it runs in: where the WebSocket is, and the CSRF
// token of the session for REST writes.

/** ws(s)://<this host>/ws/ for a page served by IMS itself. */
export function defaultUrl(location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/`;
}

/** The value of the csrftoken cookie, for REST writes with a session. */
export function csrfToken(cookie = globalThis.document?.cookie ?? "") {
  const match = cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

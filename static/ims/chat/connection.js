// The page's one protocol client (../ims-client.js), made at boot. Modules that send over
// the WebSocket import `client` from here.

import { csrfToken, IMSClient } from "../ims-client.js";

export let client = null;

/** Whether the session cookie still signs us in: asked when a handshake fails. */
async function sessionAlive() {
  const response = await fetch("/api/ws-ticket/", {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  return response.status !== 401 && response.status !== 403;
}

export function createClient(userId) {
  client = new IMSClient({ userKey: userId, checkAuth: sessionAlive });
  return client;
}

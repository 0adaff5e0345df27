// REST calls of the chat page: JSON in and out, the session cookie, CSRF on every write.

import { csrfToken } from "../ims-client.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * api("/api/conversations/", {method: "POST", json: {...}}) or {form: FormData}.
 * Resolves to the parsed body (null for 204); rejects with ApiError.
 */
export async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 || response.status === 403) {
    if (!data?.code) window.dispatchEvent(new CustomEvent("ims:signedout"));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Like api(), but an endpoint that does not exist yet (404 without a code) gives null. */
export async function optionalApi(path, options) {
  try {
    return await api(path, options);
  } catch (error) {
    if (error.status === 404 && !error.body?.code) return null;
    throw error;
  }
}

// The conversation list from REST: loaded at boot, reloaded (debounced) whenever a frame
// says the server's view changed, plus who is online.

import { api, optionalApi } from "./api.js";
import { closeConversation, navigateTo } from "./navigation.js";
import { renderHeader } from "./pane.js";
import { renderSidebar } from "./sidebar.js";
import { directWith, rememberPeople, state, thread } from "./store.js";

const REFRESH_DELAY_MS = 250;

let refreshTimer = null;

export async function loadConversations() {
  const list = await api("/api/conversations/");
  for (const c of list) {
    // A frame may have brought a newer message while this answer was on its way.
    const local = state.conversations.get(c.id)?.last_message;
    if (local && (!c.last_message || local.created_at > c.last_message.created_at)) c.last_message = local;
  }
  state.conversations = new Map(list.map((c) => [c.id, c]));
  for (const c of list) rememberPeople(c.members);
  adoptDraftThreads();
  // The open conversation is being read; the server's count may predate our `read`.
  const open = state.conversations.get(Number(state.openKey));
  if (open && document.visibilityState === "visible") open.unread_count = 0;
  if (state.openKey !== null && !String(state.openKey).startsWith("u:") && !state.conversations.has(Number(state.openKey))) {
    closeConversation();
  }
  renderSidebar();
  if (state.openKey !== null) renderHeader();
}

/** The server's view (titles, members, unread counts) after anything it announced. */
export function refreshConversations() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadConversations().catch(() => {}), REFRESH_DELAY_MS);
}

/** A first message to someone opened a direct conversation: move the draft thread into it. */
function adoptDraftThreads() {
  for (const [key, draft] of state.threads) {
    if (!String(key).startsWith("u:")) continue;
    const conversation = directWith(Number(String(key).slice(2)));
    if (!conversation) continue;
    const target = thread(conversation.id);
    for (const record of draft.records.values()) {
      record.conversation_id = conversation.id;
      if (!target.records.has(record.key)) target.records.set(record.key, record);
    }
    state.threads.delete(key);
    if (state.openKey === key) navigateTo(conversation.id, { replace: true });
  }
}

/** Who is online right now; `presence` frames keep it current from here on. */
export async function loadPresence() {
  const people = await optionalApi("/api/users/?q=").catch(() => null);
  if (!Array.isArray(people)) return;
  rememberPeople(people);
  renderSidebar();
  if (state.openKey !== null) renderHeader();
}

// Which conversation is open: the URL hash (#c=<id>, or #u=<user id> before a first
// message to someone) decides, and opening one draws the pane.

import { loadDraft } from "./composer.js";
import { $ } from "./dom.js";
import { loadOlder, markRead } from "./history.js";
import { renderHeader, renderMessages, renderTyping } from "./pane.js";
import { renderSidebar } from "./sidebar.js";
import { state, thread } from "./store.js";

export function navigateTo(key, { replace = false } = {}) {
  const hash = String(key).startsWith("u:") ? `#u=${String(key).slice(2)}` : `#c=${key}`;
  if (replace) history.replaceState(null, "", hash);
  else if (location.hash !== hash) location.hash = hash;
  openConversation(key);
}

export function keyFromHash() {
  const match = location.hash.match(/^#([cu])=(\d+)$/);
  if (!match) return null;
  return match[1] === "c" ? Number(match[2]) : `u:${match[2]}`;
}

export function openConversation(key) {
  if (key === null) return closeConversation();
  state.openKey = key;
  document.body.classList.add("pane-open");
  $("pane-empty").hidden = true;
  $("conversation").hidden = false;
  renderHeader();
  loadDraft(key);
  renderTyping();
  const t = thread(key);
  if (t.next === undefined && !String(key).startsWith("u:")) loadOlder();
  else if (String(key).startsWith("u:")) t.next = null;
  renderMessages({ toBottom: true });
  markRead();
  renderSidebar();
  if (window.matchMedia("(min-width: 721px)").matches) $("composer-input").focus();
}

export function closeConversation() {
  state.openKey = null;
  document.body.classList.remove("pane-open");
  $("pane-empty").hidden = false;
  $("conversation").hidden = true;
  renderSidebar();
}

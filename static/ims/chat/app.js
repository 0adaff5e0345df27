// The chat page's entry point: makes the protocol client, wires the page's controls, and
// starts. The modules beside it each own one part: connection (the client), stream-events
// (what each event changes), conversations (the list), navigation (which one is open),
// history (its messages over REST), sending, receipts, and the views (sidebar, pane,
// composer, people, bell, notify) drawing from store.js.

import { initBell, loadNotifications } from "./bell.js";
import { initComposer } from "./composer.js";
import { createClient } from "./connection.js";
import { loadConversations, loadPresence } from "./conversations.js";
import { $, paintAvatar, toast } from "./dom.js";
import { loadOlder, markRead } from "./history.js";
import { closeConversation, keyFromHash, navigateTo, openConversation } from "./navigation.js";
import { initNotify } from "./notify.js";
import { keepBottom, renderTyping } from "./pane.js";
import { initPeople } from "./people.js";
import { restoreOutbox, sendMessage, uploadFiles } from "./sending.js";
import { initSidebar, renderSidebar } from "./sidebar.js";
import { directWith, rememberPeople, state, thread } from "./store.js";
import { wireClient } from "./stream-events.js";

const LOAD_OLDER_WITHIN_PX = 120;

function wirePage(client) {
  $("conversation-filter").addEventListener("input", (event) => {
    state.filter = event.target.value;
    renderSidebar();
  });
  $("back-button").addEventListener("click", () => {
    history.replaceState(null, "", "#");
    closeConversation();
  });
  $("messages").addEventListener("scroll", (event) => {
    if (event.target.scrollTop < LOAD_OLDER_WITHIN_PX && thread(state.openKey).next) loadOlder();
  });
  window.addEventListener("hashchange", () => openConversation(keyFromHash()));
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("focus", markRead);
  window.addEventListener("online", () => client.reconnectNow());
  window.addEventListener("ims:signedout", () => location.assign("/login/?next=/chat/"));
  window.addEventListener("resize", keepBottom);
  const me = $("me-button");
  me.addEventListener("click", () => {
    const menu = $("me-menu");
    menu.hidden = !menu.hidden;
    me.setAttribute("aria-expanded", String(!menu.hidden));
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".menu")) $("me-menu").hidden = true;
  });
  setInterval(renderTyping, 1000);
}

async function boot() {
  const data = document.body.dataset;
  state.me = { id: Number(data.userId), username: data.username, displayName: data.displayName };
  state.maxUploadBytes = Number(data.maxUploadBytes);
  rememberPeople([{ id: state.me.id, username: state.me.username, display_name: state.me.displayName }]);
  paintAvatar($("me-avatar"), state.me.displayName, state.me.id);
  const client = createClient(state.me.id);
  wireClient(client);
  initSidebar({ onOpen: navigateTo });
  wirePage(client);
  initComposer({
    onSend: (text, mentions) => sendMessage({ msg_type: "text", content: text, mentions }),
    onFiles: uploadFiles,
    onTyping: () => {
      if (!String(state.openKey).startsWith("u:")) client.typing(Number(state.openKey));
    },
  });
  initPeople({
    onOpenDirect: (person) => {
      const existing = directWith(person.id);
      navigateTo(existing ? existing.id : `u:${person.id}`);
    },
    onCreated: async (summary) => {
      state.conversations.set(summary.id, summary);
      rememberPeople(summary.members);
      navigateTo(summary.id);
    },
    onChanged: loadConversations,
  });
  initBell({ readOverWs: (ids) => client.read({ notificationIds: ids }) });
  restoreOutbox();
  await loadConversations();
  client.start();
  openConversation(keyFromHash());
  loadPresence();
  loadNotifications();
  initNotify();
}

boot().catch((error) => toast(`IMS could not start: ${error.message}`));

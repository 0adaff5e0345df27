// The composer: Enter sends, Shift+Enter breaks the line, drafts per conversation,
// @mention autocomplete, and files from the picker, a paste or a drop.

import { $, avatar, h } from "./dom.js";
import { state } from "./store.js";

const TYPING_EVERY_MS = 3000;
const MENTION_SUGGESTIONS = 6;

let handlers = null;
let mentionPick = { query: null, start: 0, options: [], active: 0 };
let chosenMentions = new Map(); // user id -> the name inserted after "@"
let lastTypingAt = 0;

function draftKey(conversationKey) {
  return `ims:${state.me.id}:draft:${conversationKey}`;
}

/** Shows the draft kept for this conversation. */
export function loadDraft(conversationKey) {
  const input = $("composer-input");
  let draft = { text: "", mentions: [] };
  try {
    draft = JSON.parse(localStorage.getItem(draftKey(conversationKey))) || draft;
  } catch {
    // A draft that cannot be read is an empty one.
  }
  input.value = draft.text;
  chosenMentions = new Map(draft.mentions);
  autosize();
  closeMentions();
}

function saveDraft() {
  if (state.openKey === null) return;
  const text = $("composer-input").value;
  if (text) localStorage.setItem(draftKey(state.openKey), JSON.stringify({ text, mentions: [...chosenMentions] }));
  else localStorage.removeItem(draftKey(state.openKey));
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

function submit() {
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text) return;
  const mentions = [...chosenMentions].filter(([, name]) => text.includes(`@${name}`)).map(([id]) => id);
  handlers.onSend(text, mentions);
  input.value = "";
  chosenMentions = new Map();
  saveDraft();
  autosize();
}

// --- @mentions ------------------------------------------------------------------------

function mentionCandidates(query) {
  const conversation = state.conversations.get(Number(state.openKey));
  if (!conversation) return [];
  const q = query.toLowerCase();
  return conversation.members
    .filter((m) => m.id !== state.me.id)
    .filter((m) => (m.display_name || "").toLowerCase().includes(q) || m.username.toLowerCase().startsWith(q))
    .slice(0, MENTION_SUGGESTIONS);
}

function updateMentions() {
  const input = $("composer-input");
  const before = input.value.slice(0, input.selectionStart);
  const match = before.match(/(?:^|\s)@([^\s@]{0,30})$/);
  if (!match) return closeMentions();
  const options = mentionCandidates(match[1]);
  if (!options.length) return closeMentions();
  mentionPick = { query: match[1], start: before.length - match[1].length - 1, options, active: 0 };
  drawMentions();
}

function drawMentions() {
  const list = $("mention-list");
  list.replaceChildren(
    ...mentionPick.options.map((m, index) =>
      h(
        "li",
        {
          role: "option",
          id: `mention-${m.id}`,
          "aria-selected": index === mentionPick.active ? "true" : "false",
          class: index === mentionPick.active ? "active" : "",
          onmousedown: (event) => {
            event.preventDefault(); // keep the focus in the textarea
            chooseMention(m);
          },
        },
        avatar(m.display_name || m.username, m.id, "small"),
        h("span", {}, m.display_name || m.username),
        h("span", { class: "muted" }, ` @${m.username}`),
      ),
    ),
  );
  list.hidden = false;
  $("composer-input").setAttribute("aria-activedescendant", `mention-${mentionPick.options[mentionPick.active].id}`);
}

function closeMentions() {
  mentionPick.query = null;
  $("mention-list").hidden = true;
  $("composer-input").removeAttribute("aria-activedescendant");
}

function chooseMention(member) {
  const input = $("composer-input");
  const name = member.display_name || member.username;
  const end = input.selectionStart;
  input.value = `${input.value.slice(0, mentionPick.start)}@${name} ${input.value.slice(end)}`;
  const caret = mentionPick.start + name.length + 2;
  input.setSelectionRange(caret, caret);
  chosenMentions.set(member.id, name);
  closeMentions();
  saveDraft();
}

function onKeyDown(event) {
  if (mentionPick.query !== null) {
    const count = mentionPick.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      mentionPick.active = (mentionPick.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      return drawMentions();
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      return chooseMention(mentionPick.options[mentionPick.active]);
    }
    if (event.key === "Escape") {
      event.preventDefault();
      return closeMentions();
    }
  }
  // isComposing: Enter that confirms an IME candidate (Chinese, Japanese) is not a send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
}

function onInput() {
  autosize();
  saveDraft();
  updateMentions();
  const now = Date.now();
  if ($("composer-input").value && now - lastTypingAt > TYPING_EVERY_MS) {
    lastTypingAt = now;
    handlers.onTyping();
  }
}

// --- files ----------------------------------------------------------------------------

function filesFrom(list) {
  return [...(list || [])].filter((f) => f instanceof File);
}

function onPaste(event) {
  const files = filesFrom(event.clipboardData?.files);
  if (!files.length) return;
  event.preventDefault();
  handlers.onFiles(files);
}

function onDrop(event) {
  event.preventDefault();
  $("conversation").classList.remove("dropping");
  const files = filesFrom(event.dataTransfer?.files);
  if (files.length) handlers.onFiles(files);
}

export function initComposer(callbacks) {
  handlers = callbacks;
  const input = $("composer-input");
  input.addEventListener("keydown", onKeyDown);
  input.addEventListener("input", onInput);
  input.addEventListener("click", updateMentions);
  input.addEventListener("blur", () => setTimeout(closeMentions, 100));
  input.addEventListener("paste", onPaste);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("file-input").addEventListener("change", (event) => {
    handlers.onFiles(filesFrom(event.target.files));
    event.target.value = "";
  });
  const pane = $("conversation");
  pane.addEventListener("dragover", (event) => {
    event.preventDefault();
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragleave", () => pane.classList.remove("dropping"));
  pane.addEventListener("drop", onDrop);
}

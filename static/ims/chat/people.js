// The people dialog: start a direct or group conversation, or manage a group's members.

import { api, optionalApi } from "./api.js";
import { $, avatar, h, toast } from "./dom.js";
import { rememberPeople, state } from "./store.js";

const SEARCH_DELAY_MS = 200;

let mode = null; // {kind: "new"} or {kind: "members", conversationId}
let selected = new Map(); // user id -> person
let searchTimer = null;
let callbacks = null;

function personLabel(p) {
  return p.display_name || p.username;
}

/** GET /api/users/?q=; until that endpoint exists, the people of our conversations. */
async function searchPeople(query) {
  let found = null;
  try {
    found = await optionalApi(`/api/users/?q=${encodeURIComponent(query)}`);
  } catch {
    found = null;
  }
  const people = found ? (Array.isArray(found) ? found : found.results || []) : localPeople(query);
  rememberPeople(people);
  return people.filter((p) => p.id !== state.me.id);
}

function localPeople(query) {
  const q = query.toLowerCase();
  return [...state.people.values()].filter(
    (p) => personLabel(p).toLowerCase().includes(q) || p.username.toLowerCase().includes(q),
  );
}

function memberIds() {
  if (mode?.kind !== "members") return new Set();
  return new Set(state.conversations.get(mode.conversationId)?.members.map((m) => m.id) || []);
}

async function drawResults() {
  const query = $("people-search").value.trim();
  const people = await searchPeople(query);
  const members = memberIds();
  $("people-results").replaceChildren(
    ...people
      .filter((p) => !members.has(p.id))
      .map((p) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: `person${selected.has(p.id) ? " selected" : ""}`,
              "aria-pressed": selected.has(p.id) ? "true" : "false",
              onclick: () => toggle(p),
            },
            avatar(personLabel(p), p.id, "small"),
            h("span", { class: "person-name" }, personLabel(p)),
            h("span", { class: "muted" }, `@${p.username}`),
          ),
        ),
      ),
  );
}

function toggle(person) {
  if (selected.has(person.id)) selected.delete(person.id);
  else selected.set(person.id, person);
  drawChips();
  drawResults();
}

function drawChips() {
  $("people-chips").replaceChildren(
    ...[...selected.values()].map((p) =>
      h(
        "li",
        { class: "chip" },
        personLabel(p),
        h("button", { type: "button", "aria-label": `Remove ${personLabel(p)}`, onclick: () => toggle(p) }, "×"),
      ),
    ),
  );
  if (mode?.kind === "new") $("people-submit").textContent = selected.size > 1 ? "Create group" : "Start";
}

function drawMembers() {
  const conversation = state.conversations.get(mode.conversationId);
  $("current-members").replaceChildren(
    ...conversation.members.map((m) =>
      h(
        "li",
        { class: "member" },
        avatar(personLabel(m), m.id, "small"),
        h("span", { class: "person-name" }, m.id === state.me.id ? `${personLabel(m)} (you)` : personLabel(m)),
        m.id === state.me.id
          ? null
          : h("button", { type: "button", class: "link-button", onclick: () => removeMember(m) }, "Remove"),
      ),
    ),
  );
}

async function removeMember(member) {
  try {
    await api(`/api/conversations/${mode.conversationId}/members/${member.id}/`, { method: "DELETE" });
    await callbacks.onChanged();
    if (member.id === state.me.id) return close();
    drawMembers();
  } catch (error) {
    showError(error);
  }
}

function showError(error) {
  const box = $("people-error");
  box.textContent = error.status === 404 ? "This is not available yet." : error.message;
  box.hidden = false;
}

function open(newMode) {
  mode = newMode;
  selected = new Map();
  const dialog = $("people-dialog");
  const members = mode.kind === "members";
  const conversation = members ? state.conversations.get(mode.conversationId) : null;
  $("people-title").textContent = members ? "Group members" : "New conversation";
  $("group-title").value = conversation?.title || "";
  $("group-title-label").querySelector(".muted").hidden = members;
  $("member-list-block").hidden = !members;
  $("leave-group").hidden = !members;
  $("people-submit").textContent = members ? "Save" : "Start";
  $("people-search").value = "";
  $("people-error").hidden = true;
  if (members) drawMembers();
  drawChips();
  drawResults();
  dialog.showModal();
  $("people-search").focus();
}

function close() {
  $("people-dialog").close();
  mode = null;
}

async function submitNew() {
  const people = [...selected.values()];
  const title = $("group-title").value.trim();
  if (!people.length) return showError({ message: "Pick at least one person." });
  if (people.length === 1 && !title) {
    close();
    return callbacks.onOpenDirect(people[0]);
  }
  const summary = await api("/api/conversations/", {
    method: "POST",
    json: { title: title || people.map(personLabel).join(", "), member_ids: people.map((p) => p.id) },
  });
  close();
  await callbacks.onCreated(summary);
}

async function submitMembers() {
  const id = mode.conversationId;
  const title = $("group-title").value.trim();
  const conversation = state.conversations.get(id);
  if (title && title !== conversation.title) {
    await api(`/api/conversations/${id}/`, { method: "PATCH", json: { title } });
  }
  if (selected.size) {
    await api(`/api/conversations/${id}/members/`, { method: "POST", json: { user_ids: [...selected.keys()] } });
  }
  close();
  await callbacks.onChanged();
}

async function onSubmit(event) {
  event.preventDefault();
  try {
    if (mode.kind === "new") await submitNew();
    else await submitMembers();
  } catch (error) {
    showError(error);
  }
}

export function initPeople(cbs) {
  callbacks = cbs;
  $("new-conversation").addEventListener("click", () => open({ kind: "new" }));
  $("members-button").addEventListener("click", () =>
    open({ kind: "members", conversationId: Number(state.openKey) }),
  );
  $("people-form").addEventListener("submit", onSubmit);
  $("people-cancel").addEventListener("click", close);
  $("leave-group").addEventListener("click", () => {
    const me = state.conversations.get(mode.conversationId)?.members.find((m) => m.id === state.me.id);
    if (me) removeMember(me);
  });
  $("people-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => drawResults().catch((e) => toast(e.message)), SEARCH_DELAY_MS);
  });
}

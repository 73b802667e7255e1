/**
 * The chat page at `/`: pick or start a conversation, then chat (ChatRoom + ChatView).
 *
 * The socket authenticates with the Django session cookie (no token).  The
 * REST API (same cookie, CSRF header on writes) lists sessions, creates one
 * with a title, tells who is already in a session, and carries the
 * moderation actions: hide a message, close a session, share it.
 *
 * Unread badges in the session list are the server's counts (the REST list's
 * `unreadCount`, so they survive a reload and agree on every device), kept
 * live by the open room's read state and by `chat:read-updated` for our own
 * pointer in the other sessions (another tab or device read them).
 */

import { ActivityMonitor } from "./activity.js";
import { AttachmentLinks, uploadFile } from "./attachments.js";
import { Connection } from "./connection.js";
import { ChatRoom } from "./session.js";
import { newId } from "./store.js";
import { ChatView } from "./view.js";

const boot = JSON.parse(document.getElementById("chat-bootstrap").textContent);
/** Tests may shorten the presence periods with `window.__chatOptions` (set before this runs). */
const options = { ...boot.presence, ...(globalThis.__chatOptions ?? {}) };
const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || body?.detail || `Request failed (${status}).`);
    this.status = status;
    this.code = body?.code || "internal";
  }
}

async function api(method, path, body) {
  const response = await fetch(`${boot.urls.api}${path}`, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      ...(method !== "GET" ? { "X-CSRFToken": boot.csrfToken } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const enc = encodeURIComponent;

// --- state ------------------------------------------------------------------------------------

const state = {
  workspace: null,
  room: null,
  session: null, // the REST view of the open session, when known
  sessions: [],
};

const connection = new Connection().start();
const sessionPath = () => `workspaces/${enc(state.workspace.id)}/sessions/${enc(state.room.sessionId)}`;
const view = new ChatView($("[data-chat-panel]"), {
  connection,
  attachments: {
    upload: (file, onProgress) =>
      uploadFile(`${boot.urls.api}${sessionPath()}/attachments/`, file, {
        headers: { "X-CSRFToken": boot.csrfToken },
        onProgress,
      }),
    links: new AttachmentLinks((id) => api("GET", `${sessionPath()}/attachments/${enc(id)}/`)),
  },
  canModerate: () => Boolean(state.workspace?.moderates),
  onHide: (messageId) =>
    api("POST", `workspaces/${enc(state.workspace.id)}/sessions/${enc(state.room.sessionId)}/messages/${enc(messageId)}/hide/`),
  fetchVersions: (messageId) =>
    api("GET", `workspaces/${enc(state.room.workspaceId)}/sessions/${enc(state.room.sessionId)}/messages/${enc(messageId)}/versions/`),
});
const activity = new ActivityMonitor(options).start();

function agentName(agentId) {
  return state.workspace?.agents.find((agent) => agent.id === agentId)?.name ?? agentId;
}

function sessionLabel(session) {
  if (session.title) return session.title;
  if (session.agentId) return `Chat with ${agentName(session.agentId)}`;
  return `Conversation ${session.id.slice(-6)}`;
}

// --- own status --------------------------------------------------------------------------------

function renderMe(status) {
  $("[data-me-dot]").className = `dot dot--${status}`;
  $("[data-me-status]").textContent = status;
}

activity.addEventListener("change", (event) => {
  renderMe(event.detail.status);
  state.room?.setOwnStatus(event.detail.status);
});
renderMe(activity.status);

// --- workspaces and the sidebar ---------------------------------------------------------------------

function selectWorkspace(id) {
  state.workspace = boot.workspaces.find((w) => w.id === id) ?? boot.workspaces[0] ?? null;
  const agentSelect = $("[data-new-chat-agent]");
  agentSelect.replaceChildren();
  for (const agent of state.workspace?.agents ?? []) agentSelect.append(new Option(agent.name, agent.id));
  agentSelect.append(new Option("People only", ""));
  $("[data-workspace-select]").value = state.workspace?.id ?? "";
}

function renderWorkspaces() {
  const picker = $("[data-workspace-picker]");
  const select = $("[data-workspace-select]");
  select.replaceChildren(...boot.workspaces.map((w) => new Option(w.name, w.id)));
  picker.hidden = boot.workspaces.length < 2;
  select.addEventListener("change", () => {
    selectWorkspace(select.value);
    closeSession();
    loadSessions();
  });
}

async function loadSessions() {
  const status = $("[data-sessions-status]");
  if (!state.workspace) {
    status.textContent = "You are not a member of any workspace yet.";
    return;
  }
  try {
    const page = await api("GET", `workspaces/${enc(state.workspace.id)}/sessions/?limit=50`);
    state.sessions = page.results ?? [];
    status.textContent = state.sessions.length ? "" : "No conversations yet.";
  } catch (error) {
    status.textContent = `Could not load conversations: ${error.message}`;
  }
  renderSessions();
}

function renderSessions() {
  const list = $("[data-sessions]");
  list.replaceChildren(
    ...state.sessions.map((session) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.className = "sessions__link";
      a.href = `?workspace=${enc(session.workspaceId)}&session=${enc(session.id)}`;
      a.dataset.sessionId = session.id;
      const label = document.createElement("span");
      label.className = "sessions__label";
      label.textContent = sessionLabel(session);
      a.append(label);
      const unread = state.room?.sessionId === session.id ? 0 : session.unreadCount ?? 0;
      if (unread > 0) {
        const badge = document.createElement("span");
        badge.className = "sessions__unread";
        badge.dataset.unread = String(unread);
        badge.textContent = unread > 99 ? "99+" : String(unread);
        badge.setAttribute("aria-label", `${unread} unread`);
        a.append(" ", badge);
      }
      if (session.status === "closed") {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "closed";
        a.append(" ", badge);
      }
      if (state.room?.sessionId === session.id) a.setAttribute("aria-current", "page");
      li.append(a);
      return li;
    }),
  );
}

$("[data-sessions]").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-session-id]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  openSession(link.dataset.sessionId, { push: true });
  setSidebar(false);
  view.focusComposer();
});

$("[data-new-chat]").addEventListener("submit", (event) => {
  event.preventDefault();
  startSession($("[data-new-chat-agent]").value || null);
});
$("[data-empty-start]").addEventListener("click", () => startSession(state.workspace?.agents[0]?.id ?? null));

const sidebarToggle = $("[data-sidebar-toggle]");
function setSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  sidebarToggle.setAttribute("aria-expanded", String(open));
}
sidebarToggle.addEventListener("click", () => setSidebar(!document.body.classList.contains("sidebar-open")));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("sidebar-open")) {
    setSidebar(false);
    sidebarToggle.focus();
  }
});

// --- sessions ---------------------------------------------------------------------------------

function renderChatHeader() {
  const room = state.room;
  if (!room) return;
  const session = state.session ?? { id: room.sessionId, title: room.title, agentId: room.agentId };
  const title = room.title || sessionLabel({ ...session, agentId: session.agentId ?? room.agentId });
  const parts = [];
  if (room.agentId && !title.includes(agentName(room.agentId))) parts.push(`with ${agentName(room.agentId)}`);
  if (room.closed) parts.push("closed (read-only)");
  view.setTitle(title, parts.join(" · "));
  document.title = `${title} · Chat`;
  const me = boot.user.userId;
  const manages = Boolean(state.workspace?.moderates) || !state.session || state.session.createdBy === me;
  const actions = $("[data-chat-actions]");
  actions.hidden = !room.joined || !manages;
  $("[data-close-session]").hidden = room.closed;
}

function closeSession() {
  state.room?.stop();
  state.room = null;
  state.session = null;
  view.bind(null);
  $("[data-chat-panel]").hidden = true;
  $("[data-empty]").hidden = false;
  document.title = "Chat";
}

async function openSession(sessionId, { agentId = null, push = false, created = null } = {}) {
  if (state.room?.sessionId === sessionId) return;
  state.room?.stop();
  const workspaceId = state.workspace.id;
  const room = new ChatRoom({
    connection,
    workspaceId,
    sessionId,
    agentId,
    self: { userId: boot.user.userId, userName: boot.user.userName },
    agentNames: Object.fromEntries(state.workspace.agents.map((a) => [a.id, a.name])),
    fetchPresence: () => api("GET", `workspaces/${enc(workspaceId)}/sessions/${enc(sessionId)}/presence/`),
  });
  state.room = room;
  state.session = created ?? state.sessions.find((s) => s.id === sessionId) ?? null;
  room.setOwnStatus(activity.status);
  room.addEventListener("change", (event) => {
    if (event.detail.kind === "read") {
      const listed = state.sessions.find((s) => s.id === room.sessionId);
      if (listed && (listed.unreadCount !== room.unreadCount || listed.lastReadSeq !== room.lastReadSeq)) {
        listed.unreadCount = room.unreadCount;
        listed.lastReadSeq = room.lastReadSeq;
        renderSessions();
      }
    }
    if (event.detail.kind === "status") {
      renderChatHeader();
      const listed = state.sessions.find((s) => s.id === room.sessionId);
      if (listed && room.closed && listed.status !== "closed") {
        listed.status = "closed";
        renderSessions();
      }
    }
  });
  view.bind(room);
  room.start();
  $("[data-empty]").hidden = true;
  $("[data-chat-panel]").hidden = false;
  renderChatHeader();
  renderSessions();
  const url = `?workspace=${enc(workspaceId)}&session=${enc(sessionId)}`;
  if (push) history.pushState({ sessionId }, "", url);
  else history.replaceState({ sessionId }, "", url);
  if (!state.session) {
    api("GET", `workspaces/${enc(workspaceId)}/sessions/${enc(sessionId)}/`)
      .then((session) => {
        if (state.room !== room) return;
        state.session = session;
        renderChatHeader();
      })
      .catch(() => {});
  }
}

async function startSession(agentId) {
  if (!state.workspace) return;
  const id = newId("chat");
  const when = new Date().toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const title = agentId ? `Chat with ${agentName(agentId)}` : `Conversation, ${when}`;
  let created = null;
  try {
    created = await api("POST", `workspaces/${enc(state.workspace.id)}/sessions/`, { id, title, agentId });
  } catch {
    // Joining creates the session too (without a title).
  }
  await openSession(id, { agentId, push: true, created });
  setSidebar(false);
  view.focusComposer();
  loadSessions();
}

$("[data-close-session]").addEventListener("click", async () => {
  const room = state.room;
  if (!room || !window.confirm("Close this conversation? Everyone can still read it, but nobody can write in it.")) return;
  try {
    await api("POST", `workspaces/${enc(room.workspaceId)}/sessions/${enc(room.sessionId)}/close/`);
  } catch (error) {
    room._setError({ code: error.code, message: error.message }, "moderation");
  }
});

$("[data-share-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  const room = state.room;
  const input = event.target.elements.username;
  const status = $("[data-share-status]");
  const username = input.value.trim();
  if (!room || !username) return;
  try {
    await api("POST", `workspaces/${enc(room.workspaceId)}/sessions/${enc(room.sessionId)}/share/`, { username });
    status.textContent = `Shared with ${username}.`;
    input.value = "";
  } catch (error) {
    status.textContent = `Could not share: ${error.message}`;
  }
});

// Sessions others share with us show up when we come back to the tab.
let sessionsLoadedAt = 0;
window.addEventListener("focus", () => {
  if (Date.now() - sessionsLoadedAt > 10_000) {
    sessionsLoadedAt = Date.now();
    loadSessions();
  }
});

window.addEventListener("popstate", () => {
  const sessionId = new URLSearchParams(location.search).get("session");
  if (sessionId) openSession(sessionId);
  else closeSession();
});

// Our pointer moved in another session (another tab or device read it): its badge follows.
connection.on("chat:read-updated", (read) => {
  if (read?.userId !== boot.user.userId || read.workspaceId !== state.workspace?.id) return;
  const listed = state.sessions.find((s) => s.id === read.sessionId);
  if (listed && (listed.lastReadSeq ?? 0) <= read.seq) {
    listed.lastReadSeq = read.seq;
    listed.unreadCount = read.unreadCount;
    renderSessions();
  }
});
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && loadSessions());

// --- start --------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
renderWorkspaces();
selectWorkspace(params.get("workspace") ?? boot.workspaces[0]?.id);
closeSession();
const initial = params.get("session");
if (initial && state.workspace && /^[A-Za-z0-9_-]{1,128}$/.test(initial)) openSession(initial);
loadSessions().then(() => {
  if (state.room && !state.session) {
    state.session = state.sessions.find((s) => s.id === state.room.sessionId) ?? null;
    renderChatHeader();
  }
});

// For tests and debugging in the console.
globalThis.chatApp = { connection, view, activity, get room() { return state.room; } };

/**
 * The chat inside the embeddable widget's iframe (/embed/), started by widget.js on a host page.
 *
 * The session, workspace and agent come from the iframe's URL.  Credentials
 * never do: for every connection attempt this page asks its host page for
 * a one-time socket token over postMessage, and the host (widget.js) answers
 * from `data-token` (the first time) or its token callback.  The session
 * cookie is never used here.
 *
 * Messages with the host page (all carry `source`):
 *   frame -> host  {source: "chat-widget", type: "ready"}
 *   frame -> host  {source: "chat-widget", type: "token-request", requestId}
 *   host -> frame  {source: "chat-widget-host", type: "token", requestId, token | error}
 *   host -> frame  {source: "chat-widget-host", type: "visibility", open}
 *   host -> frame  {source: "chat-widget-host", type: "focus"}
 *   frame -> host  {source: "chat-widget", type: "unread", count}
 *   frame -> host  {source: "chat-widget", type: "escape"}   (Escape pressed: the launcher closes)
 */

import { ActivityMonitor } from "./activity.js";
import { Connection, ConnectionState } from "./connection.js";
import { ChatRoom } from "./session.js";
import { ChatView } from "./view.js";

const TOKEN_TIMEOUT_MS = 15_000;

const config = JSON.parse(document.getElementById("chat-embed-config").textContent);
const options = { ...config.presence, ...(globalThis.__chatOptions ?? {}) };
const host = window.parent !== window ? window.parent : null;

function post(message) {
  // The host page's origin is not known here; what we send it is not secret.
  host?.postMessage({ source: "chat-widget", ...message }, "*");
}

const waiting = new Map();
let nextRequest = 1;

function requestToken() {
  return new Promise((resolve, reject) => {
    const requestId = nextRequest++;
    const timer = setTimeout(() => {
      waiting.delete(requestId);
      reject(new Error("The page did not provide a chat token."));
    }, TOKEN_TIMEOUT_MS);
    waiting.set(requestId, { resolve, reject, timer });
    post({ type: "token-request", requestId });
  });
}

let open = true;
let unread = 0;

window.addEventListener("message", (event) => {
  if (!host || event.source !== host) return;
  const data = event.data;
  if (!data || data.source !== "chat-widget-host") return;
  if (data.type === "token") {
    const pending = waiting.get(data.requestId);
    if (!pending) return;
    waiting.delete(data.requestId);
    clearTimeout(pending.timer);
    if (typeof data.token === "string" && data.token) pending.resolve(data.token);
    else pending.reject(new Error(data.error || "No chat token."));
  } else if (data.type === "focus") {
    view.focusComposer();
  } else if (data.type === "visibility") {
    open = Boolean(data.open);
    if (open && unread) {
      unread = 0;
      post({ type: "unread", count: 0 });
    }
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !event.defaultPrevented) post({ type: "escape" });
});

const panel = document.querySelector("[data-chat-panel]");
const connection = new Connection({ getToken: requestToken });
const view = new ChatView(panel, { connection });
view.setTitle(config.title);

if (!host) {
  connection.end(ConnectionState.FAILED, {
    reason: "not_embedded",
    message: "This is the inside of the chat widget: add widget.js to your page to use it (see docs/widget.md).",
  });
} else {
  connection.start();
  const room = new ChatRoom({
    connection,
    workspaceId: config.workspaceId,
    sessionId: config.sessionId,
    agentId: config.agentId,
  });
  const activity = new ActivityMonitor(options).start();
  activity.addEventListener("change", (event) => room.setOwnStatus(event.detail.status));
  room.addEventListener("change", (event) => {
    if (event.detail.incoming && (!open || document.visibilityState === "hidden")) {
      unread += 1;
      post({ type: "unread", count: unread });
    }
  });
  view.bind(room);
  room.start();
  post({ type: "ready" });
  globalThis.chatApp = { connection, view, activity, room };
}

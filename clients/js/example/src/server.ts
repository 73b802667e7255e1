/**
 * What the example asks the chat server over HTTP (same origin, through Vite's proxy):
 * Django's log in and out, a one-time socket token, who is in a session, sharing one,
 * and the CSRF header the client's REST calls (attachments) send with the session cookie.
 */

import type { ChatPresence } from "@chatserver/client";

/** Django's CSRF token (its cookie): the header every POST with the session cookie needs, uploads too. */
export function csrfToken(): string {
  return document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/)?.[1] ?? "";
}

async function post(path: string, body?: URLSearchParams | object): Promise<Response> {
  const json = body !== undefined && !(body instanceof URLSearchParams);
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    redirect: "manual",
    headers: { "X-CSRFToken": csrfToken(), ...(json ? { "Content-Type": "application/json" } : {}) },
    body: json ? JSON.stringify(body) : body,
  });
}

/** Log in with Django's login view; true when it accepted the password. */
export async function logIn(username: string, password: string): Promise<boolean> {
  await fetch("/login/", { credentials: "same-origin" }); // sets the csrftoken cookie
  const response = await post("/login/", new URLSearchParams({ username, password, csrfmiddlewaretoken: csrfToken() }));
  return response.type === "opaqueredirect" || response.redirected;
}

export async function logOut(): Promise<void> {
  await post("/logout/");
}

/** A one-time socket token for the logged-in user: what a host page's backend would hand out. */
export async function socketToken(): Promise<string> {
  const response = await post("/api/v1/auth/socket-token");
  if (!response.ok) throw new Error(`socket token: HTTP ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

export async function whoIsHere(session: string, workspace: string): Promise<ChatPresence[]> {
  const response = await fetch(`/api/v1/workspaces/${workspace}/sessions/${session}/presence/`, { credentials: "same-origin" });
  return response.ok ? ((await response.json()) as ChatPresence[]) : [];
}

export async function share(workspace: string, session: string, username: string): Promise<string> {
  const response = await post(`/api/v1/workspaces/${workspace}/sessions/${session}/share/`, { username });
  if (response.ok) return `Shared with ${username}.`;
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  return body.error ?? `Could not share (HTTP ${response.status}).`;
}

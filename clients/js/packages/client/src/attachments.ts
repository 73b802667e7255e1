/**
 * Attachments over the REST API: upload a file to a session (with progress), get a download link.
 *
 * An upload is `POST /api/v1/workspaces/{w}/sessions/{s}/attachments/` (multipart, one `file` part);
 * the answer's `id` then goes into a message's `attachments`.  In a browser the upload goes through
 * XMLHttpRequest, which reports upload progress (fetch does not); elsewhere through fetch, with one
 * progress report at the end.  Links (`url`) are relative to the server and expire after a few
 * minutes; messages received live carry `url: null`, so ask {@link attachmentLink} for one.
 */

import { ChatRequestError, errorInfo } from "./errors.js";
import type { ChatAttachment, ChatError } from "./events.js";

export interface RestTarget {
  /** The server's origin, e.g. `https://chat.example.com` ("" for the page's own). */
  base: string;
  /** Headers for every request: `Authorization: Bearer chat_…`, or a CSRF token with a session cookie. */
  headers: Record<string, string>;
}

export type UploadProgress = (fraction: number) => void;

export function sessionPath(workspaceId: string, sessionId: string): string {
  return `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/sessions/${encodeURIComponent(sessionId)}`;
}

/** A link relative to the server, made absolute against `base`. */
export function absolute(base: string, url: string): string {
  return base ? new URL(url, base).toString() : url;
}

function refused(status: number, body: unknown): ChatRequestError {
  const error = (body && typeof body === "object" ? body : {}) as Partial<ChatError>;
  return new ChatRequestError(errorInfo({ error: `Upload failed (${status}).`, ...error }));
}

function withAbsoluteUrl(target: RestTarget, attachment: ChatAttachment): ChatAttachment {
  return attachment.url ? { ...attachment, url: absolute(target.base, attachment.url) } : attachment;
}

/** Upload `file` to the session; resolves with the attachment, rejects with a {@link ChatRequestError}. */
export function uploadAttachment(
  target: RestTarget,
  workspaceId: string,
  sessionId: string,
  file: Blob,
  onProgress?: UploadProgress,
): Promise<ChatAttachment> {
  const endpoint = absolute(target.base, `${sessionPath(workspaceId, sessionId)}/attachments/`);
  const name = (file as Blob & { name?: string }).name ?? "file";
  const form = new FormData();
  form.append("file", file, name);
  if (typeof XMLHttpRequest === "undefined") {
    return fetch(endpoint, { method: "POST", body: form, headers: target.headers, credentials: "include" }).then(
      async (response) => {
        const body: unknown = await response.json().catch(() => null);
        if (response.status !== 201) throw refused(response.status, body);
        onProgress?.(1);
        return withAbsoluteUrl(target, body as ChatAttachment);
      },
    );
  }
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", endpoint);
    request.withCredentials = true;
    request.responseType = "json";
    for (const [header, value] of Object.entries(target.headers)) request.setRequestHeader(header, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress?.(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status === 201) resolve(withAbsoluteUrl(target, request.response as ChatAttachment));
      else reject(refused(request.status, request.response));
    });
    request.addEventListener("error", () =>
      reject(new ChatRequestError({ code: "offline", message: "The upload did not reach the server.", retryable: true })),
    );
    request.send(form);
  });
}

/** A fresh download link for the caller (absolute), for an attachment of a message in the session. */
export async function attachmentLink(
  target: RestTarget,
  workspaceId: string,
  sessionId: string,
  attachmentId: string,
): Promise<string> {
  const endpoint = absolute(target.base, `${sessionPath(workspaceId, sessionId)}/attachments/${encodeURIComponent(attachmentId)}/`);
  const response = await fetch(endpoint, { headers: { Accept: "application/json", ...target.headers }, credentials: "include" });
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) throw refused(response.status, body);
  return absolute(target.base, (body as ChatAttachment).url as string);
}

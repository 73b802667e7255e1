/** Errors of requests: refused by the server (its code), or not answered (offline, timeout). */

import type { ChatError } from "./events.generated.js";
import type { ChatErrorInfo } from "./store.js";

/** A request that did not succeed: `code` is the server's, or `offline` / `timeout`. */
export class ChatRequestError extends Error {
  readonly code: string;
  readonly info: ChatErrorInfo;

  constructor(info: ChatErrorInfo) {
    super(info.message);
    this.name = "ChatRequestError";
    this.code = info.code;
    this.info = info;
  }
}

/** A refused request's error (`{ok: false, ...}` or an `*-error` event), as the store keeps it. */
export function errorInfo(error: Partial<ChatError>, now = Date.now()): ChatErrorInfo {
  const info: ChatErrorInfo = {
    code: error.code ?? "internal",
    message: error.error ?? "Something went wrong.",
    retryable: error.retryable === true,
  };
  if (typeof error.retryAfter === "number") {
    info.retryAfter = error.retryAfter;
    info.until = now + error.retryAfter;
  }
  if (typeof error.maxLength === "number") info.maxLength = error.maxLength;
  if (typeof error.mutedUntil === "number") info.mutedUntil = error.mutedUntil;
  if (typeof error.reason === "string") info.reason = error.reason;
  if (typeof error.currentVersion === "number") info.currentVersion = error.currentVersion;
  return info;
}

export const OFFLINE: ChatErrorInfo = { code: "offline", message: "Not connected.", retryable: true };
export const TIMEOUT: ChatErrorInfo = { code: "timeout", message: "No answer from the server.", retryable: true };

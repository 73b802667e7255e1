/** Ids a client chooses (messages, sessions): 1-128 of [A-Za-z0-9_-] as the protocol asks. */

/** A random id, `prefix-` and 24 hex digits: never collides, safe to resend. */
export function newId(prefix = "m"): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return `${prefix}-${hex}`;
}

const CLIENT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function isClientId(value: unknown): value is string {
  return typeof value === "string" && CLIENT_ID.test(value);
}

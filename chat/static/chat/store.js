/**
 * The messages of one session, in reading order, each exactly once.
 *
 * Pure data (no DOM, no socket), keyed by the message id the protocol uses
 * as its idempotency key: whatever route a message takes -- an optimistic
 * bubble, `chat:message-sent`, `chat:message-received`, a history page, a
 * catch-up after a reconnect, the chunks of an agent's reply -- it lands
 * on the same entry.  Stored messages are ordered by `seq`; those without
 * one yet (sending, failed, still streaming) follow, in the order they
 * appeared.
 *
 * Entry states:
 *   pending   -- ours, not confirmed yet (`queued` is true while it waits for a connection)
 *   sent      -- ours, confirmed by `chat:message-sent` (has its seq)
 *   failed    -- ours, refused; `error` says why, a retry reuses the id
 *   streaming -- an agent's reply arriving chunk by chunk
 *   stored    -- anything else the server has stored (history, others' messages)
 * Every change bumps `rev`, so a view re-renders only what changed.
 *
 * Reactions: each entry keeps the aggregate with the highest
 * `reactionsVersion` it has seen (from history, `chat:message-received`,
 * `chat:reactions-updated` or a reaction's ack), so repeated or reordered
 * updates end in the server's state (docs/protocol.md, "Reactions").
 *
 * Versions: a message's `version` only grows (a regenerated agent reply gets
 * the next one); an older version never replaces a newer one.  A
 * regeneration's chunks (they carry the `version` they make) stream into the
 * reply's entry, keeping the stored reply in `previous` to show again if the
 * regeneration fails or stops before saying anything.
 *
 * Edits and deletions carry the message's `version`: an entry keeps the
 * highest it has seen and ignores anything older (a late event, a stale
 * history page), so reordered or repeated events converge.  A deleted
 * message is a tombstone (`deleted: true`, empty content) in its place.
 */

import { applyStep } from "./steps.js";

export const MessageState = Object.freeze({
  PENDING: "pending",
  SENT: "sent",
  FAILED: "failed",
  STREAMING: "streaming",
  STORED: "stored",
});

let localOrder = 0;
/** Reactions kept for messages not held yet (an update that overtook its message); the oldest go first. */
const MAX_EARLY_REACTIONS = 500;

export class MessageStore {
  constructor() {
    /** @type {Map<string, object>} */
    this.items = new Map();
    this.self = { userId: null, userName: null };
    /** @type {Map<string, {reactions: object[], reactionsVersion: number}>} */
    this._earlyReactions = new Map();
  }

  get size() {
    return this.items.size;
  }

  get(id) {
    return this.items.get(id) ?? null;
  }

  /** The highest seq held (0 when none): what a catch-up asks after. */
  get maxSeq() {
    let max = 0;
    for (const item of this.items.values()) if (item.seq != null && item.seq > max) max = item.seq;
    return max;
  }

  /** How many stored messages are held: the offset of the next older history page. */
  get storedCount() {
    let count = 0;
    for (const item of this.items.values()) if (item.seq != null) count += 1;
    return count;
  }

  isMine(message) {
    return message.senderType === "user" && this.self.userId != null && message.userId === this.self.userId;
  }

  /** Every entry in reading order. */
  list() {
    return [...this.items.values()].sort((a, b) => {
      if (a.seq != null && b.seq != null) return a.seq - b.seq;
      if (a.seq != null) return -1;
      if (b.seq != null) return 1;
      return a.order - b.order;
    });
  }

  _touch(item, changes) {
    Object.assign(item, changes);
    item.rev += 1;
    return item;
  }

  _create(fields) {
    const item = {
      id: fields.id,
      seq: null,
      senderType: "user",
      userId: null,
      userName: "",
      content: "",
      contentType: "text",
      html: null,
      timestamp: Date.now(),
      metadata: {},
      version: 1,
      editedAt: null,
      deleted: false,
      attachments: [],
      state: MessageState.STORED,
      mine: false,
      queued: false,
      error: null,
      feedback: null,
      order: ++localOrder,
      rev: 0,
      reactions: [],
      reactionsVersion: 0,
      ...fields,
    };
    this.items.set(item.id, item);
    return item;
  }

  /**
   * A message the server stored (ChatMessage): adds it, or completes the entry
   * already there (our optimistic bubble, a streamed reply).  Returns
   * `{item, added}`; `added` is true only for a message not seen before.
   */
  putStored(message) {
    const version = message.version ?? 1;
    const held = this.items.get(message.id);
    if (held && held.seq != null && held.version > version) return { item: held, added: false }; // we hold newer
    const fields = {
      seq: message.seq,
      senderType: message.senderType,
      userId: message.userId ?? null,
      userName: message.userName ?? "",
      content: message.content ?? "",
      contentType: message.contentType ?? "text",
      html: typeof message.html === "string" ? message.html : null,
      metadata: message.metadata ?? {},
      attachments: Array.isArray(message.attachments) ? message.attachments : [],
      timestamp: message.timestamp ?? Date.now(),
      version,
      editedAt: message.editedAt ?? null,
      deleted: message.deleted === true,
      queued: false,
      error: null,
    };
    const existing = this.items.get(message.id);
    const mine = this.isMine(message);
    const reactions = [existing, this._earlyReactions.get(message.id), message].reduce(
      (best, source) => ((source?.reactionsVersion ?? 0) > best.reactionsVersion ? source : best),
      { reactions: [], reactionsVersion: 0 },
    );
    this._earlyReactions.delete(message.id);
    fields.reactions = reactions.reactions ?? [];
    fields.reactionsVersion = reactions.reactionsVersion;
    if (existing) {
      if (existing.version > fields.version || (existing.regenVersion ?? 0) > fields.version) {
        return { item: existing, added: false }; // a late event never rolls a message back
      }
      if (existing.regenVersion != null) Object.assign(fields, { regenVersion: null, previous: null });
      const state = existing.mine || mine ? MessageState.SENT : MessageState.STORED;
      const same =
        existing.content === fields.content &&
        existing.html === fields.html &&
        existing.reactionsVersion === fields.reactionsVersion &&
        existing.version === fields.version &&
        existing.deleted === fields.deleted &&
        existing.attachments.length === fields.attachments.length;
      if (existing.seq === fields.seq && existing.state === state && same) {
        return { item: existing, added: false };
      }
      return { item: this._touch(existing, { ...fields, mine: existing.mine || mine, state }), added: false };
    }
    const item = this._create({ id: message.id, ...fields, mine, state: MessageState.STORED });
    return { item, added: true };
  }

  /**
   * A message's reactions (`{messageId, reactions, reactionsVersion}`): kept when
   * newer than what is held.  Returns the entry when it changed, else null.
   */
  applyReactions({ messageId, reactions, reactionsVersion }) {
    if (typeof reactionsVersion !== "number" || !Array.isArray(reactions)) return null;
    const item = this.items.get(messageId);
    if (!item) {
      const held = this._earlyReactions.get(messageId);
      if (!held || held.reactionsVersion < reactionsVersion) {
        this._earlyReactions.delete(messageId);
        this._earlyReactions.set(messageId, { reactions, reactionsVersion });
        if (this._earlyReactions.size > MAX_EARLY_REACTIONS) {
          this._earlyReactions.delete(this._earlyReactions.keys().next().value);
        }
      }
      return null;
    }
    if (reactionsVersion <= item.reactionsVersion) return null;
    return this._touch(item, { reactions, reactionsVersion });
  }

  /** Did we react to message `id` with `emoji`?  (Our userId is among those listed.) */
  reactedWith(id, emoji) {
    const reaction = this.items.get(id)?.reactions.find((r) => r.emoji === emoji);
    return Boolean(reaction && this.self.userId != null && reaction.users.includes(this.self.userId));
  }

  /** Our own new message, shown at once (the optimistic bubble). */
  addLocal({ id, content, contentType = "text", attachments = [] }) {
    return this._create({
      id,
      content,
      contentType,
      attachments,
      senderType: "user",
      userId: this.self.userId,
      userName: this.self.userName ?? "",
      mine: true,
      state: MessageState.PENDING,
      queued: true,
    });
  }

  markSending(id) {
    const item = this.items.get(id);
    if (!item || item.state === MessageState.SENT) return null;
    return this._touch(item, { state: MessageState.PENDING, queued: false, error: null });
  }

  markQueued(id) {
    const item = this.items.get(id);
    if (!item || item.state !== MessageState.PENDING) return null;
    return this._touch(item, { queued: true });
  }

  /** `chat:message-sent` (or the send's ack): the bubble turns confirmed. */
  confirm(id, { seq, timestamp }) {
    const item = this.items.get(id);
    if (!item) return null;
    if (item.state === MessageState.SENT && item.seq === seq) return item;
    return this._touch(item, {
      state: MessageState.SENT,
      seq: seq ?? item.seq,
      timestamp: timestamp ?? item.timestamp,
      queued: false,
      error: null,
    });
  }

  /** A refused send: the bubble turns failed, with `error` = {code, message, retryAfter?, ...}. */
  fail(id, error) {
    const item = this.items.get(id);
    if (!item || item.state === MessageState.SENT || item.seq != null) return null;
    return this._touch(item, { state: MessageState.FAILED, queued: false, error });
  }

  /** Ours that still need sending: after a reconnect they go again, with the same ids. */
  unsent() {
    return this.list().filter((item) => item.state === MessageState.PENDING);
  }

  /**
   * One chunk of an agent's reply (`chat:agent-stream-chunk`, not complete).
   * A live chunk whose index we hold is skipped; a catch-up (`catchUp: true`:
   * the text and steps so far, sent to a socket that joined mid-reply)
   * replaces the text and steps unless we hold a higher index.
   */
  appendChunk({ messageId, chunk, index, timestamp, userName, agentId, catchUp, steps, inReplyTo, version }) {
    const item = this._streamEntry({ messageId, timestamp, userName, agentId, inReplyTo, version });
    if (!this._takes(item, index, catchUp === true)) return item;
    if (catchUp === true) return this._touch(item, { content: chunk ?? "", steps: Array.isArray(steps) ? steps : [] });
    return this._touch(item, { content: item.content + (chunk ?? "") });
  }

  /**
   * A tool call (`kind: "tool"`) or reasoning event of an agent's reply: same
   * index rule as chunks (they share the reply's index sequence).
   */
  appendStep(kind, event, userName) {
    const item = this._streamEntry({ ...event, userName });
    if (!this._takes(item, event.index, false)) return item;
    return this._touch(item, { steps: applyStep(item.steps, kind, event) });
  }

  _streamEntry({ messageId, timestamp, userName, agentId, inReplyTo, version }) {
    const item = this.items.get(messageId);
    if (item && version != null && item.version < version && item.regenVersion !== version) {
      return this._startRegeneration(item, version); // a regeneration's first event
    }
    if (item) return item;
    return this._create({
      id: messageId,
      senderType: "agent",
      userId: agentId ?? null,
      userName: userName ?? agentId ?? "Agent",
      state: MessageState.STREAMING,
      timestamp: timestamp ?? Date.now(),
      lastIndex: -1,
      steps: [],
      metadata: { inReplyTo: inReplyTo ?? null },
    });
  }

  /** Whether an event at `index` is news for a streaming `item` (and note it); stored replies take none. */
  _takes(item, index, catchUp) {
    if (item.state !== MessageState.STREAMING) return false; // the stored reply came first
    if (typeof index !== "number") return true;
    // A catch-up holds every event up to its index, also live ones that reached us just before it.
    if (catchUp ? index < item.lastIndex : index <= item.lastIndex) return false; // already held
    item.lastIndex = index;
    return true;
  }

  /** The last chunk: the stored reply follows as `chat:message-received`, unless the run failed. */
  finishStream(messageId, { error = null, cancelled = false, version = null } = {}) {
    let item = this.items.get(messageId);
    if (item && version != null && item.version < version && item.regenVersion !== version) {
      if (error || cancelled) return null; // a regeneration that ended before it started: the reply stays
      item = this._startRegeneration(item, version);
    }
    if (!item || item.state !== MessageState.STREAMING) return null;
    if (item.previous && (error || (cancelled && !item.content))) {
      // A regeneration that failed (or stopped with nothing said) leaves the reply as it was.
      return this._touch(item, { ...item.previous, previous: null, regenVersion: null });
    }
    if (error && !item.content && !item.steps?.length) {
      this.items.delete(messageId);
      return null;
    }
    return this._touch(item, { streamDone: true, streamError: error, cancelled });
  }

  /** A regeneration's first chunk: the stored reply makes way for the new text (kept to restore). */
  _startRegeneration(item, version) {
    const streaming = item.state === MessageState.STREAMING;
    const previous = streaming
      ? item.previous
      : {
          content: item.content,
          html: item.html,
          contentType: item.contentType,
          metadata: item.metadata,
          state: item.state,
          steps: item.steps,
        };
    return this._touch(item, {
      previous: previous ?? null,
      regenVersion: version,
      state: MessageState.STREAMING,
      content: "",
      html: null,
      contentType: "text",
      lastIndex: -1,
      steps: [],
      streamDone: false,
      streamError: null,
      cancelled: false,
    });
  }

  /** Our rating of a reply and its counts (the `chat:rate-message` ack): `{up, down, mine}`. */
  setFeedback(id, feedback) {
    const item = this.items.get(id);
    return item ? this._touch(item, { feedback }) : null;
  }

  /** `chat:message-updated`: the message as it is now, if newer than ours (null: nothing changed). */
  applyUpdate({ messageId, version, message }) {
    const item = this.items.get(messageId);
    if (!item || item.seq == null || !message || version <= item.version) return null;
    return this.putStored({ ...message, version }).item;
  }

  /** `chat:message-deleted`: a tombstone in its place, if newer than ours (null: nothing changed). */
  applyDelete({ messageId, version }) {
    const item = this.items.get(messageId);
    if (!item || item.seq == null || version <= item.version) return null;
    return this._touch(item, { version, deleted: true, content: "", contentType: "text", html: null, metadata: {}, attachments: [] });
  }

  remove(id) {
    return this.items.delete(id);
  }

  /** The ids of streaming replies, e.g. to drop ones that will never complete. */
  streaming() {
    return this.list().filter((item) => item.state === MessageState.STREAMING);
  }
}

/** A message id: 1-128 of [A-Za-z0-9_-] as the protocol asks, random enough never to collide. */
export function newId(prefix = "m") {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

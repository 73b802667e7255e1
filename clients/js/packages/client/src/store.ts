/**
 * The messages of one session, in reading order, each exactly once.
 *
 * Pure data: no socket, no timers.  Every route a message takes -- our own
 * optimistic entry, `chat:message-sent`, `chat:message-received`, a history
 * page, a catch-up after a reconnect, the chunks of an agent's reply --
 * lands on the entry of its id, the protocol's idempotency key.  Stored
 * messages are ordered by `seq`; entries without one yet (sending, failed,
 * streaming) follow in the order they appeared.
 *
 * Entries are immutable: a change replaces the entry, and `list()` returns
 * a new array only after a change, so a view can compare by identity.
 *
 * Edits and deletions carry the message's `version`: an entry keeps the
 * highest version it has seen, and anything older (a late event, a stale
 * history page) leaves it as it is, so reordered or repeated events
 * converge (`applyUpdate`, `applyDelete`).
 *
 * `syncedSeq` is the catch-up cursor: every message up to it that the
 * server shows us is held.  A live message right after it moves it on; one
 * further on leaves a gap (`hasGap`) that a catch-up with
 * `afterSeq: syncedSeq` fills (`applyCatchUp`).
 */

import type {
  AgentReasoning,
  AgentStep,
  AgentStreamChunk,
  AgentToolCall,
  ChatAttachment,
  ChatMessage,
  ContentType,
  ReactionsUpdated,
  MessageDeleted,
  MessageUpdated,
  SenderType,
} from "./events.generated.js";
import { NO_REACTIONS, newer, type ReactionState, reactionState } from "./reactions.js";

export type MessageState = "pending" | "sent" | "failed" | "streaming" | "stored";

/** What every event of a streaming reply carries (chunks, tool calls, reasoning); `version` only a regeneration's. */
type ReplyEvent = {
  messageId: string;
  index: number;
  agentId?: string;
  inReplyTo?: string;
  timestamp?: number;
  version?: number;
};

/** Why a request was refused, as kept on an entry and a session. */
export interface ChatErrorInfo {
  code: string;
  message: string;
  retryable: boolean;
  /** rate_limited: milliseconds to wait, and the moment (ms since the epoch) it ends. */
  retryAfter?: number;
  until?: number;
  maxLength?: number;
  mutedUntil?: number;
  reason?: string;
  /** reaction_emoji_limit, reaction_user_limit: the cap reached. */
  limit?: number;
  /** version_conflict: the message's current version. */
  currentVersion?: number;
}

/** An agent's reply while (and after) it streams. */
export interface StreamInfo {
  agentId: string | null;
  inReplyTo: string | null;
  /** The highest chunk index applied (-1: none yet). */
  lastIndex: number;
  /** The final chunk arrived. */
  done: boolean;
  cancelled: boolean;
  truncated: boolean;
  error: { code: string; message: string } | null;
  /** Chunks were missed (a reconnect mid-stream): the stored reply will replace the text. */
  interrupted: boolean;
  /** A regeneration: the version it makes (null for a first answer). */
  version: number | null;
  /** A regeneration: the stored reply it replaces, shown again if it fails or stops with no text. */
  previous: MessageItem | null;
  /** Tool calls and reasoning so far, in the order they began (docs/protocol.md, "Steps"). */
  steps: AgentStep[];
}

/** Members' ratings of an agent reply, as the last `chat:rate-message` ack told us. */
export interface FeedbackInfo {
  up: number;
  down: number;
  mine: "up" | "down" | null;
}

/** A reply's steps: as they stream, then as stored (`metadata.steps`). Render every field as text. */
export function messageSteps(item: MessageItem): AgentStep[] {
  if (item.state === "streaming" && item.stream) return item.stream.steps;
  const stored = (item.metadata as { steps?: unknown } | null | undefined)?.steps;
  return Array.isArray(stored) ? (stored.filter((s) => s && typeof s === "object") as AgentStep[]) : [];
}

/** ``steps`` with one more tool-call or reasoning event applied (a new array; the steps it changes are copies). */
export function applyStep(
  steps: AgentStep[],
  event: AgentToolCall | AgentReasoning,
  kind: "tool" | "reasoning",
): AgentStep[] {
  const next = [...steps];
  if (kind === "reasoning") {
    const last = next[next.length - 1];
    const text = (event as AgentReasoning).text;
    if (last && last.type === "reasoning") next[next.length - 1] = { ...last, text: (last.text ?? "") + text };
    else next.push({ type: "reasoning", text });
    return next;
  }
  const call = event as AgentToolCall;
  const at = next.findIndex((s) => s.type === "tool" && s.toolCallId === call.toolCallId);
  const step: AgentStep =
    at >= 0
      ? { ...next[at]!, arguments: (next[at]!.arguments ?? "") + call.argumentsDelta, status: call.status }
      : { type: "tool", toolCallId: call.toolCallId, name: call.name, arguments: call.argumentsDelta, status: call.status };
  if (call.result !== undefined) step.result = call.result;
  if (call.truncated) step.truncated = true;
  if (at >= 0) next[at] = step;
  else next.push(step);
  return next;
}

export interface MessageItem {
  readonly id: string;
  readonly seq: number | null;
  readonly senderType: SenderType;
  readonly userId: string | null;
  readonly userName: string;
  /** The text as written: always render it as text. */
  readonly content: string;
  readonly contentType: ContentType;
  /** The server's sanitised HTML of a stored message, when it sent one; never set from anything else. */
  readonly html: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The files it carries (uploaded through REST); `url` is null for those received live. */
  readonly attachments: readonly ChatAttachment[];
  readonly timestamp: number;
  /** 1 when sent, one more with every edit, deletion or regeneration (the server's): never rolled back. */
  readonly version: number;
  /** When last edited (ms), or null. */
  readonly editedAt: number | null;
  /** A tombstone: deleted by its author or a moderator; content, html and metadata are empty. */
  readonly deleted: boolean;
  readonly state: MessageState;
  /** Written by this user (this tab or another). */
  readonly mine: boolean;
  /** Pending and waiting for a connection (or for a rate limit to pass). */
  readonly queued: boolean;
  readonly error: ChatErrorInfo | null;
  readonly stream: StreamInfo | null;
  /** Our rating and the counts, once we rated it (null: not rated in this page). */
  readonly feedback: FeedbackInfo | null;
  /** Local arrival order, for entries without a seq. */
  readonly order: number;
  /** Its reactions, the newest version seen (`reactions.ts`). */
  readonly reactions: ReactionState;
}

export interface Identity {
  userId: string | null;
  userName: string | null;
}

let arrivals = 0;
/** Reactions kept for messages not held; beyond it the oldest go (their page brings them again). */
const MAX_EARLY_REACTIONS = 500;

export class MessageStore {
  self: Identity = { userId: null, userName: null };
  /** Every message up to this seq that the server shows us is held (0: none yet). */
  syncedSeq = 0;
  private readonly items = new Map<string, MessageItem>();
  private readonly bySeq = new Map<number, string>();
  /** Reactions of messages not held yet (an update overtook the message, or it is on an older page). */
  private readonly earlyReactions = new Map<string, ReactionState>();
  private cached: readonly MessageItem[] | null = null;
  private version = 0;

  get size(): number {
    return this.items.size;
  }

  /** Bumped by every change. */
  get revision(): number {
    return this.version;
  }

  get(id: string): MessageItem | undefined {
    return this.items.get(id);
  }

  /** The highest seq held (0 when none). */
  get maxSeq(): number {
    let max = 0;
    for (const seq of this.bySeq.keys()) if (seq > max) max = seq;
    return max;
  }

  /** How many stored messages are held: the offset of the next older history page. */
  get storedCount(): number {
    return this.bySeq.size;
  }

  /** A message after `syncedSeq` is held while one before it is missing. */
  get hasGap(): boolean {
    return this.maxSeq > this.syncedSeq;
  }

  /** Every entry in reading order (the same array until something changes). */
  list(): readonly MessageItem[] {
    if (this.cached === null) {
      this.cached = [...this.items.values()].sort((a, b) => {
        if (a.seq !== null && b.seq !== null) return a.seq - b.seq;
        if (a.seq !== null) return -1;
        if (b.seq !== null) return 1;
        return a.order - b.order;
      });
    }
    return this.cached;
  }

  isMine(message: Pick<ChatMessage, "senderType" | "userId">): boolean {
    return message.senderType === "user" && this.self.userId !== null && message.userId === this.self.userId;
  }

  private set(item: MessageItem, previous?: MessageItem): MessageItem {
    if (previous?.seq != null && previous.seq !== item.seq && this.bySeq.get(previous.seq) === item.id) {
      this.bySeq.delete(previous.seq);
    }
    if (item.seq !== null) this.bySeq.set(item.seq, item.id);
    this.items.set(item.id, item);
    this.cached = null;
    this.version += 1;
    this.advanceSynced();
    return item;
  }

  private update(id: string, changes: Partial<MessageItem>): MessageItem | null {
    const previous = this.items.get(id);
    if (!previous) return null;
    return this.set({ ...previous, ...changes }, previous);
  }

  private advanceSynced(): void {
    while (this.bySeq.has(this.syncedSeq + 1)) this.syncedSeq += 1;
  }

  /**
   * A message the server stored: adds it, or completes the entry already
   * there (our pending entry, a streamed reply).  `added` is true only for a
   * message not seen before.
   */
  putStored(message: ChatMessage): { item: MessageItem; added: boolean } {
    const existing = this.items.get(message.id);
    const mine = (existing?.mine ?? false) || this.isMine(message);
    const early = this.earlyReactions.get(message.id) ?? NO_REACTIONS;
    this.earlyReactions.delete(message.id);
    const reactions = newer(
      newer(existing?.reactions ?? NO_REACTIONS, early),
      reactionState(message.reactions, message.reactionsVersion, this.self.userId),
    );
    const version = message.version ?? 1;
    if (existing && existing.seq !== null && existing.version > version) {
      // We hold a newer version (an edit arrived before this page); its reactions may still be newer.
      if (reactions === existing.reactions) return { item: existing, added: false };
      return { item: this.set({ ...existing, reactions }, existing), added: false };
    }
    const fields = {
      seq: message.seq,
      senderType: message.senderType,
      userId: message.userId ?? null,
      userName: message.userName ?? "",
      content: message.content ?? "",
      contentType: message.contentType ?? "text",
      html: typeof message.html === "string" ? message.html : null,
      metadata: message.metadata ?? {},
      attachments: existing && !message.attachments ? existing.attachments : (message.attachments ?? []),
      timestamp: message.timestamp ?? Date.now(),
      version,
      editedAt: message.editedAt ?? null,
      deleted: message.deleted === true,
      state: (mine ? "sent" : "stored") as MessageState,
      mine,
      queued: false,
      error: null,
      reactions,
    };
    if (existing) {
      // A late event never rolls a message back; a newer version ends a regeneration's stream.
      if (existing.version > fields.version || (existing.stream?.version ?? 0) > fields.version) {
        return { item: existing, added: false };
      }
      const same =
        existing.reactions === fields.reactions &&
        existing.seq === fields.seq &&
        existing.state === fields.state &&
        existing.content === fields.content &&
        existing.html === fields.html &&
        existing.version === fields.version &&
        existing.deleted === fields.deleted &&
        existing.attachments.length === fields.attachments.length &&
        existing.userName === fields.userName;
      if (same) return { item: existing, added: false };
      const stream = existing.stream ? { ...existing.stream, done: true } : null;
      return { item: this.set({ ...existing, ...fields, stream }, existing), added: false };
    }
    const item = this.set({ id: message.id, ...fields, stream: null, feedback: null, order: ++arrivals });
    return { item, added: true };
  }

  /** Our own new message, shown at once. */
  addLocal(fields: {
    id: string;
    content: string;
    contentType?: ContentType;
    metadata?: Record<string, unknown>;
    attachments?: readonly ChatAttachment[];
  }): MessageItem {
    return this.set({
      id: fields.id,
      seq: null,
      senderType: "user",
      userId: this.self.userId,
      userName: this.self.userName ?? "",
      content: fields.content,
      contentType: fields.contentType ?? "text",
      html: null,
      metadata: fields.metadata ?? {},
      attachments: fields.attachments ?? [],
      timestamp: Date.now(),
      version: 1,
      editedAt: null,
      deleted: false,
      state: "pending",
      mine: true,
      queued: true,
      error: null,
      stream: null,
      feedback: null,
      order: ++arrivals,
      reactions: NO_REACTIONS,
    });
  }

  /**
   * A message's reactions (`chat:reactions-updated`, or a reaction's ack): kept
   * when newer than what is held; true when something changed.
   */
  applyReactions(update: Pick<ReactionsUpdated, "messageId" | "reactions" | "reactionsVersion">): boolean {
    const incoming = reactionState(update.reactions, update.reactionsVersion, this.self.userId);
    const item = this.items.get(update.messageId);
    if (!item) {
      const held = this.earlyReactions.get(update.messageId) ?? NO_REACTIONS;
      this.earlyReactions.set(update.messageId, newer(held, incoming));
      if (this.earlyReactions.size > MAX_EARLY_REACTIONS) {
        this.earlyReactions.delete(this.earlyReactions.keys().next().value!);
      }
      return false;
    }
    const reactions = newer(item.reactions, incoming);
    if (reactions === item.reactions) return false;
    this.update(item.id, { reactions });
    return true;
  }

  /** About to go out (again): pending, not queued. */
  markSending(id: string): MessageItem | null {
    const item = this.items.get(id);
    if (!item || item.seq !== null || (item.state !== "pending" && item.state !== "failed")) return null;
    return this.update(id, { state: "pending", queued: false, error: null });
  }

  /** Waiting for a connection (or a rate limit): it goes again, with the same id. */
  markQueued(id: string): MessageItem | null {
    const item = this.items.get(id);
    if (!item || item.state !== "pending") return null;
    return item.queued ? item : this.update(id, { queued: true });
  }

  /** `chat:message-sent` or the send's ack: confirmed with its seq. */
  confirm(id: string, confirmation: { seq: number; timestamp?: number }): MessageItem | null {
    const item = this.items.get(id);
    if (!item) return null;
    if (item.seq === confirmation.seq && (item.state === "sent" || item.state === "stored")) return item;
    return this.update(id, {
      state: "sent",
      seq: confirmation.seq,
      timestamp: confirmation.timestamp ?? item.timestamp,
      queued: false,
      error: null,
    });
  }

  /** A refused send: failed with the reason; a retry reuses the id. */
  fail(id: string, error: ChatErrorInfo): MessageItem | null {
    const item = this.items.get(id);
    if (!item || item.seq !== null) return null;
    return this.update(id, { state: "failed", queued: false, error });
  }

  /** Ours that still need sending, oldest first. */
  unsent(): MessageItem[] {
    return this.list().filter((item) => item.state === "pending");
  }

  /**
   * One chunk of an agent's reply (not the final one).  A live chunk whose
   * index we already hold is skipped; a catch-up chunk (`catchUp: true`, the
   * text so far, sent to a socket that joined mid-reply) replaces the text
   * unless we hold a higher index -- so every client ends with the same text
   * (docs/protocol.md, "Resuming a streaming reply").
   */
  appendChunk(chunk: AgentStreamChunk, userName: string): MessageItem {
    return this.applyToReply(chunk, userName, chunk.catchUp === true, (content, steps) =>
      chunk.catchUp === true ? [chunk.chunk, chunk.steps ?? []] : [content + chunk.chunk, steps],
    );
  }

  /**
   * A tool-call or reasoning event of an agent's reply: by the same index
   * rule as chunks (they share the reply's index sequence).
   */
  appendStep(event: AgentToolCall | AgentReasoning, kind: "tool" | "reasoning", userName: string): MessageItem {
    return this.applyToReply(event, userName, false, (content, steps) => [content, applyStep(steps, event, kind)]);
  }

  private applyToReply(
    event: ReplyEvent,
    userName: string,
    catchUp: boolean,
    apply: (content: string, steps: AgentStep[]) => [string, AgentStep[]],
  ): MessageItem {
    let existing = this.items.get(event.messageId);
    if (existing && event.version !== undefined && existing.version < event.version) {
      // A regeneration's first event: the stored reply makes way (kept to restore).
      const regenerating = existing.state === "streaming" && existing.stream?.version === event.version;
      if (!regenerating) existing = this.startRegeneration(existing, event);
    }
    if (existing && existing.state !== "streaming") return existing; // the stored reply came first
    const stream: StreamInfo = existing?.stream ?? {
      agentId: event.agentId ?? null,
      inReplyTo: event.inReplyTo ?? null,
      lastIndex: -1,
      done: false,
      cancelled: false,
      truncated: false,
      error: null,
      interrupted: false,
      version: null,
      previous: null,
      steps: [],
    };
    // A catch-up holds every event up to its index, also live ones that reached us just before it.
    if (catchUp ? event.index < stream.lastIndex : event.index <= stream.lastIndex) return existing!; // already held
    const missed = !catchUp && event.index > stream.lastIndex + 1;
    const [content, steps] = apply(existing?.content ?? "", stream.steps);
    const next: StreamInfo = {
      ...stream,
      lastIndex: event.index,
      interrupted: catchUp ? false : stream.interrupted || missed,
      steps,
    };
    if (!existing) {
      return this.set({
        id: event.messageId,
        seq: null,
        senderType: "agent",
        userId: null,
        userName,
        content,
        contentType: "text",
        html: null,
        metadata: {},
        attachments: [],
        timestamp: event.timestamp ?? Date.now(),
        version: 1,
        editedAt: null,
        deleted: false,
        state: "streaming",
        mine: false,
        queued: false,
        error: null,
        stream: next,
        feedback: null,
        order: ++arrivals,
        reactions: NO_REACTIONS,
      });
    }
    return this.set({ ...existing, content, stream: next }, existing);
  }

  /**
   * The final chunk.  The stored reply follows as `chat:message-received`,
   * unless the run failed or was cancelled before saying anything: then the
   * entry is dropped (a failure arrives as a system message of its own).
   */
  finishStream(chunk: AgentStreamChunk): MessageItem | null {
    let item = this.items.get(chunk.messageId);
    if (item && chunk.version !== undefined && item.version < chunk.version && item.stream?.version !== chunk.version) {
      item = this.startRegeneration(item, chunk); // its first chunk is its last (refused, cancelled before it started)
    }
    if (!item || item.state !== "streaming" || !item.stream) return null;
    const previous = item.stream.previous;
    if (previous && (chunk.error || (chunk.cancelled && !item.content))) {
      // A regeneration that failed (or stopped with nothing said) leaves the reply as it was.
      return this.set(previous, item);
    }
    if (!item.content && !item.stream.steps.length && (chunk.error || chunk.cancelled)) {
      this.remove(item.id);
      return null;
    }
    const missed = chunk.index > item.stream.lastIndex + 1;
    return this.update(item.id, {
      stream: {
        ...item.stream,
        done: true,
        cancelled: chunk.cancelled === true,
        truncated: chunk.truncated === true,
        error: chunk.error ?? null,
        interrupted: item.stream.interrupted || missed,
      },
    });
  }

  /** A regeneration's first chunk: the stored reply's text makes way for the new one (kept to restore). */
  private startRegeneration(existing: MessageItem, chunk: ReplyEvent): MessageItem {
    // A newer regeneration overtaking one still streaming restores what that one would have.
    const previous = existing.state === "streaming" ? (existing.stream?.previous ?? null) : existing;
    const stream: StreamInfo = {
      agentId: chunk.agentId ?? null,
      inReplyTo: chunk.inReplyTo ?? null,
      lastIndex: -1,
      done: false,
      cancelled: false,
      truncated: false,
      error: null,
      interrupted: false,
      version: chunk.version ?? null,
      previous,
      steps: [],
    };
    return this.set({ ...existing, state: "streaming", content: "", html: null, stream }, existing);
  }

  /** Our rating of a reply and its counts (from the `chat:rate-message` ack). */
  setFeedback(id: string, feedback: FeedbackInfo): MessageItem | null {
    return this.update(id, { feedback });
  }

  /** Replies still streaming whose chunks stopped (a reconnect): marked interrupted. */
  interruptStreams(): number {
    let count = 0;
    for (const item of this.items.values()) {
      if (item.state === "streaming" && item.stream && !item.stream.done && !item.stream.interrupted) {
        this.update(item.id, { stream: { ...item.stream, interrupted: true } });
        count += 1;
      }
    }
    return count;
  }

  /**
   * `chat:message-updated`: the message as it is now, if its version is
   * newer than ours.  Null when nothing changed (a late or repeated event,
   * or a message we do not hold: history brings it as it is).
   */
  applyUpdate(event: MessageUpdated): MessageItem | null {
    const item = this.items.get(event.messageId);
    if (!item || item.seq === null || event.version <= item.version) return null;
    return this.putStored({ ...event.message, version: event.version }).item;
  }

  /** `chat:message-deleted`: a tombstone in its place, if the deletion is newer than what we hold. */
  applyDelete(event: MessageDeleted): MessageItem | null {
    const item = this.items.get(event.messageId);
    if (!item || item.seq === null || event.version <= item.version) return null;
    return this.update(item.id, {
      version: event.version,
      deleted: true,
      content: "",
      contentType: "text",
      html: null,
      metadata: {},
      attachments: [],
    });
  }

  /** A message a moderator hid (or a failed one we discard). */
  remove(id: string): boolean {
    const item = this.items.get(id);
    if (!item) return false;
    this.items.delete(id);
    if (item.seq !== null && this.bySeq.get(item.seq) === id) this.bySeq.delete(item.seq);
    this.cached = null;
    this.version += 1;
    return true;
  }

  /**
   * A history page: adds its messages; returns how many were new.  A
   * catch-up page (`afterSeq`) also moves the cursor: the server showed us
   * everything up to its last message, and with `hasMore: false` up to the
   * newest; seqs it skipped are hidden from us.
   */
  applyPage(page: { messages: readonly ChatMessage[]; afterSeq?: number | null; hasMore: boolean }): number {
    let added = 0;
    for (const message of page.messages) if (this.putStored(message).added) added += 1;
    if (typeof page.afterSeq === "number" && page.afterSeq <= this.syncedSeq) {
      const last = page.messages.length ? page.messages[page.messages.length - 1]!.seq : page.afterSeq;
      const reached = page.hasMore ? last : Math.max(last, this.maxSeq);
      if (reached > this.syncedSeq) {
        this.syncedSeq = reached;
        this.version += 1;
      }
      this.advanceSynced();
    }
    return added;
  }

  /** The newest page, on first load: the cursor starts at its newest message. */
  applyLatestPage(page: { messages: readonly ChatMessage[] }): number {
    const added = this.applyPage({ messages: page.messages, hasMore: false });
    const newest = page.messages.length ? page.messages[page.messages.length - 1]!.seq : 0;
    if (newest > this.syncedSeq) this.syncedSeq = newest;
    this.advanceSynced();
    return added;
  }
}

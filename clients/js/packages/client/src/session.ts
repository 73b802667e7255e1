/**
 * One chat session on a ChatClient's connection: join, history, catch-up,
 * send and resend, typing, presence, agent streams, moderation.
 *
 * What happens when:
 * - connect (and every reconnect): join; the first time load the newest
 *   history page, afterwards catch up with `afterSeq` from the catch-up
 *   cursor (`store.syncedSeq`), page by page while `hasMore` -- skipped when
 *   the join's `lastSeq` says nothing is missing; then resend what is still
 *   unconfirmed, with the same ids (the server answers a repeat with
 *   `duplicate: true`).  Every message is kept by id: nothing shows twice.
 * - a live message whose seq leaves a gap: the same catch-up, after a short
 *   wait in case the gap closes by itself (our own confirmation in flight).
 * - send: a pending entry at once, confirmed by the ack (or
 *   `chat:message-sent`), failed with the error otherwise.  Sends go one at a
 *   time, so they are stored in the order written.  `rate_limited` holds the
 *   queue for `retryAfter` and then sends again by itself; so does a
 *   retryable `internal` (a few times).
 * - typing: `noteInput(text)` on every edit; `isTyping: true` when typing
 *   starts and every 2 s while it goes on, `false` 3 s after the last edit,
 *   when the text is emptied or sent.
 * - reactions: `react`/`unreact`/`toggleReaction`; every message keeps the
 *   reactions with the highest version (`reactions.ts`), from the ack, the
 *   broadcast or a history page, whichever order they come in.
 * - read state: `markRead()` moves our pointer to the newest message held
 *   (the server never moves it back); `lastReadSeq`/`unreadCount` are the
 *   server's, and `readReceipts` every member's pointer (`readstate.ts`).
 *
 * Views read `getSnapshot()` (a new object after every change) and
 * `subscribe()` to changes: the shape React's `useSyncExternalStore` wants.
 */

import type { ChatClient, ConnectionStatus } from "./client.js";
import { ChatRequestError, errorInfo } from "./errors.js";
import type {
  AckResult,
  AgentReasoning,
  AgentStreamChunk,
  AgentToolCall,
  CancelAgentAck,
  ChatAttachment,
  ChatMessage,
  MessageChangeAck,
  ChatPresence,
  ContentType,
  OutgoingMessage,
  PresenceStatus,
  RateMessageAck,
  RegenerateAck,
  ServerToClientPayloads,
} from "./events.js";
import { absolute, type UploadProgress } from "./attachments.js";
import { newId } from "./ids.js";
import { type Person, PresenceTracker, type Typer } from "./presence.js";
import { ReadState } from "./readstate.js";
import { type ChatErrorInfo, type Identity, type MessageItem, MessageStore } from "./store.js";

export interface SessionOptions {
  /** The agent of a session this join creates (e.g. `echo`). */
  agentId?: string | null;
  /** Messages in the first page and each older page (default 30). */
  pageSize?: number;
}

export type SessionStatus = "idle" | "joining" | "joined" | "error" | "banned" | "left";
export type ErrorScope = "join" | "send" | "history" | "cancel" | "edit" | "regenerate" | "rate" | "session";

export interface SessionError extends ChatErrorInfo {
  scope: ErrorScope;
}

export interface SessionSnapshot {
  readonly sessionId: string;
  readonly workspaceId: string;
  readonly status: SessionStatus;
  readonly connection: ConnectionStatus;
  readonly joined: boolean;
  /** Closed by a moderator or the API: readable, not writable. */
  readonly closed: boolean;
  readonly title: string | null;
  readonly agentId: string | null;
  readonly self: Identity;
  readonly messages: readonly MessageItem[];
  readonly initialLoaded: boolean;
  readonly hasOlder: boolean;
  readonly loadingOlder: boolean;
  readonly typing: readonly Typer[];
  readonly presence: readonly Person[];
  readonly error: SessionError | null;
  /** Sends wait until then (ms since the epoch) after `rate_limited`. */
  readonly sendBlockedUntil: number;
  /** The seq we marked read, and what others wrote after it (the server's count). */
  readonly lastReadSeq: number;
  readonly unreadCount: number;
  /** userId -> the seq each member read up to (read receipts), as far as we heard. */
  readonly readReceipts: Readonly<Record<string, number>>;
}

type SessionEventName =
  | "chat:message-received"
  | "chat:message-sent"
  | "chat:agent-stream-chunk"
  | "chat:agent-tool-call"
  | "chat:agent-reasoning"
  | "chat:typing-indicator"
  | "chat:user-joined"
  | "chat:presence-updated"
  | "chat:user-left"
  | "chat:message-hidden"
  | "chat:message-unhidden"
  | "chat:message-updated"
  | "chat:message-deleted"
  | "chat:session-closed"
  | "chat:session-updated"
  | "chat:session-left"
  | "chat:reactions-updated"
  | "chat:read-updated";

const DEFAULT_PAGE = 30;
const CATCH_UP_PAGE = 200;
const MAX_CATCH_UP_PAGES = 100;
const HISTORY_TIMEOUT_MS = 15_000;
const SEND_TIMEOUT_MS = 15_000;
const SMALL_TIMEOUT_MS = 5_000;
/** At most one read mark per this long (the server's default `read` limit is 120 a minute). */
const READ_INTERVAL_MS = 1_000;
const RETRY_MS = 2_000;
const GAP_WAIT_MS = 300;
const TYPING_RENEW_MS = 2_000;
const TYPING_IDLE_MS = 3_000;
const MAX_INTERNAL_RETRIES = 3;
const DEFAULT_PRESENCE_TTL_MS = 30_000;

export class ChatSession {
  readonly store = new MessageStore();
  readonly presence = new PresenceTracker();
  readonly read = new ReadState();
  private status: SessionStatus = "idle";
  private joined = false;
  private closed = false;
  private title: string | null = null;
  private agentId: string | null;
  private initialLoaded = false;
  private hasOlder = false;
  private loadingOlder = false;
  private error: SessionError | null = null;
  private sendBlockedUntil = 0;
  private ownStatus: PresenceStatus = "active";
  private readonly agentNames = new Map<string, string>();
  private readonly pageSize: number;

  private snapshot: SessionSnapshot | null = null;
  private readonly listeners = new Set<() => void>();
  private refs = 0;
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;
  private joinAttempt = 0;
  private sendChain: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<string>();
  private readonly internalRetries = new Map<string, number>();
  private catchingUp = false;
  private catchUpAgain = false;
  private gapTimer: ReturnType<typeof setTimeout> | null = null;
  private olderBoost = 0;
  private typing = false;
  private readChain: Promise<void> = Promise.resolve();
  private readWanted = 0;
  private markedAt = 0;
  private typingSentAt = 0;
  private typingIdle: ReturnType<typeof setTimeout> | null = null;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly client: ChatClient,
    readonly sessionId: string,
    readonly workspaceId: string,
    options: SessionOptions,
    private readonly onStopped: () => void,
  ) {
    this.agentId = options.agentId ?? null;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE;
    const user = client.options.user;
    if (user) this.setSelf(user.id, user.name ?? user.id);
  }

  // --- observing -----------------------------------------------------------------------

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getSnapshot(): SessionSnapshot {
    if (this.snapshot === null) {
      this.snapshot = {
        sessionId: this.sessionId,
        workspaceId: this.workspaceId,
        status: this.status,
        connection: this.client.status,
        joined: this.joined,
        closed: this.closed,
        title: this.title,
        agentId: this.agentId,
        self: { ...this.store.self },
        messages: this.store.list(),
        initialLoaded: this.initialLoaded,
        hasOlder: this.hasOlder,
        loadingOlder: this.loadingOlder,
        typing: this.presence.typingList(),
        presence: this.presence.list(),
        error: this.error,
        sendBlockedUntil: this.sendBlockedUntil,
        lastReadSeq: this.read.lastReadSeq,
        unreadCount: this.read.unreadCount,
        readReceipts: this.read.receiptList(),
      };
    }
    return this.snapshot;
  }

  private changed(): void {
    this.snapshot = null;
    for (const listener of [...this.listeners]) listener();
  }

  private later(action: () => void, ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) action();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private setError(error: ChatErrorInfo | null, scope: ErrorScope = "session"): void {
    this.error = error ? { ...error, scope } : null;
    this.changed();
  }

  dismissError(): void {
    this.setError(null);
  }

  private setSelf(userId: string, userName: string): void {
    this.store.self = { userId, userName };
    this.presence.selfId = userId;
  }

  /** Who we are, as the application knows it, until a join says what the server knows. */
  identify(userId: string, userName?: string): void {
    if (this.store.self.userId === null) {
      this.setSelf(userId, userName ?? userId);
      this.changed();
    }
  }

  private ids(): { sessionId: string; workspaceId: string } {
    return { sessionId: this.sessionId, workspaceId: this.workspaceId };
  }

  // --- life cycle (called by the client) -----------------------------------------------------

  start(): void {
    if (this.client.connected) void this.join();
  }

  retain(): void {
    this.refs += 1;
    if (this.releaseTimer !== null) {
      clearTimeout(this.releaseTimer);
      this.releaseTimer = null;
    }
  }

  /** Drop a reference; the last one leaves the session a tick later (unless retained again). */
  release(): void {
    this.refs = Math.max(0, this.refs - 1);
    if (this.refs > 0 || this.releaseTimer !== null) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      if (this.refs === 0) this.stop();
    }, 0);
  }

  /** Leave the session and stop every timer. */
  stop(): void {
    if (this.stopped) return;
    this.stopTyping();
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const timer of [this.releaseTimer, this.gapTimer, this.typingIdle, this.expiryTimer]) {
      if (timer !== null) clearTimeout(timer);
    }
    if (this.joined && this.client.connected) this.client.request("chat:leave-session", this.ids()).catch(() => {});
    this.joined = false;
    this.status = "left";
    this.onStopped();
    this.changed();
  }

  connected(): void {
    void this.join();
  }

  disconnected(): void {
    this.joined = false;
    this.typing = false;
    if (this.status === "joined" || this.status === "joining") this.status = "joining";
    for (const item of this.store.list()) if (item.state === "pending") this.store.markQueued(item.id);
    this.changed();
  }

  connectionChanged(): void {
    this.changed();
  }

  banned(): void {
    this.status = "banned";
    this.joined = false;
    this.setError({ code: "banned", message: "You were removed from this workspace.", retryable: false }, "session");
  }

  // --- joining, history, catch-up ----------------------------------------------------------

  private async join(): Promise<void> {
    if (this.stopped || this.status === "banned" || !this.client.connected) return;
    const attempt = ++this.joinAttempt;
    this.status = "joining";
    this.changed();
    let ack: AckResult<"chat:join-session">;
    try {
      ack = await this.client.request("chat:join-session", {
        ...this.ids(),
        ...(this.agentId ? { agentId: this.agentId } : {}),
      });
    } catch (error) {
      if (attempt === this.joinAttempt && (error as ChatRequestError).code === "timeout") {
        this.later(() => attempt === this.joinAttempt && void this.join(), RETRY_MS);
      }
      return; // offline: the next connect joins
    }
    if (attempt !== this.joinAttempt || this.stopped) return;
    if (!ack.ok) {
      this.status = ack.code === "banned" ? "banned" : "error";
      this.setError(errorInfo(ack), "join");
      if (ack.code === "rate_limited" || (ack.code === "internal" && ack.retryable)) {
        this.later(() => attempt === this.joinAttempt && void this.join(), ack.retryAfter ?? RETRY_MS);
      }
      return;
    }
    const rejoin = this.initialLoaded;
    this.joined = true;
    this.status = "joined";
    this.closed = ack.status === "closed";
    this.agentId = ack.agentId;
    this.setSelf(ack.presence.userId, ack.presence.userName);
    if (this.error?.scope === "join") this.error = null;
    if (rejoin) this.presence.markUnconfirmed(Date.now());
    this.presence.put(ack.presence);
    this.read.ownPointer(ack.lastReadSeq ?? 0, ack.unreadCount ?? 0, ack.lastSeq);
    this.read.receipt(ack.presence.userId, ack.lastReadSeq ?? 0);
    this.scheduleExpiry();
    this.changed();
    this.loadPresence();
    if (this.ownStatus !== "active") this.sendPresence(this.ownStatus);
    try {
      if (!this.initialLoaded) await this.loadLatest();
      else if (ack.lastSeq > this.store.syncedSeq || this.store.hasGap) await this.catchUp();
      if (rejoin && this.store.interruptStreams()) this.changed();
    } finally {
      if (attempt === this.joinAttempt && this.joined) this.flushUnsent();
    }
  }

  private loadPresence(): void {
    const fetchPresence = this.client.options.fetchPresence;
    if (!fetchPresence) return;
    fetchPresence(this.sessionId, this.workspaceId).then(
      (list) => {
        for (const presence of list) this.presence.put(presence);
        this.changed();
      },
      () => {},
    );
  }

  private history(params: { limit: number; offset?: number; afterSeq?: number }): Promise<AckResult<"chat:request-history">> {
    return this.client.request("chat:request-history", { ...this.ids(), ...params }, HISTORY_TIMEOUT_MS);
  }

  private historyFailed(error: unknown): void {
    const info = error instanceof ChatRequestError ? error.info : errorInfo(error as AckResult<"chat:request-history">);
    if (info.code !== "offline") this.setError(info, "history");
  }

  private async loadLatest(): Promise<void> {
    this.loadingOlder = true;
    this.changed();
    try {
      const page = await this.history({ limit: this.pageSize });
      if (!page.ok) throw page;
      this.store.applyLatestPage(page);
      this.hasOlder = page.hasMore;
      this.initialLoaded = true;
      if (this.error?.scope === "history") this.error = null;
    } catch (error) {
      this.historyFailed(error);
      if (this.joined) this.later(() => this.joined && !this.initialLoaded && void this.loadLatest(), RETRY_MS);
    } finally {
      this.loadingOlder = false;
      this.changed();
    }
  }

  /** The page of history before the oldest message held (infinite scroll upward). */
  async loadOlder(): Promise<void> {
    if (!this.joined || this.loadingOlder || !this.hasOlder || !this.initialLoaded) return;
    this.loadingOlder = true;
    this.changed();
    try {
      const page = await this.history({ limit: this.pageSize, offset: this.store.storedCount + this.olderBoost });
      if (!page.ok) throw page;
      const added = this.store.applyPage({ messages: page.messages, hasMore: page.hasMore });
      // Pages count from the newest message; if ones we do not hold shifted them, step further back.
      this.olderBoost = added === 0 && page.hasMore ? this.olderBoost + this.pageSize : 0;
      this.hasOlder = page.hasMore;
    } catch (error) {
      this.historyFailed(error);
    } finally {
      this.loadingOlder = false;
      this.changed();
    }
  }

  /** Everything after the catch-up cursor, page by page while `hasMore`. */
  private async catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (let page = 0; page < MAX_CATCH_UP_PAGES && this.joined; page += 1) {
        const after = this.store.syncedSeq;
        const response = await this.history({ afterSeq: after, limit: CATCH_UP_PAGE });
        if (!response.ok) throw response;
        if (this.store.applyPage({ messages: response.messages, afterSeq: response.afterSeq ?? after, hasMore: response.hasMore })) {
          this.changed();
        }
        if (!response.hasMore) break;
      }
      if (this.error?.scope === "history") this.setError(null);
    } catch (error) {
      this.historyFailed(error);
      if (!(error instanceof ChatRequestError && error.code === "offline")) {
        this.later(() => this.joined && void this.catchUp(), RETRY_MS);
      }
    } finally {
      this.catchingUp = false;
      if (this.catchUpAgain) {
        this.catchUpAgain = false;
        void this.catchUp();
      }
    }
  }

  private checkGap(): void {
    if (!this.initialLoaded || !this.store.hasGap || this.gapTimer !== null) return;
    this.gapTimer = this.later(() => {
      this.gapTimer = null;
      if (this.joined && this.store.hasGap) void this.catchUp();
    }, GAP_WAIT_MS);
  }

  // --- sending ----------------------------------------------------------------------------

  /** Upload a file to this session; pass what it resolves with in `send`'s `attachments`. */
  uploadAttachment(file: Blob, onProgress?: UploadProgress): Promise<ChatAttachment> {
    return this.client.uploadAttachment(this.workspaceId, this.sessionId, file, onProgress);
  }

  /** A download link for one of this session's attachments: its own `url`, or a fresh one (received live). */
  attachmentUrl(attachment: ChatAttachment): Promise<string> {
    if (attachment.url) return Promise.resolve(absolute(this.client.restTarget().base, attachment.url));
    return this.client.attachmentLink(this.workspaceId, this.sessionId, attachment.id);
  }

  /**
   * Send `text` as a new message, with `attachments` uploaded before (at most 10; their names stand in
   * for an empty text); returns its entry (null when there is nothing to send).
   */
  send(
    text: string,
    options: {
      contentType?: ContentType;
      metadata?: Record<string, unknown>;
      id?: string;
      attachments?: readonly ChatAttachment[];
    } = {},
  ): MessageItem | null {
    const attachments = options.attachments ?? [];
    let content = String(text ?? "").replace(/\s+$/, "");
    if (!content.trim() && attachments.length) content = attachments.map((attachment) => attachment.name).join(", ");
    if (!content.trim()) return null;
    if (this.closed) {
      this.setError({ code: "session_closed", message: "This conversation is closed.", retryable: false }, "send");
      return null;
    }
    const item = this.store.addLocal({
      id: options.id ?? newId("m"),
      content,
      contentType: options.contentType ?? "text",
      metadata: options.metadata ?? {},
      attachments,
    });
    this.stopTyping();
    this.changed();
    this.deliver(item.id);
    return item;
  }

  /** Send a failed message again, with the same id. */
  retry(id: string): void {
    const item = this.store.get(id);
    if (!item || item.state !== "failed") return;
    if (this.error?.scope === "send") this.error = null;
    this.internalRetries.delete(id);
    this.deliver(id);
  }

  /** Drop a failed message. */
  discard(id: string): void {
    if (this.store.get(id)?.state === "failed" && this.store.remove(id)) this.changed();
  }

  private deliver(id: string): void {
    this.store.markSending(id);
    this.changed();
    this.sendChain = this.sendChain.then(() => this.deliverNow(id));
  }

  private flushUnsent(): void {
    for (const item of this.store.unsent()) if (!this.inFlight.has(item.id)) this.deliver(item.id);
  }

  private async deliverNow(id: string): Promise<void> {
    const item = this.store.get(id);
    if (!item || item.state !== "pending" || this.inFlight.has(id) || this.stopped) return;
    const wait = this.sendBlockedUntil - Date.now();
    if (!this.client.connected || !this.joined || wait > 0) {
      this.store.markQueued(id);
      this.changed();
      if (wait > 0) this.later(() => this.flushUnsent(), wait);
      return;
    }
    this.inFlight.add(id);
    let ack: AckResult<"chat:send-message">;
    try {
      const { content, contentType, metadata, attachments } = item;
      const message: OutgoingMessage = { id, ...this.ids(), content, contentType, metadata: { ...metadata } };
      if (attachments.length) message.attachments = attachments.map((attachment) => attachment.id);
      ack = await this.client.request("chat:send-message", { message }, SEND_TIMEOUT_MS);
    } catch {
      // No answer: it may or may not be stored.  It goes again with the same id after the
      // next (re)join, and the server answers a repeat with the original confirmation.
      this.store.markQueued(id);
      this.changed();
      if (this.client.connected) this.later(() => this.flushUnsent(), RETRY_MS);
      return;
    } finally {
      this.inFlight.delete(id);
    }
    if (ack.ok) {
      this.internalRetries.delete(id);
      this.store.confirm(id, ack);
      if (this.error?.scope === "send" && this.error.code === "rate_limited") this.error = null;
      this.changed();
      this.checkGap();
      return;
    }
    const error = errorInfo(ack);
    if (ack.code === "not_joined") {
      // Our join was lost (the server restarted under us): join again, then it goes again.
      this.store.markQueued(id);
      this.joined = false;
      void this.join();
      return;
    }
    if (ack.code === "rate_limited") {
      this.sendBlockedUntil = error.until ?? Date.now() + 1_000;
      this.store.markQueued(id);
      this.setError(error, "send");
      this.later(() => this.flushUnsent(), this.sendBlockedUntil - Date.now());
      return;
    }
    const retries = this.internalRetries.get(id) ?? 0;
    if (ack.code === "internal" && ack.retryable && retries < MAX_INTERNAL_RETRIES) {
      this.internalRetries.set(id, retries + 1);
      this.store.markQueued(id);
      this.changed();
      this.later(() => this.flushUnsent(), RETRY_MS * 2 ** retries);
      return;
    }
    if (ack.code === "session_closed") this.closed = true;
    this.store.fail(id, error);
    this.setError(error, "send");
  }

  // --- agents -----------------------------------------------------------------------------

  /** Stop an agent's reply: `messageId` is the reply's id or the id of the message it answers. */
  async cancelAgent(messageId: string): Promise<CancelAgentAck | null> {
    try {
      const ack = await this.client.request("chat:cancel-agent", { ...this.ids(), messageId }, SMALL_TIMEOUT_MS);
      if (ack.ok) return ack;
      this.setError(errorInfo(ack), "cancel");
    } catch (error) {
      this.setError((error as ChatRequestError).info, "cancel");
    }
    return null;
  }

  /**
   * Ask the agent again for a reply it gave (`messageId`: the reply's id).  The new text streams
   * into the same entry (chunks with a `version`) and replaces it once stored; if the run fails the
   * reply stays as it was.  Pass the same `requestId` to retry a request safely (it runs once).
   */
  async regenerate(messageId: string, requestId: string = newId("r")): Promise<RegenerateAck | null> {
    try {
      const ack = await this.client.request("chat:regenerate", { ...this.ids(), messageId, requestId }, SMALL_TIMEOUT_MS);
      if (ack.ok) return ack;
      this.setError(errorInfo(ack), "regenerate");
    } catch (error) {
      this.setError((error as ChatRequestError).info, "regenerate");
    }
    return null;
  }

  /** Rate an agent's reply (`null` clears our rating); the entry's `feedback` holds the counts after. */
  async rateMessage(messageId: string, rating: "up" | "down" | null, comment?: string): Promise<RateMessageAck | null> {
    const payload = { ...this.ids(), messageId, rating, ...(comment !== undefined ? { comment } : {}) };
    try {
      const ack = await this.client.request("chat:rate-message", payload, SMALL_TIMEOUT_MS);
      if (ack.ok) {
        if (this.store.setFeedback(messageId, { ...ack.feedback, mine: ack.rating })) this.changed();
        return ack;
      }
      this.setError(errorInfo(ack), "rate");
    } catch (error) {
      this.setError((error as ChatRequestError).info, "rate");
    }
    return null;
  }

  // --- editing and deleting -------------------------------------------------------------------

  /**
   * Edit one of our messages (within the workspace's edit window).  The
   * version sent is the one we hold, so an edit of a message that changed
   * meanwhile is refused with `version_conflict` rather than overwriting it.
   * The entry changes when `chat:message-updated` (or the ack) comes back;
   * a refusal is the session's error with scope `edit`, and null.
   */
  async editMessage(
    messageId: string,
    content: string,
    options: { contentType?: ContentType; metadata?: Record<string, unknown> } = {},
  ): Promise<MessageChangeAck | null> {
    const item = this.store.get(messageId);
    if (!item || item.seq === null) return null;
    return this.change("chat:edit-message", {
      ...this.ids(),
      messageId,
      version: item.version,
      content,
      ...options,
    });
  }

  /** Delete a message (ours within the edit window, any as a moderator): a tombstone takes its place. */
  async deleteMessage(messageId: string): Promise<MessageChangeAck | null> {
    const item = this.store.get(messageId);
    if (!item || item.seq === null) return null;
    return this.change("chat:delete-message", { ...this.ids(), messageId });
  }

  private async change(
    event: "chat:edit-message" | "chat:delete-message",
    payload: Parameters<ChatClient["request"]>[1],
  ): Promise<MessageChangeAck | null> {
    try {
      const ack = await this.client.request(event, payload as never, SEND_TIMEOUT_MS);
      if (ack.ok) {
        this.later(() => {
          if (ack.version > (this.store.get(ack.messageId)?.version ?? ack.version)) this.refresh();
        }, GAP_WAIT_MS);
        return ack;
      }
      this.setError(errorInfo(ack), "edit");
    } catch (error) {
      this.setError((error as ChatRequestError).info, "edit");
    }
    return null;
  }

  /** The broadcast of our own change did not come: read the newest page, which holds the message as it is. */
  private refresh(): void {
    this.history({ limit: this.pageSize })
      .then((ack) => {
        if (!ack.ok) return;
        this.store.applyPage({ messages: ack.messages, hasMore: true });
        this.changed();
      })
      .catch(() => {});
  }

  // --- typing and presence -------------------------------------------------------------------

  /** Call on every edit of the message box, with its text: typing events go out debounced. */
  noteInput(text: string): void {
    if (!String(text ?? "").trim()) {
      this.stopTyping();
      return;
    }
    if (!this.joined || this.closed) return;
    const now = Date.now();
    if (!this.typing || now - this.typingSentAt >= TYPING_RENEW_MS) {
      this.typing = true;
      this.typingSentAt = now;
      this.emitTyping(true);
    }
    if (this.typingIdle !== null) clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => {
      this.typingIdle = null;
      this.stopTyping();
    }, TYPING_IDLE_MS);
  }

  stopTyping(): void {
    if (this.typingIdle !== null) clearTimeout(this.typingIdle);
    this.typingIdle = null;
    if (!this.typing) return;
    this.typing = false;
    this.emitTyping(false);
  }

  private emitTyping(isTyping: boolean): void {
    if (this.joined) this.client.request("chat:typing", { ...this.ids(), isTyping }, SMALL_TIMEOUT_MS).catch(() => {});
  }

  /** Our own status (active / idle / away): everyone in the session sees it. */
  setStatus(status: PresenceStatus): void {
    if (status === this.ownStatus) return;
    this.ownStatus = status;
    if (this.joined) this.sendPresence(status);
  }

  private sendPresence(status: PresenceStatus): void {
    this.client.request("chat:update-presence", { ...this.ids(), status }, SMALL_TIMEOUT_MS).catch(() => {});
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const ttl = this.client.options.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS;
    const candidates = [this.presence.nextExpiry(ttl), this.presence.nextTypingExpiry()].filter((at) => at !== null);
    if (!candidates.length) return;
    const at = Math.min(...(candidates as number[]));
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      const now = Date.now();
      const expired = this.presence.expire(now, ttl);
      const changed = this.presence.expireTyping(now) || expired;
      this.scheduleExpiry();
      if (changed) this.changed();
    }, Math.max(0, at - Date.now()) + 1);
  }

  // --- reactions and read state ----------------------------------------------------------------

  /** Add our `emoji` to a message; resolves with the error info when refused (null when it worked). */
  react(messageId: string, emoji: string): Promise<ChatErrorInfo | null> {
    return this.reaction("chat:add-reaction", messageId, emoji);
  }

  unreact(messageId: string, emoji: string): Promise<ChatErrorInfo | null> {
    return this.reaction("chat:remove-reaction", messageId, emoji);
  }

  /** Add it if we have not reacted with it, remove it if we have. */
  toggleReaction(messageId: string, emoji: string): Promise<ChatErrorInfo | null> {
    const mine = this.store.get(messageId)?.reactions.reactions.some((r) => r.emoji === emoji && r.me) ?? false;
    return mine ? this.unreact(messageId, emoji) : this.react(messageId, emoji);
  }

  private async reaction(
    event: "chat:add-reaction" | "chat:remove-reaction",
    messageId: string,
    emoji: string,
  ): Promise<ChatErrorInfo | null> {
    let ack: AckResult<typeof event>;
    try {
      ack = await this.client.request(event, { ...this.ids(), messageId, emoji }, SMALL_TIMEOUT_MS);
    } catch (error) {
      return error instanceof ChatRequestError ? error.info : { code: "internal", message: String(error), retryable: true };
    }
    if (!ack.ok) {
      const info = errorInfo(ack);
      this.setError(info, "session");
      return info;
    }
    if (this.store.applyReactions({ messageId, reactions: ack.reactions, reactionsVersion: ack.reactionsVersion })) this.changed();
    return null;
  }

  /**
   * Mark read up to `seq` (default: the newest message held); nothing is sent if we already read that far.
   *
   * Safe to call for every message that arrives on screen: one mark is in
   * flight at a time and they go at most once per `READ_INTERVAL_MS`, the
   * waiting ones as one with the newest seq, so a busy session stays far
   * inside the server's per-person `read` limit. Resolves when a mark that
   * covers `seq` has been answered.
   */
  markRead(seq: number = this.store.maxSeq): Promise<void> {
    if (!this.joined || seq <= this.read.lastReadSeq || seq <= this.readWanted) return this.readChain;
    this.readWanted = seq;
    this.readChain = this.readChain.then(() => this.sendMark());
    return this.readChain;
  }

  private async sendMark(): Promise<void> {
    if (this.readWanted <= this.read.lastReadSeq) return; // an earlier mark covered it
    const wait = this.markedAt + READ_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const seq = this.readWanted;
    if (!this.joined || this.stopped || seq <= this.read.lastReadSeq) return;
    this.markedAt = Date.now();
    try {
      const ack = await this.client.request("chat:mark-read", { ...this.ids(), seq }, SMALL_TIMEOUT_MS);
      if (ack.ok && this.read.ownPointer(ack.lastReadSeq, ack.unreadCount, Math.max(seq, this.store.maxSeq))) {
        if (this.store.self.userId) this.read.receipt(this.store.self.userId, ack.lastReadSeq);
        this.changed();
      }
      if (!ack.ok) this.readWanted = this.read.lastReadSeq;
    } catch {
      this.readWanted = this.read.lastReadSeq; // offline: the next markRead (or join) sends it
    }
  }

  // --- server events ---------------------------------------------------------------------------

  receive<E extends SessionEventName>(event: E, payload: ServerToClientPayloads[E]): void {
    if (this.stopped) return;
    switch (event) {
      case "chat:message-received":
        return this.onMessage(payload as ChatMessage);
      case "chat:message-sent": {
        const sent = payload as ServerToClientPayloads["chat:message-sent"];
        if (this.store.confirm(sent.messageId, sent)) this.changed();
        return;
      }
      case "chat:agent-stream-chunk":
        return this.onChunk(payload as AgentStreamChunk);
      case "chat:agent-tool-call":
      case "chat:agent-reasoning": {
        const step = payload as AgentToolCall | AgentReasoning;
        const name = this.agentNames.get(step.agentId) ?? step.agentId ?? "Agent";
        this.store.appendStep(step, event === "chat:agent-tool-call" ? "tool" : "reasoning", name);
        this.changed();
        return;
      }
      case "chat:typing-indicator": {
        const indicator = payload as ServerToClientPayloads["chat:typing-indicator"];
        if (indicator.senderType === "agent" && indicator.agentId) this.agentNames.set(indicator.agentId, indicator.userName);
        if (this.presence.typing(indicator, Date.now())) {
          this.scheduleExpiry();
          this.changed();
        }
        return;
      }
      case "chat:user-joined":
      case "chat:presence-updated":
        this.presence.put(payload as ChatPresence);
        this.changed();
        return;
      case "chat:user-left": {
        const left = payload as ServerToClientPayloads["chat:user-left"];
        this.presence.leave(left.userId, left.socketId);
        this.changed();
        return;
      }
      case "chat:message-hidden": {
        const hidden = payload as ServerToClientPayloads["chat:message-hidden"];
        if (this.store.remove(hidden.messageId)) this.changed();
        return;
      }
      case "chat:message-unhidden":
        this.store.putStored((payload as ServerToClientPayloads["chat:message-unhidden"]).message);
        this.changed();
        return;
      case "chat:message-updated":
        if (this.store.applyUpdate(payload as ServerToClientPayloads["chat:message-updated"])) this.changed();
        return;
      case "chat:message-deleted":
        if (this.store.applyDelete(payload as ServerToClientPayloads["chat:message-deleted"])) this.changed();
        return;
      case "chat:session-closed":
        this.closed = true;
        this.stopTyping();
        this.changed();
        return;
      case "chat:session-updated": {
        const updated = payload as ServerToClientPayloads["chat:session-updated"];
        this.title = updated.title;
        this.agentId = updated.agentId;
        this.closed = updated.status === "closed";
        this.changed();
        return;
      }
      case "chat:reactions-updated":
        if (this.store.applyReactions(payload as ServerToClientPayloads["chat:reactions-updated"])) this.changed();
        return;
      case "chat:read-updated": {
        const read = payload as ServerToClientPayloads["chat:read-updated"];
        let news = this.read.receipt(read.userId, read.seq);
        if (read.userId === this.store.self.userId) news = this.read.ownPointer(read.seq, read.unreadCount, this.store.maxSeq) || news;
        if (news) this.changed();
        return;
      }
      case "chat:session-left": {
        // The server took us out: our access ended (unshared, removed, demoted).  A later connect tries again.
        const left = payload as ServerToClientPayloads["chat:session-left"];
        this.joined = false;
        this.typing = false;
        this.status = "error";
        this.setError({ code: left.code, message: left.message, retryable: false }, "session");
        return;
      }
    }
  }

  private onMessage(message: ChatMessage): void {
    this.store.putStored(message);
    if (!this.store.isMine(message)) this.read.noteMessage(message.seq);
    if (message.senderType === "user") {
      this.presence.confirmUser(message.userId);
      this.presence.stopTyping(`user:${message.userId}`);
    }
    this.changed();
    this.checkGap();
  }

  private onChunk(chunk: AgentStreamChunk): void {
    if (chunk.isComplete) {
      this.store.finishStream(chunk);
      this.changed();
      return;
    }
    const name = this.agentNames.get(chunk.agentId) ?? chunk.agentId ?? "Agent";
    this.store.appendChunk(chunk, name);
    this.changed();
  }
}

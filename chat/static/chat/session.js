/**
 * One chat session as the user sees it: joining, history, sending, typing, presence, agents.
 *
 * Speaks the protocol of docs/protocol.md over a Connection and keeps the
 * state a view shows; it touches no DOM.  A view listens for:
 *   "change"   -- detail.kind: messages | history | typing | presence | status | error
 *   "announce" -- detail.text: a sentence for the screen-reader live region
 *
 * What happens when:
 * - connect (and every reconnect): join; the first time load the newest
 *   history page, afterwards catch up with `afterSeq` from the highest seq
 *   held, repeating while `hasMore`; then resend what is still unconfirmed,
 *   with the same ids (the server answers a repeat with `duplicate: true`).
 *   Every message is kept by id, so nothing shows twice.
 * - a live message whose seq leaves a gap: catch up the same way.
 * - send: an optimistic bubble at once, confirmed on `chat:message-sent` (or
 *   the ack), failed with the error otherwise; sends go one at a time, so
 *   they are stored in the order they were written.
 * - typing: `isTyping: true` when typing starts and renewed every 2 s while
 *   it goes on (never once per key), `false` 3 s after the last key, when
 *   the box is emptied, or when the message is sent.
 * - reactions: `toggleReaction(id, emoji)` adds or removes ours; every
 *   member's change arrives as `chat:reactions-updated` and the store keeps
 *   the newest version of each message's reactions.
 * - read state: `markRead()` (the view calls it while the newest messages
 *   are on screen) moves our pointer to the newest seq held, at most once a
 *   second whatever the traffic (one mark in flight, the newest seq); the server
 *   never moves it back.  `lastReadSeq`/`unreadCount` are the server's, and
 *   `readBy` every member's pointer (read receipts, `chat:read-updated`).
 */

import { RequestError } from "./connection.js";
import { plainText } from "./message_body.js";
import { MessageState, MessageStore, newId } from "./store.js";

const HISTORY_PAGE = 30;
const CATCH_UP_PAGE = 200;
const MAX_CATCH_UP_PAGES = 100;
const HISTORY_TIMEOUT_MS = 15_000;
const SEND_TIMEOUT_MS = 15_000;
const TYPING_RENEW_MS = 2_000;
const TYPING_IDLE_MS = 3_000;
/** The server ends a typing state after 5 s without renewal; this only guards against a lost event. */
const OTHERS_TYPING_TIMEOUT_MS = 7_000;
const JOIN_RETRY_MS = 2_000;
/** At most one read mark per this long (the server's default `read` limit is 120 a minute). */
const READ_INTERVAL_MS = 1_000;
const STATUS_RANK = { active: 0, idle: 1, away: 2 };

/** A refused request's error, as the store and the view keep it. */
export function errorFrom(ack) {
  const error = { code: ack.code ?? "internal", message: ack.error ?? "Something went wrong.", retryable: !!ack.retryable };
  if (typeof ack.retryAfter === "number") {
    error.retryAfter = ack.retryAfter;
    error.until = Date.now() + ack.retryAfter;
  }
  if (typeof ack.maxLength === "number") error.maxLength = ack.maxLength;
  if (typeof ack.mutedUntil === "number") error.mutedUntil = ack.mutedUntil;
  if (typeof ack.reason === "string") error.reason = ack.reason;
  if (typeof ack.currentVersion === "number") error.currentVersion = ack.currentVersion;
  return error;
}

export class ChatRoom extends EventTarget {
  /**
   * @param {object} options
   * @param {import("./connection.js").Connection} options.connection
   * @param {string} options.workspaceId
   * @param {string} options.sessionId
   * @param {string|null} [options.agentId] the agent of a session this join creates
   * @param {{userId: string, userName: string}|null} [options.self] who we are, when known before joining
   * @param {() => Promise<object[]>} [options.fetchPresence] who is already here (REST, on the page)
   * @param {Record<string, string>} [options.agentNames] agent id -> name, for streamed replies
   */
  constructor({ connection, workspaceId, sessionId, agentId = null, self = null, fetchPresence = null, agentNames = {} }) {
    super();
    this.connection = connection;
    this.workspaceId = workspaceId;
    this.sessionId = sessionId;
    this.agentId = agentId;
    this.fetchPresence = fetchPresence;
    this.agentNames = new Map(Object.entries(agentNames));
    this.store = new MessageStore();
    if (self) this.store.self = { ...self };

    this.status = "idle"; // idle | joining | joined | error | ended
    this.joined = false;
    this.closed = false;
    this.title = "";
    this.initialLoaded = false;
    this.hasOlder = false;
    this.loadingOlder = false;
    this.error = null;
    this.sendBlockedUntil = 0;
    this.ownStatus = "active";
    this.lastReadSeq = 0;
    this.unreadCount = 0;
    /** userId -> the seq they read up to. */
    this.readBy = new Map();
    this._markingRead = 0;
    this._markedAt = 0;
    this._readTimer = null;
    this._readAgain = false;

    this._people = new Map();
    this._typers = new Map();
    this._historyWaiters = [];
    this._sendChain = Promise.resolve();
    this._inFlight = new Set();
    this._typing = false;
    this._typingSentAt = 0;
    this._typingIdle = null;
    this._joinAttempt = 0;
    this._catchingUp = false;
    this._catchUpAgain = null;
    this._offsetBoost = 0;
    this._retries = 0;
    this._stopped = false;
    this._handlers = this._makeHandlers();
    this._onConnect = () => this._join();
    this._onDisconnect = () => {
      this.joined = false;
      if (this.status === "joined") this.status = "joining";
      this._typers.clear();
      this._changed("status");
    };
  }

  // --- life cycle -----------------------------------------------------------------------

  start() {
    for (const [event, handler] of Object.entries(this._handlers)) this.connection.on(event, handler);
    this.connection.addEventListener("connect", this._onConnect);
    this.connection.addEventListener("disconnect", this._onDisconnect);
    if (this.connection.connected) this._join();
    return this;
  }

  stop() {
    this._stopped = true;
    this.stopTyping();
    for (const [event, handler] of Object.entries(this._handlers)) this.connection.off(event, handler);
    this.connection.removeEventListener("connect", this._onConnect);
    this.connection.removeEventListener("disconnect", this._onDisconnect);
    for (const typer of this._typers.values()) clearTimeout(typer.timer);
    clearTimeout(this._readTimer);
    if (this.joined && this.connection.connected) {
      this.connection.request("chat:leave-session", this._ids()).catch(() => {});
    }
    this.joined = false;
  }

  _ids() {
    return { sessionId: this.sessionId, workspaceId: this.workspaceId };
  }

  _ours(payload) {
    return (
      payload != null &&
      payload.sessionId === this.sessionId &&
      (payload.workspaceId == null || payload.workspaceId === this.workspaceId)
    );
  }

  _changed(kind, extra = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { kind, ...extra } }));
  }

  _announce(text) {
    this.dispatchEvent(new CustomEvent("announce", { detail: { text } }));
  }

  _setError(error, scope) {
    this.error = error ? { ...error, scope } : null;
    this._changed("error");
  }

  dismissError() {
    this._setError(null);
  }

  // --- joining and history ----------------------------------------------------------------

  async _join() {
    if (this._stopped || !this.connection.connected) return;
    const attempt = ++this._joinAttempt;
    this.status = "joining";
    this._changed("status");
    const payload = { ...this._ids() };
    if (this.agentId) payload.agentId = this.agentId;
    let ack;
    try {
      ack = await this.connection.request("chat:join-session", payload);
    } catch (error) {
      if (error.code === "timeout") setTimeout(() => attempt === this._joinAttempt && this._join(), JOIN_RETRY_MS);
      return; // offline: the next connect joins
    }
    if (attempt !== this._joinAttempt || this._stopped) return;
    if (!ack.ok) {
      this.status = "error";
      this._setError(errorFrom(ack), "join");
      if (ack.code === "rate_limited" || (ack.code === "internal" && ack.retryable)) {
        setTimeout(() => attempt === this._joinAttempt && this._join(), ack.retryAfter ?? JOIN_RETRY_MS);
      }
      return;
    }
    this.joined = true;
    this.status = "joined";
    this._ownPointer(ack.lastReadSeq ?? 0, ack.unreadCount ?? 0);
    if (ack.status) this.closed = ack.status === "closed";
    if (ack.agentId !== undefined) this.agentId = ack.agentId;
    if (this.error?.scope === "join") this.error = null;
    this._people.clear();
    if (ack.presence) {
      if (this.store.self.userId == null) {
        this.store.self = { userId: ack.presence.userId, userName: ack.presence.userName };
      }
      this._putPresence(ack.presence);
    }
    this._changed("status");
    this._loadPresence(ack);
    if (this.ownStatus !== "active") this._sendPresence(this.ownStatus);
    try {
      if (!this.initialLoaded) await this._loadLatest();
      else await this._catchUp();
    } finally {
      if (attempt === this._joinAttempt && this.joined) this._flushUnsent();
    }
  }

  _loadPresence(ack) {
    // Who was here before us: from the join (when the server includes them) or from the REST API.
    if (Array.isArray(ack.participants)) {
      ack.participants.forEach((p) => this._putPresence(p));
      this._changed("presence");
    } else if (this.fetchPresence) {
      this.fetchPresence()
        .then((list) => {
          list.forEach((p) => this._putPresence(p, { keepNewer: true }));
          this._changed("presence");
        })
        .catch(() => {});
    }
  }

  /**
   * One history request; resolves with its `chat:history-response`.  That event
   * arrives before the ack, so the ack only reports failures.
   */
  _history(params) {
    return new Promise((resolve, reject) => {
      const waiter = { params, resolve };
      const finish = () => {
        clearTimeout(waiter.timer);
        const index = this._historyWaiters.indexOf(waiter);
        if (index >= 0) this._historyWaiters.splice(index, 1);
      };
      waiter.timer = setTimeout(() => {
        finish();
        reject(new RequestError("timeout", "History did not arrive."));
      }, HISTORY_TIMEOUT_MS);
      this._historyWaiters.push(waiter);
      this.connection.request("chat:request-history", { ...this._ids(), ...params }, HISTORY_TIMEOUT_MS).then(
        (ack) => {
          if (!ack.ok) {
            finish();
            reject(Object.assign(new RequestError(ack.code, ack.error), { ack }));
          }
        },
        (error) => {
          finish();
          reject(error);
        },
      );
    });
  }

  _onHistory(response) {
    if (response?.sessionId !== this.sessionId) return;
    const index = this._historyWaiters.findIndex(({ params }) =>
      params.afterSeq != null
        ? response.afterSeq === params.afterSeq
        : response.afterSeq == null && (response.offset ?? 0) === (params.offset ?? 0),
    );
    if (index < 0) return;
    const [waiter] = this._historyWaiters.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.resolve(response);
  }

  _historyFailed(error) {
    if (error.ack) this._setError(errorFrom(error.ack), "history");
    else if (error.code === "timeout") {
      this._setError({ code: "timeout", message: "The server did not answer in time." }, "history");
    }
  }

  _putPage(messages) {
    let added = 0;
    for (const message of messages ?? []) if (this.store.putStored(message).added) added += 1;
    return added;
  }

  async _loadLatest() {
    this.loadingOlder = true;
    this._changed("history");
    try {
      const page = await this._history({ limit: HISTORY_PAGE });
      this._putPage(page.messages);
      this.hasOlder = page.hasMore;
      this.initialLoaded = true;
      this._retries = 0;
      if (this.error?.scope === "history") this._setError(null);
      this._changed("history", { initial: true });
    } catch (error) {
      this._historyFailed(error);
      this._retryLater(() => !this.initialLoaded && this._loadLatest());
    } finally {
      this.loadingOlder = false;
      this._changed("history");
    }
  }

  /** Try again after a pause that grows (2, 4, 8, 15 s), while still joined; reset by a success. */
  _retryLater(action) {
    const delay = Math.min(JOIN_RETRY_MS * 2 ** this._retries, 15_000);
    this._retries += 1;
    const attempt = this._joinAttempt;
    setTimeout(() => {
      if (!this._stopped && this.joined && attempt === this._joinAttempt) action();
    }, delay);
  }

  /** Infinite scroll upward: the page before the oldest message held. */
  async loadOlder() {
    if (!this.joined || this.loadingOlder || !this.hasOlder || !this.initialLoaded) return;
    this.loadingOlder = true;
    this._changed("history");
    try {
      const offset = this.store.storedCount + this._offsetBoost;
      const page = await this._history({ limit: HISTORY_PAGE, offset });
      const added = this._putPage(page.messages);
      // Pages count from the newest message; if messages we do not hold shifted them, step further back.
      this._offsetBoost = added === 0 && page.hasMore ? this._offsetBoost + HISTORY_PAGE : 0;
      this.hasOlder = page.hasMore;
      this._changed("history", { older: true });
    } catch (error) {
      this._historyFailed(error);
    } finally {
      this.loadingOlder = false;
      this._changed("history");
    }
  }

  /** Everything after `after` (default: the highest seq held), page by page while `hasMore`. */
  async _catchUp(after = this.store.maxSeq) {
    if (this._catchingUp) {
      this._catchUpAgain = Math.min(this._catchUpAgain ?? after, after);
      return;
    }
    this._catchingUp = true;
    let added = 0;
    try {
      let cursor = after;
      for (let i = 0; i < MAX_CATCH_UP_PAGES; i += 1) {
        const page = await this._history({ afterSeq: cursor, limit: CATCH_UP_PAGE });
        added += this._putPage(page.messages);
        if (!page.hasMore || !page.messages?.length) break;
        cursor = page.messages[page.messages.length - 1].seq;
      }
      if (this.error?.scope === "history") this._setError(null);
      for (const item of this.store.streaming()) {
        if (!item.streamDone) this.store._touch(item, { interrupted: true });
      }
    } catch (error) {
      if (!(error instanceof RequestError && error.code === "offline")) {
        this._historyFailed(error);
        this._retryLater(() => this._catchUp());
      }
    } finally {
      this._catchingUp = false;
      if (added) {
        this._changed("messages", { incoming: true });
        this._announce(added === 1 ? "1 new message." : `${added} new messages.`);
      }
      if (this._catchUpAgain != null) {
        const next = this._catchUpAgain;
        this._catchUpAgain = null;
        this._catchUp(next);
      }
    }
  }

  // --- sending ----------------------------------------------------------------------------

  get sendBlocked() {
    return Date.now() < this.sendBlockedUntil;
  }

  /**
   * Send `text` as a new message, with `attachments` uploaded before (their names stand in for an empty
   * text); returns its entry (or null when there is nothing to send).
   */
  send(text, attachments = []) {
    let content = String(text ?? "").replace(/\s+$/, "");
    if (!content.trim() && attachments.length) content = attachments.map((a) => a.name).join(", ");
    if (!content.trim()) return null;
    if (this.closed) {
      this._setError({ code: "session_closed", message: "This conversation is closed." }, "send");
      return null;
    }
    const item = this.store.addLocal({ id: newId("m"), content, contentType: "text", attachments });
    this.stopTyping();
    this._changed("messages", { own: true, id: item.id });
    this._deliver(item.id);
    return item;
  }

  /** Send a failed message again, with the same id. */
  retry(id) {
    const item = this.store.get(id);
    if (!item || item.state !== MessageState.FAILED || this.sendBlocked) return;
    if (this.error?.scope === "send") this.dismissError();
    this._deliver(id);
  }

  /** Drop a failed message. */
  discard(id) {
    const item = this.store.get(id);
    if (item?.state === MessageState.FAILED && this.store.remove(id)) this._changed("messages");
  }

  _deliver(id) {
    this.store.markSending(id);
    this._changed("messages");
    this._sendChain = this._sendChain.then(() => this._deliverNow(id));
    return this._sendChain;
  }

  async _deliverNow(id) {
    const item = this.store.get(id);
    if (!item || item.state !== MessageState.PENDING || this._inFlight.has(id)) return;
    if (!this.connection.connected || !this.joined || this.sendBlocked) {
      this.store.markQueued(id);
      this._changed("messages");
      return;
    }
    this._inFlight.add(id);
    let ack;
    try {
      const message = { id, ...this._ids(), content: item.content, contentType: item.contentType };
      if (item.attachments.length) message.attachments = item.attachments.map((attachment) => attachment.id);
      ack = await this.connection.request("chat:send-message", { message }, SEND_TIMEOUT_MS);
    } catch {
      // No answer: it may or may not be stored.  It goes again with the same id after the next
      // (re)join, and the server answers a repeat with the original confirmation.
      this.store.markQueued(id);
      this._changed("messages");
      if (this.connection.connected) setTimeout(() => this._flushUnsent(), JOIN_RETRY_MS);
      return;
    } finally {
      this._inFlight.delete(id);
    }
    if (ack.ok) {
      this.store.confirm(id, ack);
      this._changed("messages", { id });
      return;
    }
    if (ack.code === "not_joined") {
      // Our join was lost (the server restarted under us): join again, then it goes again.
      this.store.markQueued(id);
      this.joined = false;
      this._join();
      return;
    }
    const error = errorFrom(ack);
    if (ack.code === "rate_limited") this.sendBlockedUntil = error.until ?? Date.now() + 1_000;
    if (ack.code === "session_closed") {
      this.closed = true;
      this._changed("status");
    }
    this.store.fail(id, error);
    this._setError(error, "send");
    this._changed("messages", { id });
  }

  _flushUnsent() {
    for (const item of this.store.unsent()) if (!this._inFlight.has(item.id)) this._deliver(item.id);
  }

  // --- editing and deleting ---------------------------------------------------------------

  /**
   * Edit one of our messages, from the version we hold (a message that
   * changed meanwhile is refused with `version_conflict`, never overwritten).
   * Resolves true once stored; the entry changes with `chat:message-updated`.
   */
  editMessage(id, content) {
    const item = this.store.get(id);
    if (!item || item.seq == null || item.deleted) return Promise.resolve(false);
    return this._change("chat:edit-message", { ...this._ids(), messageId: id, version: item.version, content });
  }

  /** Delete a message (ours within the edit window; any, for a moderator): a tombstone takes its place. */
  deleteMessage(id) {
    const item = this.store.get(id);
    if (!item || item.seq == null || item.deleted) return Promise.resolve(false);
    return this._change("chat:delete-message", { ...this._ids(), messageId: id });
  }

  async _change(event, payload) {
    let ack;
    try {
      ack = await this.connection.request(event, payload, SEND_TIMEOUT_MS);
    } catch (error) {
      this._setError({ code: error instanceof RequestError ? error.code : "internal", message: error.message }, "edit");
      return false;
    }
    if (ack?.ok) return true;
    this._setError(errorFrom(ack ?? {}), "edit");
    return false;
  }

  // --- typing -----------------------------------------------------------------------------

  /** Call on every edit of the message box (with its text): typing events go out debounced. */
  noteInput(text) {
    if (!String(text ?? "").trim()) {
      this.stopTyping();
      return;
    }
    if (!this.joined || this.closed) return;
    const now = Date.now();
    if (!this._typing || now - this._typingSentAt >= TYPING_RENEW_MS) {
      this._typing = true;
      this._typingSentAt = now;
      this._emitTyping(true);
    }
    clearTimeout(this._typingIdle);
    this._typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this._typingIdle);
    if (!this._typing) return;
    this._typing = false;
    this._emitTyping(false);
  }

  _emitTyping(isTyping) {
    this.connection.request("chat:typing", { ...this._ids(), isTyping }, 5_000).catch(() => {});
  }

  _onTyping(indicator) {
    const agent = indicator.senderType === "agent";
    if (!agent && indicator.userId === this.store.self.userId) return; // our own other tab
    if (agent && indicator.agentId) this.agentNames.set(indicator.agentId, indicator.userName);
    const key = `${agent ? "agent" : "user"}:${indicator.userId}`;
    const previous = this._typers.get(key);
    if (previous) clearTimeout(previous.timer);
    if (indicator.isTyping) {
      const timer = setTimeout(() => {
        this._typers.delete(key);
        this._changed("typing");
      }, OTHERS_TYPING_TIMEOUT_MS);
      this._typers.set(key, { name: indicator.userName || indicator.userId, agent, timer, since: previous?.since ?? Date.now() });
    } else {
      this._typers.delete(key);
    }
    this._changed("typing");
  }

  _stopTypingOf(key) {
    const typer = this._typers.get(key);
    if (!typer) return;
    clearTimeout(typer.timer);
    this._typers.delete(key);
    this._changed("typing");
  }

  /** Who is typing now, oldest first: [{name, agent}]. */
  typers() {
    return [...this._typers.values()].sort((a, b) => a.since - b.since).map(({ name, agent }) => ({ name, agent }));
  }

  // --- presence ---------------------------------------------------------------------------

  _putPresence(presence, { keepNewer = false } = {}) {
    if (!presence?.userId) return;
    let person = this._people.get(presence.userId);
    if (!person) {
      person = { userId: presence.userId, userName: presence.userName || presence.userId, sockets: new Map() };
      this._people.set(presence.userId, person);
    }
    if (keepNewer && person.sockets.has(presence.socketId)) return;
    person.sockets.set(presence.socketId, presence.status || "active");
  }

  /** Everyone here, one entry per user (their most present socket): ourselves first. */
  people() {
    const selfId = this.store.self.userId;
    return [...this._people.values()]
      .map((person) => {
        let status = "away";
        for (const value of person.sockets.values()) if (STATUS_RANK[value] < STATUS_RANK[status]) status = value;
        return { userId: person.userId, userName: person.userName, status, self: person.userId === selfId };
      })
      .sort(
        (a, b) =>
          Number(b.self) - Number(a.self) ||
          STATUS_RANK[a.status] - STATUS_RANK[b.status] ||
          a.userName.localeCompare(b.userName),
      );
  }

  /** Our own status changed (active / idle / away): tell the session. */
  setOwnStatus(status) {
    if (status === this.ownStatus) return;
    this.ownStatus = status;
    const selfId = this.store.self.userId;
    const socketId = this.connection.id;
    if (selfId && socketId && this._people.get(selfId)?.sockets.has(socketId)) {
      this._people.get(selfId).sockets.set(socketId, status);
      this._changed("presence");
    }
    if (this.joined) this._sendPresence(status);
  }

  _sendPresence(status) {
    this.connection.request("chat:update-presence", { ...this._ids(), status }, 5_000).catch(() => {});
  }

  // --- reactions and read state --------------------------------------------------------------

  /** Add our `emoji` to message `id`, or remove it if we reacted with it; resolves with the error or null. */
  async toggleReaction(id, emoji) {
    const event = this.store.reactedWith(id, emoji) ? "chat:remove-reaction" : "chat:add-reaction";
    let ack;
    try {
      ack = await this.connection.request(event, { ...this._ids(), messageId: id, emoji }, 5_000);
    } catch (error) {
      const failure = { code: error.code ?? "internal", message: error.message, retryable: true };
      this._setError(failure, "session");
      return failure;
    }
    if (!ack.ok) {
      const failure = errorFrom(ack);
      this._setError(failure, "session");
      return failure;
    }
    if (this.store.applyReactions({ messageId: id, ...ack })) this._changed("messages", { id });
    return null;
  }

  /**
   * Mark read up to the newest message held (nothing is sent when we already read that far).
   *
   * The view calls this for every message that arrives on screen; in a busy
   * session that would be a request per message, and the server's `read`
   * limit (and its strikes) is per person. So one mark is in flight at a time
   * and they go at most once per `READ_INTERVAL_MS`: the first at once, those
   * that come meanwhile as one when the interval is over, with the newest seq.
   */
  markRead() {
    if (!this.joined || this.store.maxSeq <= this.lastReadSeq || this._stopped) return;
    if (this._markingRead || this._readTimer) {
      this._readAgain = true;
      return;
    }
    const wait = this._markedAt + READ_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this._readTimer = setTimeout(() => {
        this._readTimer = null;
        this.markRead();
      }, wait);
      return;
    }
    this._sendMark();
  }

  async _sendMark() {
    const seq = this.store.maxSeq;
    this._markingRead = seq;
    this._markedAt = Date.now();
    this._readAgain = false;
    try {
      const ack = await this.connection.request("chat:mark-read", { ...this._ids(), seq }, 5_000);
      if (ack.ok) this._ownPointer(ack.lastReadSeq, ack.unreadCount);
    } catch {
      // offline: the next markRead (after the rejoin) sends it
    } finally {
      this._markingRead = 0;
      if (this._readAgain) this.markRead();
    }
  }

  _ownPointer(seq, unreadCount) {
    if (seq < this.lastReadSeq) return;
    this.lastReadSeq = seq;
    this.unreadCount = unreadCount;
    if (this.store.self.userId != null) this._receipt(this.store.self.userId, seq);
    this._changed("read");
  }

  _receipt(userId, seq) {
    if (seq <= (this.readBy.get(userId) ?? 0)) return false;
    this.readBy.set(userId, seq);
    return true;
  }

  // --- agent replies: stop, regenerate, rate -------------------------------------------------

  /** Ask the server (ack `{ok, ...}`); a refusal or no answer becomes the room's error, in `scope`. */
  async _agentRequest(event, payload, scope) {
    try {
      const ack = await this.connection.request(event, { ...this._ids(), ...payload }, 5_000);
      if (ack?.ok) return ack;
      this._setError(errorFrom(ack ?? {}), scope);
    } catch (error) {
      this._setError({ code: error.code ?? "timeout", message: error.message ?? "No answer from the server." }, scope);
    }
    return null;
  }

  /** Stop the agent's reply `id` while it streams (its text so far is kept). */
  stopReply(id) {
    return this._agentRequest("chat:cancel-agent", { messageId: id }, "agent");
  }

  /** Ask the agent again for reply `id`: the new answer streams into it and becomes its next version. */
  async regenerate(id) {
    const ack = await this._agentRequest("chat:regenerate", { messageId: id, requestId: newId("r") }, "agent");
    if (ack) this._announce("Asking the agent for another answer.");
    return ack;
  }

  /** Thumbs up or down on reply `id`; the same rating again clears it. */
  async rate(id, rating) {
    const current = this.store.get(id)?.feedback?.mine ?? null;
    const ack = await this._agentRequest("chat:rate-message", { messageId: id, rating: current === rating ? null : rating }, "agent");
    if (ack && this.store.setFeedback(id, { up: ack.feedback.up, down: ack.feedback.down, mine: ack.rating })) {
      this._changed("messages", { id });
    }
    return ack;
  }

  // --- server events ----------------------------------------------------------------------

  _makeHandlers() {
    return {
      "chat:history-response": (response) => this._onHistory(response),
      "chat:message-received": (message) => this._ours(message) && this._onMessage(message),
      "chat:message-sent": (confirmation) => {
        if (!this._ours(confirmation)) return;
        if (this.store.confirm(confirmation.messageId, confirmation)) this._changed("messages");
      },
      "chat:agent-stream-chunk": (chunk) => this._ours(chunk) && this._onChunk(chunk),
      "chat:agent-tool-call": (call) => this._ours(call) && this._onStep("tool", call),
      "chat:agent-reasoning": (reasoning) => this._ours(reasoning) && this._onStep("reasoning", reasoning),
      "chat:typing-indicator": (indicator) => this._ours(indicator) && this._onTyping(indicator),
      "chat:user-joined": (presence) => {
        if (!this._ours(presence)) return;
        this._putPresence(presence);
        this._changed("presence");
      },
      "chat:presence-updated": (presence) => {
        if (!this._ours(presence)) return;
        this._putPresence(presence);
        this._changed("presence");
      },
      "chat:user-left": (left) => {
        if (!this._ours(left)) return;
        const person = this._people.get(left.userId);
        person?.sockets.delete(left.socketId);
        if (person && person.sockets.size === 0) {
          this._people.delete(left.userId);
          this._stopTypingOf(`user:${left.userId}`);
        }
        this._changed("presence");
      },
      "chat:message-hidden": (hidden) => {
        if (!this._ours(hidden)) return;
        if (this.store.remove(hidden.messageId)) {
          this._changed("messages", { removed: hidden.messageId });
          this._announce("A message was hidden by a moderator.");
        }
      },
      "chat:message-unhidden": (unhidden) => {
        if (!this._ours(unhidden) || !unhidden.message) return;
        this.store.putStored(unhidden.message);
        this._changed("messages");
      },
      "chat:reactions-updated": (updated) => {
        if (!this._ours(updated)) return;
        if (this.store.applyReactions(updated)) this._changed("messages", { id: updated.messageId });
      },
      "chat:read-updated": (read) => {
        if (!this._ours(read)) return;
        if (read.userId === this.store.self.userId) this._ownPointer(read.seq, read.unreadCount);
        else if (this._receipt(read.userId, read.seq)) this._changed("read");
      },
      "chat:message-updated": (updated) => {
        if (!this._ours(updated)) return;
        const item = this.store.applyUpdate(updated);
        if (item) {
          this._changed("messages", { id: item.id });
          if (item.senderType === "agent") this._announce(`${item.userName || "The agent"} answered again.`);
          else if (!item.mine) this._announce(`${item.userName || "Someone"} edited a message.`);
        }
      },
      "chat:message-deleted": (deleted) => {
        if (!this._ours(deleted)) return;
        const item = this.store.applyDelete(deleted);
        if (item) {
          this._changed("messages", { id: item.id });
          this._announce("A message was deleted.");
        }
      },
      "chat:session-closed": (closed) => {
        if (!this._ours(closed)) return;
        this.closed = true;
        this.stopTyping();
        this._changed("status");
        this._announce("This conversation was closed. It is now read-only.");
      },
      "chat:session-updated": (updated) => {
        if (!this._ours(updated)) return;
        if (typeof updated.title === "string") this.title = updated.title;
        if (updated.agentId !== undefined) this.agentId = updated.agentId;
        if (updated.status) this.closed = updated.status === "closed";
        this._changed("status");
      },
      "chat:banned": (banned) => {
        if (banned?.workspaceId && banned.workspaceId !== this.workspaceId) return;
        this.status = "ended";
        this.joined = false;
        this._setError({ code: "banned", message: "You were removed from this workspace." }, "session");
        this.connection.end(undefined, { reason: "banned", message: "You were removed from this workspace." });
      },
    };
  }

  _onMessage(message) {
    const expected = this.store.maxSeq + 1;
    const before = this.store.get(message.id);
    const wasStreaming = before?.state === MessageState.STREAMING;
    const { item, added } = this.store.putStored(message);
    if (message.senderType === "user") this._stopTypingOf(`user:${message.userId}`);
    const fresh = (added || wasStreaming) && !item.mine;
    if (added && !item.mine && typeof message.seq === "number" && message.seq > this.lastReadSeq) {
      this.unreadCount += 1;
      this._changed("read");
    }
    this._changed("messages", { incoming: fresh, id: item.id });
    if (fresh) {
      const text = plainText(message);
      this._announce(`${message.userName || "Someone"}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`);
    }
    if (this.initialLoaded && typeof message.seq === "number" && message.seq > expected) this._catchUp(expected - 1);
  }

  _onStep(kind, event) {
    const name = this.agentNames.get(event.agentId) ?? event.agentId ?? "Agent";
    this.store.appendStep(kind, event, name);
    this._changed("messages", { streaming: true, id: event.messageId });
  }

  _onChunk(chunk) {
    if (chunk.isComplete) {
      const item = this.store.finishStream(chunk.messageId, {
        error: chunk.error ?? null,
        cancelled: !!chunk.cancelled,
        version: chunk.version ?? null,
      });
      if (chunk.error) this._announce("The agent could not finish its reply.");
      if (item || chunk.error) this._changed("messages", { id: chunk.messageId });
      return;
    }
    const name = this.agentNames.get(chunk.agentId) ?? chunk.agentId ?? "Agent";
    const item = this.store.appendChunk({ ...chunk, userName: name });
    if (item.interrupted) this.store._touch(item, { interrupted: false });
    this._changed("messages", { streaming: true, id: chunk.messageId });
  }
}

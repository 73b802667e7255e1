/**
 * Who is in a session and who is typing: pure data with explicit time.
 *
 * Presence is kept per socket (a user with two tabs has two) and shown per
 * user, with their most present status.  It changes with `chat:user-joined`,
 * `chat:presence-updated` and `chat:user-left`.  While we were disconnected
 * those events were missed, so on every rejoin the others' sockets become
 * unconfirmed (`markUnconfirmed`): anything the server then says about them
 * (an event, the list a `fetchPresence` callback returns) confirms them, and
 * what is still unconfirmed after the presence TTL (the server's
 * `CHAT_PRESENCE_TTL_S`, 30 s) has expired (`expire`).
 *
 * Typing: a `chat:typing-indicator` with `isTyping: true` holds for
 * `typingTimeoutMs` unless renewed (the server ends a typing state after 5 s
 * without renewal and says so; this only guards against a lost event).
 */

import type { ChatPresence, PresenceStatus, TypingIndicator } from "./events.generated.js";

export interface Person {
  readonly userId: string;
  readonly userName: string;
  readonly status: PresenceStatus;
  /** This is us (any of our tabs). */
  readonly self: boolean;
}

export interface Typer {
  readonly key: string;
  readonly name: string;
  readonly agent: boolean;
  readonly agentId: string | null;
  readonly since: number;
  readonly until: number;
}

const STATUS_RANK: Record<PresenceStatus, number> = { active: 0, idle: 1, away: 2 };

interface SocketPresence {
  status: PresenceStatus;
  /** When it became unconfirmed (a rejoin of ours), or null. */
  unconfirmedSince: number | null;
}

export class PresenceTracker {
  selfId: string | null = null;
  private readonly people = new Map<string, { userName: string; sockets: Map<string, SocketPresence> }>();
  private readonly typers = new Map<string, Typer>();
  private peopleCache: readonly Person[] | null = null;
  private typersCache: readonly Typer[] | null = null;

  constructor(readonly typingTimeoutMs = 7_000) {}

  // --- presence ---

  /** A socket is here with this status (joined, updated, or listed by the server). */
  put(presence: Pick<ChatPresence, "userId" | "userName" | "socketId" | "status">): void {
    if (!presence.userId) return;
    let person = this.people.get(presence.userId);
    if (!person) {
      person = { userName: presence.userName || presence.userId, sockets: new Map() };
      this.people.set(presence.userId, person);
    }
    person.userName = presence.userName || person.userName;
    person.sockets.set(presence.socketId, { status: presence.status ?? "active", unconfirmedSince: null });
    this.peopleCache = null;
  }

  /** A socket left; returns true when its user has no socket left here. */
  leave(userId: string, socketId: string): boolean {
    const person = this.people.get(userId);
    if (!person) return false;
    person.sockets.delete(socketId);
    this.peopleCache = null;
    if (person.sockets.size > 0) return false;
    this.people.delete(userId);
    this.stopTyping(`user:${userId}`);
    return true;
  }

  /** Anything from a user (a message, typing) shows their sockets are still here. */
  confirmUser(userId: string | null): void {
    const person = userId ? this.people.get(userId) : undefined;
    if (!person) return;
    for (const socket of person.sockets.values()) socket.unconfirmedSince = null;
  }

  /**
   * We rejoined: what we knew may be stale -- the others, and our own old
   * socket (the join's presence confirms our new one).
   */
  markUnconfirmed(now: number): void {
    for (const person of this.people.values()) {
      for (const socket of person.sockets.values()) socket.unconfirmedSince ??= now;
    }
  }

  /** Drop the sockets unconfirmed for `ttlMs`; returns true if anyone went. */
  expire(now: number, ttlMs: number): boolean {
    let changed = false;
    for (const [userId, person] of this.people) {
      for (const [socketId, socket] of person.sockets) {
        if (socket.unconfirmedSince !== null && now - socket.unconfirmedSince >= ttlMs) {
          person.sockets.delete(socketId);
          changed = true;
        }
      }
      if (person.sockets.size === 0) {
        this.people.delete(userId);
        this.stopTyping(`user:${userId}`);
      }
    }
    if (changed) this.peopleCache = null;
    return changed;
  }

  /** The earliest moment an unconfirmed socket expires, or null. */
  nextExpiry(ttlMs: number): number | null {
    let next: number | null = null;
    for (const person of this.people.values()) {
      for (const socket of person.sockets.values()) {
        if (socket.unconfirmedSince !== null) {
          const at = socket.unconfirmedSince + ttlMs;
          if (next === null || at < next) next = at;
        }
      }
    }
    return next;
  }

  clear(): void {
    this.people.clear();
    this.typers.clear();
    this.peopleCache = null;
    this.typersCache = null;
  }

  /** Everyone here, one entry per user with their most present status: ourselves first. */
  list(): readonly Person[] {
    if (this.peopleCache === null) {
      this.peopleCache = [...this.people.entries()]
        .map(([userId, person]) => {
          let status: PresenceStatus = "away";
          for (const socket of person.sockets.values()) {
            if (STATUS_RANK[socket.status] < STATUS_RANK[status]) status = socket.status;
          }
          return { userId, userName: person.userName, status, self: userId === this.selfId };
        })
        .sort(
          (a, b) =>
            Number(b.self) - Number(a.self) ||
            STATUS_RANK[a.status] - STATUS_RANK[b.status] ||
            a.userName.localeCompare(b.userName),
        );
    }
    return this.peopleCache;
  }

  // --- typing ---

  /** Apply an indicator; returns false when it was ignored (our own, from another tab). */
  typing(indicator: TypingIndicator, now: number): boolean {
    const agent = indicator.senderType === "agent";
    if (!agent && indicator.userId === this.selfId) return false;
    const key = agent ? `agent:${indicator.agentId ?? indicator.userId}` : `user:${indicator.userId}`;
    if (!agent) this.confirmUser(indicator.userId);
    if (!indicator.isTyping) return this.stopTyping(key) || true;
    const previous = this.typers.get(key);
    this.typers.set(key, {
      key,
      name: indicator.userName || indicator.userId,
      agent,
      agentId: agent ? indicator.agentId ?? null : null,
      since: previous?.since ?? now,
      until: now + this.typingTimeoutMs,
    });
    this.typersCache = null;
    return true;
  }

  stopTyping(key: string): boolean {
    if (!this.typers.delete(key)) return false;
    this.typersCache = null;
    return true;
  }

  /** Drop typing states not renewed in time; returns true if any went. */
  expireTyping(now: number): boolean {
    let changed = false;
    for (const [key, typer] of this.typers) {
      if (typer.until <= now) {
        this.typers.delete(key);
        changed = true;
      }
    }
    if (changed) this.typersCache = null;
    return changed;
  }

  /** The earliest moment a typing state ends by itself, or null. */
  nextTypingExpiry(): number | null {
    let next: number | null = null;
    for (const typer of this.typers.values()) if (next === null || typer.until < next) next = typer.until;
    return next;
  }

  /** Who is typing, longest first. */
  typingList(): readonly Typer[] {
    if (this.typersCache === null) this.typersCache = [...this.typers.values()].sort((a, b) => a.since - b.since);
    return this.typersCache;
  }
}

/**
 * One Socket.IO connection to the chat server (the official `socket.io-client`),
 * shared by every session it shows.
 *
 * States (`status.state`):
 *   idle         -- not started (`connect()` starts it)
 *   connecting   -- the first attempt
 *   connected
 *   reconnecting -- the connection was lost; socket.io-client retries with backoff
 *   offline      -- the platform says there is no network; retried when it comes back
 *   failed       -- the server refused who we are (`unauthenticated`); retrying cannot help
 *   closed       -- `close()`d
 *
 * Authentication: `token` (an API token `chat_…`, good for every connection)
 * or `getToken` (called for every connection attempt: one-time socket tokens
 * `sock_…` are good for one connection only).  Without either, a browser
 * page of the chat site itself connects with its session cookie.
 *
 * Requests (`request`) use acknowledgements with a timeout and never sit in
 * socket.io-client's send buffer: while disconnected they fail at once with
 * `offline`, and the sessions resend what matters after the next connect
 * (with the same ids, so the server answers a repeat as a duplicate).
 */

import { io as defaultIo } from "socket.io-client";
import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";

import { attachmentLink, type RestTarget, type UploadProgress, uploadAttachment } from "./attachments.js";
import { ChatRequestError, OFFLINE, TIMEOUT } from "./errors.js";
import type {
  AckResult,
  ChatAttachment,
  ChatPresence,
  ClientEventName,
  ClientToServerEvents,
  ClientToServerPayloads,
  ServerEventName,
  ServerToClientEvents,
  ServerToClientPayloads,
} from "./events.js";
import { ChatSession, type SessionOptions } from "./session.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type IoFactory = (url: string | undefined, options: Partial<ManagerOptions & SocketOptions>) => ChatSocket;

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "offline" | "failed" | "closed";

export interface ConnectionStatus {
  readonly state: ConnectionState;
  /** The server's code when it refused us (`unauthenticated`, `connection_limit`...), or why it ended. */
  readonly reason?: string;
  /** A sentence for people. */
  readonly message?: string;
  /** Reconnection attempts so far. */
  readonly attempt?: number;
}

export type TokenSource = (context: { attempt: number }) => string | null | undefined | Promise<string | null | undefined>;

export interface ChatClientOptions {
  /** The chat server, e.g. `https://chat.example.com`; default: the page's own origin. Required in Node. */
  url?: string;
  /** The Socket.IO path, default `/socket.io/`. */
  path?: string;
  /** A token for every connection (an API token). */
  token?: string;
  /** Called for every connection attempt: return a fresh one-time socket token. */
  getToken?: TokenSource;
  /** Who we are, when known before joining (the server's word wins once a join says it). */
  user?: { id: string; name?: string };
  /** Who is already in a session, e.g. from `GET /api/v1/workspaces/{w}/sessions/{s}/presence/`. */
  fetchPresence?: (sessionId: string, workspaceId: string) => Promise<readonly ChatPresence[]>;
  /** Extra socket.io-client options (transports, reconnection delays...). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** How long a request waits for its acknowledgement, default 10 s. */
  ackTimeoutMs?: number;
  /** The server's `CHAT_PRESENCE_TTL_S` in ms (30 s): unconfirmed presence expires after it. */
  presenceTtlMs?: number;
  /** socket.io-client's `io`, replaceable for tests. */
  io?: IoFactory;
  /**
   * Headers for the REST calls attachments need (uploads, links).  Default: `Authorization: Bearer`
   * with `token`; a page using the session cookie returns its CSRF header here instead.
   */
  restHeaders?: () => Record<string, string>;
}

const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** After a refused token, try once more with a new one before giving up. */
const MAX_AUTH_RETRIES = 1;
const AUTH_RETRY_MS = 300;
/** After the server closed our socket, wait this long before connecting again. */
const SERVER_DISCONNECT_RETRY_MS = 1_000;
/** After a refused connection (connection_limit), wait this long unless told otherwise. */
const REFUSED_RETRY_MS = 10_000;

/** Server events the sessions handle, routed by `sessionId` (and `workspaceId` when present). */
const SESSION_EVENTS = [
  "chat:message-received",
  "chat:message-sent",
  "chat:agent-stream-chunk",
  "chat:agent-tool-call",
  "chat:agent-reasoning",
  "chat:typing-indicator",
  "chat:user-joined",
  "chat:presence-updated",
  "chat:user-left",
  "chat:message-hidden",
  "chat:message-unhidden",
  "chat:message-updated",
  "chat:message-deleted",
  "chat:session-closed",
  "chat:session-updated",
  "chat:session-left",
] as const satisfies readonly ServerEventName[];

type Listener<E extends ServerEventName> = (payload: ServerToClientPayloads[E]) => void;

export class ChatClient {
  readonly options: ChatClientOptions;
  private socketRef: ChatSocket | null = null;
  private current: ConnectionStatus = { state: "idle" };
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();
  private readonly listeners: Array<[ServerEventName, (payload: never) => void]> = [];
  private readonly sessions = new Map<string, ChatSession>();
  private everConnected = false;
  private authFailures = 0;
  private refs = 0;
  private closeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly onOnline = () => this.connected || this.ended || this.retryNow();
  private readonly onOffline = () => this.connected || this.ended || this.setStatus({ state: "offline" });

  constructor(options: ChatClientOptions = {}) {
    this.options = options;
  }

  // --- state ---

  get status(): ConnectionStatus {
    return this.current;
  }

  get connected(): boolean {
    return this.socketRef?.connected === true;
  }

  /** The socket, once `connect()` made it (typed with every chat:* event). */
  get socket(): ChatSocket | null {
    return this.socketRef;
  }

  get socketId(): string | null {
    return this.socketRef?.id ?? null;
  }

  private get ended(): boolean {
    return this.current.state === "closed" || this.current.state === "failed";
  }

  /** Call `listener` on every change of `status`; returns the unsubscribe function. */
  subscribe(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setStatus(status: ConnectionStatus): void {
    this.current = status;
    for (const listener of [...this.statusListeners]) listener(status);
    for (const session of this.sessions.values()) session.connectionChanged();
  }

  private later(action: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  // --- life cycle ---

  /** Open the connection (once; later calls do nothing while it is open or opening). */
  connect(): this {
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    if (this.socketRef) {
      if (this.ended) {
        this.authFailures = 0;
        this.setStatus({ state: this.everConnected ? "reconnecting" : "connecting" });
      }
      if (!this.socketRef.connected && !this.socketRef.active) this.socketRef.connect();
      return this;
    }
    const { url, path = "/socket.io/", token, getToken, socketOptions } = this.options;
    const options: Partial<ManagerOptions & SocketOptions> = {
      path,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
      timeout: 10_000,
      ...socketOptions,
    };
    if (getToken || token !== undefined) options.auth = (callback) => this.authenticate(callback);
    const io = this.options.io ?? (defaultIo as unknown as IoFactory);
    this.setStatus({ state: "connecting" });
    const socket = io(url, options);
    this.socketRef = socket;
    this.wire(socket);
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("offline", this.onOffline);
    return this;
  }

  private authenticate(callback: (data: object) => void): void {
    const { token, getToken } = this.options;
    if (!getToken) {
      callback({ token });
      return;
    }
    Promise.resolve()
      .then(() => getToken({ attempt: this.authFailures }))
      .then(
        (fresh) => callback({ token: typeof fresh === "string" ? fresh : token ?? "" }),
        () => callback({ token: token ?? "" }),
      );
  }

  private wire(socket: ChatSocket): void {
    socket.on("connect", () => {
      this.everConnected = true;
      this.authFailures = 0;
      this.setStatus({ state: "connected" });
      for (const session of this.sessions.values()) session.connected();
    });
    socket.on("disconnect", (reason) => {
      socket.sendBuffer = []; // never replay stale requests before the sessions rejoin
      for (const session of this.sessions.values()) session.disconnected();
      if (this.ended || reason === "io client disconnect") return;
      this.lost();
      if (reason === "io server disconnect") {
        // The server closed this socket (a restart, a removal): socket.io-client does not retry these.
        this.later(() => this.ended || socket.connected || socket.connect(), SERVER_DISCONNECT_RETRY_MS);
      }
    });
    socket.on("connect_error", (error: Error & { data?: { code?: string; reason?: string; retryAfter?: number } }) => {
      this.connectError(socket, error.data ?? {});
    });
    socket.io.on("reconnect_attempt", (attempt) => {
      if (this.current.state !== "offline" && !this.ended) this.setStatus({ state: "reconnecting", attempt });
    });
    for (const event of SESSION_EVENTS) {
      socket.on(event, ((payload: { sessionId?: string; workspaceId?: string }) => {
        for (const session of this.sessionsFor(payload)) session.receive(event, payload as never);
      }) as never);
    }
    socket.on("chat:banned", (banned) => {
      for (const session of this.sessions.values()) if (session.workspaceId === banned.workspaceId) session.banned();
    });
    for (const [event, handler] of this.listeners) socket.on(event, handler as never);
  }

  private lost(): void {
    const offline = globalThis.navigator?.onLine === false;
    this.setStatus(offline ? { state: "offline" } : { state: "reconnecting", attempt: 0 });
  }

  private connectError(socket: ChatSocket, data: { code?: string; reason?: string; retryAfter?: number }): void {
    if (this.ended) return;
    if (data.code === "unauthenticated" || data.code === "invalid_packet") {
      // Refused by the server: socket.io-client does not retry this by itself.  A token source
      // may have handed out a stale token: one more try with a fresh one.
      if (this.options.getToken && data.code === "unauthenticated" && this.authFailures < MAX_AUTH_RETRIES) {
        this.authFailures += 1;
        this.later(() => this.ended || socket.connect(), AUTH_RETRY_MS);
        return;
      }
      socket.disconnect();
      this.setStatus({
        state: "failed",
        reason: data.reason || data.code,
        message: "The chat server did not accept the credentials.",
      });
      return;
    }
    if (data.code === "connection_limit" || data.code === "rate_limited") {
      const message =
        data.code === "connection_limit" ? "Too many open chat connections; retrying…" : "Too many connection attempts; retrying…";
      this.setStatus({ state: "reconnecting", attempt: 0, reason: data.code, message });
      this.later(() => this.ended || socket.connected || socket.connect(), data.retryAfter ?? REFUSED_RETRY_MS);
      return;
    }
    // A transport failure: the manager retries with backoff.
    if (globalThis.navigator?.onLine === false) this.setStatus({ state: "offline" });
    else if (this.everConnected) this.setStatus({ state: "reconnecting", attempt: this.current.attempt ?? 0 });
    else this.setStatus({ state: "connecting", reason: "unreachable" });
  }

  /** Skip the backoff wait (a "Retry now" button, the network came back). */
  retryNow(): void {
    const socket = this.socketRef;
    if (!socket || socket.connected || this.current.state === "closed") return;
    this.authFailures = 0;
    socket.disconnect();
    socket.connect();
    this.setStatus({ state: this.everConnected ? "reconnecting" : "connecting", attempt: 0 });
  }

  /** Disconnect for good: sessions stop, timers end. `connect()` starts again. */
  close(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const session of [...this.sessions.values()]) session.stop();
    this.sessions.clear();
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("offline", this.onOffline);
    const socket = this.socketRef;
    this.socketRef = null;
    this.everConnected = false;
    socket?.disconnect();
    socket?.removeAllListeners();
    socket?.io.removeAllListeners();
    this.setStatus({ state: "closed" });
  }

  /**
   * Reference counting for shared owners (a React provider): `retain()`
   * connects; the last `release()` closes, a tick later, so a release followed
   * at once by a retain (React's strict mode) keeps the one connection.
   */
  retain(): this {
    this.refs += 1;
    return this.connect();
  }

  release(): void {
    this.refs = Math.max(0, this.refs - 1);
    if (this.refs > 0 || this.closeTimer !== null) return;
    this.closeTimer = setTimeout(() => {
      this.closeTimer = null;
      if (this.refs === 0) this.close();
    }, 0);
  }

  // --- events and requests ---

  /** Listen to a server event (typed); returns the function that stops listening. */
  on<E extends ServerEventName>(event: E, handler: Listener<E>): () => void {
    const entry: [ServerEventName, (payload: never) => void] = [event, handler as (payload: never) => void];
    this.listeners.push(entry);
    this.socketRef?.on(event, handler as never);
    return () => {
      const index = this.listeners.indexOf(entry);
      if (index >= 0) this.listeners.splice(index, 1);
      this.socketRef?.off(event, handler as never);
    };
  }

  /**
   * Emit a client event and wait for its acknowledgement: `{ok: true, ...}` or
   * `{ok: false, code, error, ...}`.  Rejects with a ChatRequestError
   * `offline` (not connected) or `timeout` (no answer in time).
   */
  async request<E extends ClientEventName>(
    event: E,
    payload: ClientToServerPayloads[E],
    timeoutMs = this.options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
  ): Promise<AckResult<E>> {
    const socket = this.socketRef;
    if (!socket?.connected) throw new ChatRequestError(OFFLINE);
    try {
      const timed = socket.timeout(timeoutMs) as unknown as {
        emitWithAck(event: E, payload: ClientToServerPayloads[E]): Promise<AckResult<E>>;
      };
      return await timed.emitWithAck(event, payload);
    } catch {
      throw new ChatRequestError(socket.connected ? TIMEOUT : OFFLINE);
    }
  }

  // --- sessions ---

  /**
   * The session `sessionId` of `workspaceId` on this connection, joined while
   * connected.  Sessions are shared: each call takes a reference, and the
   * session leaves when the last is released (`session.release()`).
   */
  /** Where and how the REST API is reached (attachments). */
  restTarget(): RestTarget {
    const { url, token, restHeaders } = this.options;
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    return { base: url ?? "", headers: { ...headers, ...(restHeaders?.() ?? {}) } };
  }

  /** Upload a file to a session (progress from 0 to 1); send its `id` in a message's `attachments`. */
  uploadAttachment(workspaceId: string, sessionId: string, file: Blob, onProgress?: UploadProgress): Promise<ChatAttachment> {
    return uploadAttachment(this.restTarget(), workspaceId, sessionId, file, onProgress);
  }

  /** A fresh download link (absolute) for an attachment of the session. */
  attachmentLink(workspaceId: string, sessionId: string, attachmentId: string): Promise<string> {
    return attachmentLink(this.restTarget(), workspaceId, sessionId, attachmentId);
  }

  session(sessionId: string, workspaceId: string, options: SessionOptions = {}): ChatSession {
    const key = `${workspaceId}\u0000${sessionId}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = new ChatSession(this, sessionId, workspaceId, options, () => {
        if (this.sessions.get(key) === session) this.sessions.delete(key);
      });
      this.sessions.set(key, session);
      session.start();
    }
    session.retain();
    return session;
  }

  private sessionsFor(payload: { sessionId?: string; workspaceId?: string }): ChatSession[] {
    if (!payload || typeof payload.sessionId !== "string") return [];
    const found: ChatSession[] = [];
    for (const session of this.sessions.values()) {
      if (session.sessionId !== payload.sessionId) continue;
      if (payload.workspaceId !== undefined && payload.workspaceId !== session.workspaceId) continue;
      found.push(session);
    }
    return found;
  }
}

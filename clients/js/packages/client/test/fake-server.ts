/**
 * An in-memory stand-in for socket.io-client's socket and a chat server's answers,
 * for the session logic's unit tests (the browser and integration tests use the real ones).
 *
 * `server.handle(event, fn)` decides each request's ack (`undefined`: never answer);
 * `server.push(event, payload)` delivers a server event; `drop()` / `restore()`
 * cut and bring back the connection.  Everything a client emitted is in `server.sent`.
 */

import type { IoFactory } from "../src/client.js";

type Handler = (payload: any) => unknown;

export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  readonly sent: Array<{ event: string; payload: any }> = [];
  readonly auths: unknown[] = [];
  private readonly handlers = new Map<string, Handler>();

  handle(event: string, handler: Handler): this {
    this.handlers.set(event, handler);
    return this;
  }

  sentOf(event: string): any[] {
    return this.sent.filter((entry) => entry.event === event).map((entry) => entry.payload);
  }

  /** The `io` a ChatClient uses: every call makes a socket (a test counts them). */
  readonly io: IoFactory = ((_url: unknown, options: any) => {
    const socket = new FakeSocket(this, options);
    this.sockets.push(socket);
    queueMicrotask(() => socket.open());
    return socket;
  }) as unknown as IoFactory;

  get socket(): FakeSocket {
    return this.sockets[this.sockets.length - 1]!;
  }

  answer(event: string, payload: any): unknown {
    this.sent.push({ event, payload });
    const handler = this.handlers.get(event);
    return handler ? handler(payload) : { ok: true };
  }

  push(event: string, payload: unknown): void {
    this.socket.fire(event, payload);
  }
}

type Listener = (...args: any[]) => void;

class Emitter {
  protected readonly listeners = new Map<string, Listener[]>();

  on(event: string, listener: Listener): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }

  off(event: string, listener: Listener): this {
    this.listeners.set(event, (this.listeners.get(event) ?? []).filter((l) => l !== listener));
    return this;
  }

  removeAllListeners(): this {
    this.listeners.clear();
    return this;
  }

  fire(event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }
}

export class FakeSocket extends Emitter {
  connected = false;
  active = true;
  id: string | undefined;
  sendBuffer: unknown[] = [];
  readonly io = new Emitter();
  private readonly pending = new Set<(error: Error) => void>();
  private opens = 0;

  constructor(
    private readonly server: FakeServer,
    readonly options: any,
  ) {
    super();
  }

  /** The handshake: runs the auth callback like socket.io-client does, then connects. */
  open(): void {
    if (!this.active || this.connected) return;
    const finish = (auth: unknown) => {
      this.server.auths.push(auth);
      this.connected = true;
      this.id = `sock-${++this.opens}`;
      this.fire("connect");
    };
    if (typeof this.options.auth === "function") this.options.auth(finish);
    else finish(this.options.auth);
  }

  connect(): this {
    this.active = true;
    queueMicrotask(() => this.open());
    return this;
  }

  disconnect(): this {
    this.active = false;
    if (this.connected) this.drop("io client disconnect");
    return this;
  }

  /** The connection is lost (`reason` as socket.io-client says it). */
  drop(reason = "transport close"): void {
    this.connected = false;
    for (const reject of this.pending) reject(new Error("socket has been disconnected"));
    this.pending.clear();
    this.fire("disconnect", reason);
  }

  /** The connection is back (what the manager's reconnection does). */
  restore(): void {
    this.active = true;
    this.open();
  }

  timeout(ms: number) {
    return {
      emitWithAck: (event: string, payload: unknown) =>
        new Promise((resolve, reject) => {
          if (!this.connected) {
            reject(new Error("not connected"));
            return;
          }
          const fail = (error: Error) => {
            clearTimeout(timer);
            reject(error);
          };
          const timer = setTimeout(() => {
            this.pending.delete(fail);
            reject(new Error("operation has timed out"));
          }, ms);
          this.pending.add(fail);
          const answer = this.server.answer(event, structuredClone(payload));
          if (answer === undefined) return; // never answered
          queueMicrotask(() => {
            if (!this.pending.delete(fail)) return;
            clearTimeout(timer);
            resolve(structuredClone(answer));
          });
        }),
    };
  }
}

// --- shapes --------------------------------------------------------------------------------

export const WS = "demo";
export const SID = "s-1";

export function message(seq: number, fields: Record<string, unknown> = {}) {
  return {
    id: `m-${seq}`,
    sessionId: SID,
    workspaceId: WS,
    seq,
    senderType: "user",
    userId: "bob",
    userName: "bob",
    content: `message ${seq}`,
    contentType: "text",
    metadata: {},
    timestamp: 1_700_000_000_000 + seq,
    ...fields,
  };
}

export function presence(userId: string, socketId: string, status = "active") {
  return { sessionId: SID, workspaceId: WS, userId, userName: userId, socketId, status, lastSeen: 1 };
}

export function joined(lastSeq: number, userId = "ann") {
  return {
    ok: true,
    sessionId: SID,
    agentId: null,
    workspaceId: WS,
    roomId: `chat:session:${SID}`,
    workspaceRoomId: `chat:workspace:${WS}`,
    status: "open",
    lastSeq,
    timestamp: 1,
    presence: presence(userId, "own"),
  };
}

export function page(messages: any[], fields: Record<string, unknown> = {}) {
  return { ok: true, sessionId: SID, messages, limit: 30, offset: 0, afterSeq: null, hasMore: false, timestamp: 1, ...fields };
}

/** A server holding `log` (its messages): joins, history by offset or afterSeq, sends stored in order. */
export function chatServer(log: any[] = []): FakeServer {
  const server = new FakeServer();
  server.handle("chat:join-session", () => joined(log.length ? log[log.length - 1].seq : 0));
  server.handle("chat:request-history", (request) => {
    if (typeof request.afterSeq === "number") {
      const after = log.filter((m) => m.seq > request.afterSeq);
      const limit = request.limit ?? 50;
      return page(after.slice(0, limit), { afterSeq: request.afterSeq, hasMore: after.length > limit, limit });
    }
    const limit = request.limit ?? 50;
    const end = log.length - (request.offset ?? 0);
    const start = Math.max(0, end - limit);
    return page(log.slice(start, Math.max(end, 0)), { offset: request.offset ?? 0, hasMore: start > 0, limit });
  });
  server.handle("chat:send-message", ({ message: sent }) => {
    const existing = log.find((m) => m.id === sent.id);
    const stored = existing ?? message(log.length + 1, { ...sent, userId: "ann", userName: "ann" });
    if (!existing) log.push(stored);
    return { ok: true, messageId: sent.id, sessionId: SID, seq: stored.seq, timestamp: stored.timestamp, duplicate: !!existing };
  });
  return server;
}

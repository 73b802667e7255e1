/** The session logic over a fake socket: join, catch-up, resend, rate limits, moderation. */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ChatClient } from "../src/client.js";
import { messageSteps } from "../src/store.js";
import { chatServer, FakeServer, message, SID, WS } from "./fake-server.js";

let clients: ChatClient[] = [];

function connect(server: FakeServer, options: Record<string, unknown> = {}) {
  const client = new ChatClient({ url: "http://chat.test", token: "chat_x", io: server.io, ...options });
  clients.push(client);
  client.connect();
  return client;
}

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  for (const client of clients) client.close();
  clients = [];
  vi.useRealTimers();
});

describe("joining", () => {
  it("joins on connect, loads the newest page and tells who we are", async () => {
    const server = chatServer([message(1), message(2)]);
    const session = connect(server).session(SID, WS, { agentId: "echo" });
    await tick();
    const snapshot = session.getSnapshot();
    expect(snapshot).toMatchObject({ status: "joined", joined: true, initialLoaded: true, self: { userId: "ann" } });
    expect(snapshot.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(server.sentOf("chat:join-session")).toEqual([{ sessionId: SID, workspaceId: WS, agentId: "echo" }]);
    expect(server.sentOf("chat:request-history")).toEqual([{ sessionId: SID, workspaceId: WS, limit: 30 }]);
    expect(server.auths).toEqual([{ token: "chat_x" }]);
  });

  it("shares one session between callers and leaves after the last lets go", async () => {
    const server = chatServer();
    const client = connect(server);
    const first = client.session(SID, WS);
    const second = client.session(SID, WS);
    expect(second).toBe(first);
    await tick();
    first.release();
    await tick();
    expect(server.sentOf("chat:leave-session")).toEqual([]);
    second.release();
    await tick();
    expect(server.sentOf("chat:leave-session")).toEqual([{ sessionId: SID, workspaceId: WS }]);
    expect(server.sentOf("chat:join-session")).toHaveLength(1);
  });

  it("asks for a fresh token for every connection", async () => {
    const server = chatServer();
    let issued = 0;
    const client = connect(server, { token: undefined, getToken: async () => `sock_${++issued}` });
    client.session(SID, WS);
    await tick();
    server.socket.drop();
    server.socket.restore();
    await tick();
    expect(server.auths).toEqual([{ token: "sock_1" }, { token: "sock_2" }]);
  });

  it("opens one connection however often it is retained and released in a row (strict mode)", async () => {
    const server = chatServer();
    const client = new ChatClient({ url: "http://chat.test", io: server.io });
    clients.push(client);
    client.retain();
    client.release();
    client.retain();
    await tick();
    expect(server.sockets).toHaveLength(1);
    expect(client.status.state).toBe("connected");
    client.release();
    await tick();
    expect(client.status.state).toBe("closed");
  });
});

describe("sending", () => {
  it("shows a message at once, then confirms it", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await tick();
    const item = session.send("hello  \n")!;
    expect(session.getSnapshot().messages.map((m) => [m.content, m.state])).toEqual([["hello", "pending"]]);
    await tick();
    expect(session.getSnapshot().messages.map((m) => [m.id, m.seq, m.state])).toEqual([[item.id, 1, "sent"]]);
    expect(server.sentOf("chat:send-message")).toEqual([
      { message: { id: item.id, sessionId: SID, workspaceId: WS, content: "hello", contentType: "text", metadata: {} } },
    ]);
  });

  it("sends what was written offline once the connection is back, exactly once, after catching up", async () => {
    const log = [message(1)];
    const server = chatServer(log);
    const session = connect(server).session(SID, WS);
    await tick();
    server.socket.drop();
    const offline = session.send("written offline")!;
    await tick(5_000);
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ id: offline.id, state: "pending", queued: true });
    expect(server.sentOf("chat:send-message")).toEqual([]);
    log.push(message(2)); // someone else wrote meanwhile
    server.socket.restore();
    await tick();
    expect(server.sentOf("chat:send-message").map((p) => p.message.id)).toEqual([offline.id]);
    expect(server.sentOf("chat:request-history").at(-1)).toEqual({ sessionId: SID, workspaceId: WS, afterSeq: 1, limit: 200 });
    expect(session.getSnapshot().messages.map((m) => [m.seq, m.state])).toEqual([
      [1, "stored"],
      [2, "stored"],
      [3, "sent"],
    ]);
  });

  it("resends with the same id when the answer was lost, and the server's duplicate changes nothing", async () => {
    const log: any[] = [];
    const server = chatServer(log);
    const session = connect(server).session(SID, WS);
    await tick();
    const store = server.sentOf.bind(server);
    const answer = (server as any).handlers.get("chat:send-message");
    let first = true;
    server.handle("chat:send-message", (payload) => {
      const result = answer(payload); // stored...
      if (first) {
        first = false;
        return undefined; // ...but the ack never arrives
      }
      return result;
    });
    const item = session.send("once")!;
    await tick(15_000); // the send times out
    expect(session.getSnapshot().messages[0]).toMatchObject({ state: "pending", queued: true });
    await tick(2_000); // and goes again
    expect(store("chat:send-message").map((p) => p.message.id)).toEqual([item.id, item.id]);
    expect(log).toHaveLength(1);
    expect(session.getSnapshot().messages.map((m) => [m.id, m.seq, m.state])).toEqual([[item.id, 1, "sent"]]);
  });

  it("sends one at a time, in the order written", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await tick();
    const ids = ["a", "b", "c"].map((text) => session.send(text)!.id);
    await tick();
    expect(server.sentOf("chat:send-message").map((p) => p.message.id)).toEqual(ids);
    expect(session.getSnapshot().messages.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("honours retryAfter: waits, then sends again by itself", async () => {
    const server = chatServer();
    const send = (server as any).handlers.get("chat:send-message");
    let limited = true;
    server.handle("chat:send-message", (payload) => {
      if (limited) {
        limited = false;
        return { ok: false, error: "Slow down.", code: "rate_limited", retryAfter: 4_000, messageId: payload.message.id };
      }
      return send(payload);
    });
    const session = connect(server).session(SID, WS);
    await tick();
    session.send("first");
    session.send("second");
    await tick();
    const snapshot = session.getSnapshot();
    expect(snapshot.error).toMatchObject({ code: "rate_limited", scope: "send", retryAfter: 4_000 });
    expect(snapshot.sendBlockedUntil).toBeGreaterThan(Date.now());
    expect(snapshot.messages.map((m) => m.state)).toEqual(["pending", "pending"]);
    await tick(3_900);
    expect(server.sentOf("chat:send-message")).toHaveLength(1);
    await tick(200);
    expect(server.sentOf("chat:send-message")).toHaveLength(3);
    expect(session.getSnapshot().messages.map((m) => [m.content, m.state])).toEqual([
      ["first", "sent"],
      ["second", "sent"],
    ]);
    expect(session.getSnapshot().error).toBeNull();
  });

  it("fails a refused message with the server's reason; retry reuses the id", async () => {
    const server = chatServer();
    const send = (server as any).handlers.get("chat:send-message");
    server.handle("chat:send-message", () => ({ ok: false, error: "Too long.", code: "message_too_long", maxLength: 5 }));
    const session = connect(server).session(SID, WS);
    await tick();
    const item = session.send("too long")!;
    await tick();
    expect(session.getSnapshot().messages[0]).toMatchObject({ state: "failed", error: { code: "message_too_long", maxLength: 5 } });
    server.handle("chat:send-message", send);
    session.retry(item.id);
    await tick();
    expect(session.getSnapshot().messages.map((m) => [m.id, m.state])).toEqual([[item.id, "sent"]]);
  });
});

describe("catching up", () => {
  it("fills a gap in live messages from the server's history", async () => {
    const log = [message(1)];
    const server = chatServer(log);
    const session = connect(server).session(SID, WS);
    await tick();
    log.push(message(2), message(3));
    server.push("chat:message-received", message(3)); // 2 never arrived live
    await tick(500);
    expect(server.sentOf("chat:request-history").at(-1)).toMatchObject({ afterSeq: 1 });
    expect(session.getSnapshot().messages.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("asks nothing after a reconnect when the join says nothing is missing", async () => {
    const server = chatServer([message(1)]);
    connect(server).session(SID, WS);
    await tick();
    server.socket.drop();
    server.socket.restore();
    await tick();
    expect(server.sentOf("chat:join-session")).toHaveLength(2);
    expect(server.sentOf("chat:request-history")).toHaveLength(1);
  });

  it("pages a long catch-up while hasMore", async () => {
    const log = [message(1)];
    const server = chatServer(log);
    const session = connect(server).session(SID, WS);
    await tick();
    server.socket.drop();
    for (let seq = 2; seq <= 450; seq += 1) log.push(message(seq));
    server.socket.restore();
    await tick();
    expect(server.sentOf("chat:request-history").slice(1).map((r) => r.afterSeq)).toEqual([1, 201, 401]);
    const seqs = session.getSnapshot().messages.map((m) => m.seq);
    expect(seqs).toHaveLength(450);
    expect(new Set(seqs).size).toBe(450);
  });

  it("loads older pages by offset", async () => {
    const log = Array.from({ length: 70 }, (_, i) => message(i + 1));
    const server = chatServer(log);
    const session = connect(server).session(SID, WS);
    await tick();
    expect(session.getSnapshot()).toMatchObject({ hasOlder: true });
    await session.loadOlder();
    await session.loadOlder();
    expect(server.sentOf("chat:request-history").map((r) => r.offset ?? 0)).toEqual([0, 30, 60]);
    expect(session.getSnapshot().messages.map((m) => m.seq)).toEqual(log.map((m) => m.seq));
    expect(session.getSnapshot().hasOlder).toBe(false);
  });
});

describe("events", () => {
  it("assembles an agent's reply and cancels it", async () => {
    const server = chatServer([message(1)]);
    server.handle("chat:cancel-agent", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, inReplyTo: "m-1", status: "cancelling" }));
    const session = connect(server).session(SID, WS);
    await tick();
    const chunk = { sessionId: SID, workspaceId: WS, messageId: "r-1", agentId: "echo", inReplyTo: "m-1", timestamp: 1, isComplete: false };
    server.push("chat:typing-indicator", { sessionId: SID, userId: "Echo agent", userName: "Echo agent", isTyping: true, timestamp: 1, senderType: "agent", agentId: "echo" });
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: "Echo:", index: 0 });
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: " hi", index: 1 });
    expect(session.getSnapshot().typing.map((t) => t.name)).toEqual(["Echo agent"]);
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ id: "r-1", state: "streaming", content: "Echo: hi", userName: "Echo agent" });
    expect(await session.cancelAgent("r-1")).toMatchObject({ status: "cancelling" });
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: "", index: 2, isComplete: true, cancelled: true, seq: 2 });
    server.push("chat:message-received", message(2, { id: "r-1", senderType: "agent", userId: null, userName: "Echo agent", content: "Echo: hi", metadata: { cancelled: true } }));
    expect(session.getSnapshot().messages.map((m) => [m.id, m.seq, m.state])).toEqual([
      ["m-1", 1, "stored"],
      ["r-1", 2, "stored"],
    ]);
    expect(server.sentOf("chat:cancel-agent")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-1" }]);
  });

  it("regenerates a reply into a new version, and keeps the old one when a regeneration fails", async () => {
    const server = chatServer([message(1), message(2, { id: "r-1", senderType: "agent", userId: null, userName: "Echo", content: "first", version: 1 })]);
    server.handle("chat:regenerate", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, inReplyTo: "m-1", requestId: p.requestId, version: 2, status: "pending", duplicate: false }));
    const session = connect(server).session(SID, WS);
    await tick();
    expect(await session.regenerate("r-1", "req-1")).toMatchObject({ version: 2, duplicate: false });
    expect(server.sentOf("chat:regenerate")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-1", requestId: "req-1" }]);
    const chunk = { sessionId: SID, workspaceId: WS, messageId: "r-1", agentId: "echo", inReplyTo: "m-1", timestamp: 1, isComplete: false, version: 2 };
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: "sec", index: 0 });
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: "ond", index: 1 });
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ id: "r-1", state: "streaming", content: "second", version: 1 });
    server.push("chat:agent-stream-chunk", { ...chunk, chunk: "", index: 2, isComplete: true, seq: 2 });
    server.push("chat:message-updated", { sessionId: SID, workspaceId: WS, messageId: "r-1", seq: 2, version: 2, message: message(2, { id: "r-1", senderType: "agent", userId: null, userName: "Echo", content: "second", version: 2 }) });
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ id: "r-1", state: "stored", content: "second", version: 2, seq: 2 });
    // A late, older version never rolls it back.
    server.push("chat:message-updated", { sessionId: SID, workspaceId: WS, messageId: "r-1", seq: 2, version: 1, message: message(2, { id: "r-1", senderType: "agent", userId: null, userName: "Echo", content: "first", version: 1 }) });
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ content: "second", version: 2 });
    // A regeneration that fails leaves the reply as it was.
    server.push("chat:agent-stream-chunk", { ...chunk, version: 3, chunk: "thi", index: 0 });
    expect(session.getSnapshot().messages.at(-1)).toMatchObject({ content: "thi", state: "streaming" });
    server.push("chat:agent-stream-chunk", { ...chunk, version: 3, chunk: "", index: 1, isComplete: true, error: { code: "timeout", message: "Echo could not answer: it did not finish in time." } });
    expect(session.getSnapshot().messages.map((m) => [m.id, m.content, m.state, m.version])).toEqual([
      ["m-1", "message 1", "stored", 1],
      ["r-1", "second", "stored", 2],
    ]);
  });

  it("rates a reply and keeps the counts", async () => {
    const server = chatServer([message(1, { id: "r-1", senderType: "agent", userId: null, userName: "Echo" })]);
    server.handle("chat:rate-message", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, rating: p.rating, comment: p.comment ?? "", feedback: { up: 2, down: 0 } }));
    const session = connect(server).session(SID, WS);
    await tick();
    expect(await session.rateMessage("r-1", "up", "great")).toMatchObject({ rating: "up", feedback: { up: 2, down: 0 } });
    expect(server.sentOf("chat:rate-message")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-1", rating: "up", comment: "great" }]);
    expect(session.getSnapshot().messages[0].feedback).toEqual({ up: 2, down: 0, mine: "up" });
    server.handle("chat:rate-message", () => ({ ok: false, code: "message_not_found", error: "No such message in this session." }));
    expect(await session.rateMessage("nope", "down")).toBeNull();
    expect(session.getSnapshot().error).toMatchObject({ code: "message_not_found", scope: "rate" });
  });

  it("folds tool calls and reasoning into the reply's steps, and a catch-up replaces them", async () => {
    const server = chatServer([message(1)]);
    const session = connect(server).session(SID, WS);
    await tick();
    const base = { sessionId: SID, workspaceId: WS, messageId: "r-1", agentId: "echo", inReplyTo: "m-1", timestamp: 1 };
    const call = { ...base, toolCallId: "c-1", name: "count_words" };
    server.push("chat:agent-reasoning", { ...base, index: 0, text: "Counting" });
    server.push("chat:agent-tool-call", { ...call, index: 1, argumentsDelta: "", status: "started" });
    server.push("chat:agent-tool-call", { ...call, index: 2, argumentsDelta: '{"text": ', status: "running" });
    server.push("chat:agent-tool-call", { ...call, index: 2, argumentsDelta: "DUPLICATE", status: "running" }); // already held
    server.push("chat:agent-tool-call", { ...call, index: 3, argumentsDelta: '"hi"}', status: "running" });
    server.push("chat:agent-reasoning", { ...base, index: 4, text: "One word." }); // after a tool call: a step of its own
    server.push("chat:agent-tool-call", { ...call, index: 5, argumentsDelta: "", status: "completed", result: '{"words": 1}' });
    server.push("chat:agent-stream-chunk", { ...base, index: 6, chunk: "Echo: hi", isComplete: false });
    const reply = session.getSnapshot().messages.at(-1)!;
    expect(reply).toMatchObject({ id: "r-1", state: "streaming", content: "Echo: hi" });
    expect(messageSteps(reply)).toEqual([
      { type: "reasoning", text: "Counting" },
      { type: "tool", toolCallId: "c-1", name: "count_words", arguments: '{"text": "hi"}', status: "completed", result: '{"words": 1}' },
      { type: "reasoning", text: "One word." },
    ]);
    // A late catch-up holding more replaces text and steps; live events it includes are skipped.
    const steps = [{ type: "tool" as const, toolCallId: "c-1", name: "count_words", arguments: "{}", status: "completed" as const }];
    server.push("chat:agent-stream-chunk", { ...base, index: 8, chunk: "Echo: hi there", isComplete: false, catchUp: true, steps });
    server.push("chat:agent-tool-call", { ...call, toolCallId: "c-2", index: 7, argumentsDelta: "", status: "started" });
    expect(messageSteps(session.getSnapshot().messages.at(-1)!)).toEqual(steps);
    expect(session.getSnapshot().messages.at(-1)!.content).toBe("Echo: hi there");
    server.push("chat:agent-stream-chunk", { ...base, index: 9, chunk: "", isComplete: true, seq: 2 });
    server.push("chat:message-received", message(2, { id: "r-1", senderType: "agent", userId: null, content: "Echo: hi there", metadata: { steps } }));
    expect(messageSteps(session.getSnapshot().messages.at(-1)!)).toEqual(steps);
  });

  it("applies moderation: hidden, restored, closed", async () => {
    const server = chatServer([message(1), message(2)]);
    const session = connect(server).session(SID, WS);
    await tick();
    server.push("chat:message-hidden", { sessionId: SID, workspaceId: WS, messageId: "m-1" });
    expect(session.getSnapshot().messages.map((m) => m.id)).toEqual(["m-2"]);
    server.push("chat:message-unhidden", { sessionId: SID, workspaceId: WS, messageId: "m-1", message: message(1) });
    expect(session.getSnapshot().messages.map((m) => m.id)).toEqual(["m-1", "m-2"]);
    server.push("chat:session-closed", { sessionId: SID, workspaceId: WS, closedBy: "mod", timestamp: 1 });
    expect(session.getSnapshot().closed).toBe(true);
    expect(session.send("anyone?")).toBeNull();
    expect(session.getSnapshot().error).toMatchObject({ code: "session_closed" });
  });

  it("edits and deletes by version, applies the broadcasts and reports a conflict", async () => {
    const server = chatServer([message(1, { userId: "ann", userName: "ann" }), message(2)]);
    server.handle("chat:edit-message", (p) =>
      p.messageId === "m-1"
        ? { ok: true, sessionId: SID, messageId: p.messageId, seq: 1, version: 2, duplicate: false }
        : { ok: false, code: "version_conflict", error: "changed", currentVersion: 3 },
    );
    server.handle("chat:delete-message", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, seq: 1, version: 3, duplicate: false }));
    const session = connect(server).session(SID, WS);
    await tick();
    expect(await session.editMessage("m-1", "better")).toMatchObject({ version: 2 });
    expect(server.sentOf("chat:edit-message")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "m-1", version: 1, content: "better" }]);
    const edited = message(1, { userId: "ann", userName: "ann", content: "better", version: 2, editedAt: 5, deleted: false });
    server.push("chat:message-updated", { sessionId: SID, workspaceId: WS, messageId: "m-1", seq: 1, version: 2, message: edited });
    expect(session.getSnapshot().messages[0]).toMatchObject({ id: "m-1", content: "better", version: 2, editedAt: 5, mine: true });

    // Delivered out of order: the deletion (version 3) first, then a stale edit (version 2) again.
    server.push("chat:message-deleted", { sessionId: SID, workspaceId: WS, messageId: "m-1", seq: 1, version: 3, timestamp: 1 });
    server.push("chat:message-updated", { sessionId: SID, workspaceId: WS, messageId: "m-1", seq: 1, version: 2, message: edited });
    expect(session.getSnapshot().messages.map((m) => [m.id, m.deleted, m.content, m.version])).toEqual([
      ["m-1", true, "", 3],
      ["m-2", false, "message 2", 1],
    ]);

    // Our own stale edit: refused, and the session says why.
    expect(await session.editMessage("m-2", "not mine anyway")).toBeNull();
    expect(session.getSnapshot().error).toMatchObject({ scope: "edit", code: "version_conflict", currentVersion: 3 });
    expect(await session.deleteMessage("m-1")).toMatchObject({ version: 3 });
    expect(await session.editMessage("no-such", "x")).toBeNull();
  });

  it("stops at chat:session-left: access to the session ended", async () => {
    const server = chatServer([message(1)]);
    const session = connect(server).session(SID, WS);
    await tick();
    server.push("chat:session-left", {
      sessionId: SID,
      workspaceId: WS,
      code: "access_revoked",
      message: "You no longer have access to this session.",
      timestamp: 1,
    });
    expect(session.getSnapshot()).toMatchObject({ status: "error", joined: false, error: { code: "access_revoked", scope: "session" } });
  });

  it("ignores events of other sessions and other workspaces", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await tick();
    server.push("chat:message-received", message(1, { sessionId: "other" }));
    server.push("chat:message-received", message(1, { workspaceId: "elsewhere" }));
    expect(session.getSnapshot().messages).toEqual([]);
  });

  it("debounces typing: one start, renewals every 2 s, a stop 3 s after the last key", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await tick();
    for (let i = 0; i < 10; i += 1) {
      session.noteInput("h".repeat(i + 1));
      await tick(500);
    }
    await tick(3_000);
    expect(server.sentOf("chat:typing").map((t) => t.isTyping)).toEqual([true, true, true, false]);
  });

  it("forgets presence a rejoin cannot confirm", async () => {
    const server = chatServer();
    const session = connect(server, { presenceTtlMs: 30_000 }).session(SID, WS);
    await tick();
    server.push("chat:user-joined", { sessionId: SID, workspaceId: WS, userId: "bob", userName: "bob", socketId: "b1", status: "active", lastSeen: 1 });
    server.push("chat:user-joined", { sessionId: SID, workspaceId: WS, userId: "cy", userName: "cy", socketId: "c1", status: "active", lastSeen: 1 });
    expect(session.getSnapshot().presence.map((p) => p.userId)).toEqual(["ann", "bob", "cy"]);
    server.socket.drop();
    server.socket.restore();
    await tick(10_000);
    server.push("chat:presence-updated", { sessionId: SID, workspaceId: WS, userId: "bob", userName: "bob", socketId: "b1", status: "idle", lastSeen: 2 });
    await tick(21_000);
    expect(session.getSnapshot().presence.map((p) => [p.userId, p.status])).toEqual([
      ["ann", "active"],
      ["bob", "idle"],
    ]);
  });
});

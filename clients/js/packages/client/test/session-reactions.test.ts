/** The session's reactions and read state over a fake socket: requests sent, events routed, order-independence. */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { ChatClient } from "../src/client.js";
import { chatServer, type FakeServer, message, SID, WS } from "./fake-server.js";

let clients: ChatClient[] = [];
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

function connect(server: FakeServer) {
  const client = new ChatClient({ url: "http://chat.test", token: "chat_x", io: server.io });
  clients.push(client);
  client.connect();
  return client;
}

const aggregate = (version: number, users: string[]) => ({
  sessionId: SID,
  workspaceId: WS,
  messageId: "m-1",
  seq: 1,
  reactions: users.length ? [{ emoji: "👍", count: users.length, users }] : [],
  reactionsVersion: version,
  userId: "bob",
  emoji: "👍",
  added: true,
  timestamp: version,
});

beforeEach(() => vi.useFakeTimers());
afterEach(() => {
  for (const client of clients) client.close();
  clients = [];
  vi.useRealTimers();
});

describe("reactions in a session", () => {
  it("toggles ours and keeps the newest broadcast whatever order they arrive in", async () => {
    const server = chatServer([message(1)]);
    server.handle("chat:add-reaction", () => ({ ok: true, sessionId: SID, messageId: "m-1", emoji: "👍", ...aggregate(2, ["bob", "ann"]) }));
    const session = connect(server).session(SID, WS);
    await tick();
    await session.toggleReaction("m-1", "👍");
    expect(server.sentOf("chat:add-reaction")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "m-1", emoji: "👍" }]);
    const item = () => session.getSnapshot().messages[0]!;
    expect(item().reactions.reactions).toEqual([{ emoji: "👍", count: 2, users: ["bob", "ann"], me: true }]);

    // Late and repeated broadcasts (versions 1 and 2) change nothing; version 3 (bob took his back) wins.
    server.push("chat:reactions-updated", aggregate(3, ["ann"]));
    server.push("chat:reactions-updated", aggregate(1, ["bob"]));
    server.push("chat:reactions-updated", aggregate(2, ["bob", "ann"]));
    expect(item().reactions).toMatchObject({ version: 3, reactions: [{ emoji: "👍", count: 1, me: true }] });

    server.handle("chat:remove-reaction", () => ({ ok: true, sessionId: SID, messageId: "m-1", emoji: "👍", ...aggregate(4, []) }));
    await session.toggleReaction("m-1", "👍");
    expect(server.sentOf("chat:remove-reaction")).toHaveLength(1);
    expect(item().reactions).toEqual({ version: 4, reactions: [] });
  });

  it("reports a refused reaction with its code and limit", async () => {
    const server = chatServer([message(1)]);
    server.handle("chat:add-reaction", () => ({ ok: false, code: "reaction_user_limit", error: "Too many.", limit: 10 }));
    const session = connect(server).session(SID, WS);
    await tick();
    expect(await session.react("m-1", "🎉")).toMatchObject({ code: "reaction_user_limit", limit: 10 });
    expect(session.getSnapshot().error).toMatchObject({ code: "reaction_user_limit", scope: "session" });
  });
});

describe("read state in a session", () => {
  it("starts from the join, marks read forward only, and follows receipts and our other devices", async () => {
    const server = chatServer([message(1), message(2), message(3)]);
    server.handle("chat:join-session", () => ({
      ok: true, sessionId: SID, agentId: null, workspaceId: WS, roomId: `chat:session:${SID}`,
      workspaceRoomId: `chat:workspace:${WS}`, status: "open", lastSeq: 3, lastReadSeq: 1, unreadCount: 2,
      timestamp: 1, presence: { sessionId: SID, workspaceId: WS, userId: "ann", userName: "ann", socketId: "s1", status: "active", lastSeen: 1 },
    }));
    server.handle("chat:mark-read", (request) => ({ ok: true, sessionId: SID, lastReadSeq: request.seq, unreadCount: 0 }));
    const session = connect(server).session(SID, WS);
    await tick();
    expect(session.getSnapshot()).toMatchObject({ lastReadSeq: 1, unreadCount: 2 });

    await session.markRead();
    expect(server.sentOf("chat:mark-read")).toEqual([{ sessionId: SID, workspaceId: WS, seq: 3 }]);
    expect(session.getSnapshot()).toMatchObject({ lastReadSeq: 3, unreadCount: 0, readReceipts: { ann: 3 } });
    await session.markRead(2); // behind the pointer: nothing sent
    expect(server.sentOf("chat:mark-read")).toHaveLength(1);

    // A new message from bob is unread; bob's receipt arrives twice and out of order.
    server.push("chat:message-received", message(4));
    expect(session.getSnapshot().unreadCount).toBe(1);
    const read = (userId: string, seq: number, unreadCount = 0) => ({ sessionId: SID, workspaceId: WS, userId, seq, unreadCount, timestamp: 1 });
    server.push("chat:read-updated", read("bob", 4));
    server.push("chat:read-updated", read("bob", 2));
    server.push("chat:read-updated", read("bob", 4));
    expect(session.getSnapshot().readReceipts).toEqual({ ann: 3, bob: 4 });
    // Our other device read it all.
    server.push("chat:read-updated", read("ann", 4));
    expect(session.getSnapshot()).toMatchObject({ lastReadSeq: 4, unreadCount: 0 });
  });

  it("marks a busy session read once in flight and at most once a second, the last with the newest seq", async () => {
    const server = chatServer([message(1)]);
    server.handle("chat:mark-read", (request) => ({ ok: true, sessionId: SID, lastReadSeq: request.seq, unreadCount: 0 }));
    const session = connect(server).session(SID, WS);
    await tick();
    await session.markRead();
    const marks = [];
    for (let seq = 2; seq <= 6; seq++) {
      server.push("chat:message-received", message(seq));
      marks.push(session.markRead()); // as a view does for every message that arrives on screen
      await tick(100);
    }
    const sent = () => server.sentOf("chat:mark-read").map((request) => request.seq);
    expect(sent()).toEqual([1]); // within the second: they wait, together
    await tick(500);
    await Promise.all(marks);
    expect(sent()).toEqual([1, 6]);
    expect(session.getSnapshot()).toMatchObject({ lastReadSeq: 6, unreadCount: 0 });
  });
});

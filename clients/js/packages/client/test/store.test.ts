import { describe, expect, it } from "vitest";

import type { AgentStreamChunk, ChatMessage } from "../src/events.js";
import { MessageStore } from "../src/store.js";
import { message } from "./fake-server.js";

const msg = (seq: number, fields: Record<string, unknown> = {}) => message(seq, fields) as ChatMessage;

function chunk(index: number, text: string, fields: Partial<AgentStreamChunk> = {}): AgentStreamChunk {
  return {
    sessionId: "s-1",
    messageId: "reply-1",
    chunk: text,
    isComplete: false,
    timestamp: 1,
    workspaceId: "demo",
    agentId: "echo",
    inReplyTo: "m-1",
    index,
    ...fields,
  };
}

describe("ordering by seq", () => {
  it("lists stored messages by seq whatever order they arrive in, unsent ones after", () => {
    const store = new MessageStore();
    store.putStored(msg(3));
    store.addLocal({ id: "local-a", content: "a" });
    store.putStored(msg(1));
    store.addLocal({ id: "local-b", content: "b" });
    store.putStored(msg(2));
    expect(store.list().map((m) => m.id)).toEqual(["m-1", "m-2", "m-3", "local-a", "local-b"]);
  });

  it("moves a confirmed message to its seq", () => {
    const store = new MessageStore();
    store.addLocal({ id: "mine", content: "hello" });
    store.putStored(msg(1));
    store.putStored(msg(3));
    store.confirm("mine", { seq: 2, timestamp: 5 });
    expect(store.list().map((m) => [m.id, m.seq, m.state])).toEqual([
      ["m-1", 1, "stored"],
      ["mine", 2, "sent"],
      ["m-3", 3, "stored"],
    ]);
  });

  it("returns the same list until something changes", () => {
    const store = new MessageStore();
    store.putStored(msg(1));
    const first = store.list();
    expect(store.list()).toBe(first);
    store.putStored(msg(1)); // a repeat changes nothing
    expect(store.list()).toBe(first);
    store.putStored(msg(2));
    expect(store.list()).not.toBe(first);
  });
});

describe("dedupe by id", () => {
  it("keeps one entry per id whichever route a message takes", () => {
    const store = new MessageStore();
    expect(store.putStored(msg(1)).added).toBe(true);
    expect(store.applyPage({ messages: [msg(1), msg(2)], hasMore: false })).toBe(1);
    expect(store.applyPage({ messages: [msg(2)], afterSeq: 1, hasMore: false })).toBe(0);
    expect(store.putStored(msg(2)).added).toBe(false);
    expect(store.list().map((m) => m.id)).toEqual(["m-1", "m-2"]);
  });

  it("merges our pending entry with the server's copy (another tab, a catch-up)", () => {
    const store = new MessageStore();
    store.self = { userId: "ann", userName: "ann" };
    const local = store.addLocal({ id: "mine", content: "hi" });
    expect(local.state).toBe("pending");
    store.putStored(msg(1, { id: "mine", userId: "ann", userName: "ann", content: "hi" }));
    store.confirm("mine", { seq: 1 });
    expect(store.list()).toHaveLength(1);
    expect(store.get("mine")).toMatchObject({ state: "sent", seq: 1, mine: true });
  });

  it("shows another tab's message of ours as ours", () => {
    const store = new MessageStore();
    store.self = { userId: "ann", userName: "ann" };
    store.putStored(msg(1, { userId: "ann" }));
    expect(store.get("m-1")).toMatchObject({ mine: true, state: "sent" });
  });

  it("keeps html only as the server sent it", () => {
    const store = new MessageStore();
    store.putStored(msg(1, { contentType: "markdown", content: "**x**", html: "<p><strong>x</strong></p>" }));
    store.putStored(msg(2, { content: "<b>not html</b>" }));
    store.addLocal({ id: "local", content: "<i>typed</i>" });
    expect(store.list().map((m) => m.html)).toEqual(["<p><strong>x</strong></p>", null, null]);
  });
});

describe("resend", () => {
  it("keeps unconfirmed messages pending, in order, until confirmed", () => {
    const store = new MessageStore();
    store.addLocal({ id: "a", content: "a" });
    store.addLocal({ id: "b", content: "b" });
    store.markSending("a");
    store.markQueued("a");
    expect(store.unsent().map((m) => [m.id, m.queued])).toEqual([
      ["a", true],
      ["b", true],
    ]);
    store.confirm("a", { seq: 1 });
    expect(store.unsent().map((m) => m.id)).toEqual(["b"]);
    store.fail("b", { code: "message_too_long", message: "Too long.", retryable: false });
    expect(store.unsent()).toEqual([]);
    expect(store.markSending("b")).toMatchObject({ state: "pending", error: null });
    expect(store.unsent().map((m) => m.id)).toEqual(["b"]);
  });

  it("never fails or resends a message that is already stored", () => {
    const store = new MessageStore();
    store.addLocal({ id: "a", content: "a" });
    store.confirm("a", { seq: 4 });
    expect(store.fail("a", { code: "internal", message: "x", retryable: true })).toBeNull();
    expect(store.markSending("a")).toBeNull();
    expect(store.get("a")?.state).toBe("sent");
  });
});

describe("gap fill", () => {
  it("moves the catch-up cursor over contiguous messages only", () => {
    const store = new MessageStore();
    store.applyLatestPage({ messages: [msg(1), msg(2)] });
    expect([store.syncedSeq, store.hasGap]).toEqual([2, false]);
    store.putStored(msg(3));
    expect([store.syncedSeq, store.hasGap]).toEqual([3, false]);
    store.putStored(msg(6)); // 4 and 5 were missed
    expect([store.syncedSeq, store.hasGap]).toEqual([3, true]);
    store.applyPage({ messages: [msg(4), msg(5), msg(6)], afterSeq: 3, hasMore: false });
    expect([store.syncedSeq, store.hasGap]).toEqual([6, false]);
    expect(store.list().map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("steps over seqs the server does not show (hidden messages)", () => {
    const store = new MessageStore();
    store.applyLatestPage({ messages: [msg(1)] });
    store.putStored(msg(4));
    expect(store.hasGap).toBe(true);
    // afterSeq 1 returns 3 and 4 only: 2 is hidden from us
    store.applyPage({ messages: [msg(3), msg(4)], afterSeq: 1, hasMore: false });
    expect([store.syncedSeq, store.hasGap]).toEqual([4, false]);
  });

  it("follows a catch-up page by page while hasMore", () => {
    const store = new MessageStore();
    store.applyLatestPage({ messages: [msg(1)] });
    store.applyPage({ messages: [msg(2), msg(3)], afterSeq: 1, hasMore: true });
    expect(store.syncedSeq).toBe(3);
    store.applyPage({ messages: [msg(4)], afterSeq: 3, hasMore: false });
    expect(store.syncedSeq).toBe(4);
  });

  it("ignores the cursor of a stale page", () => {
    const store = new MessageStore();
    store.applyLatestPage({ messages: [msg(1), msg(2), msg(3)] });
    store.applyPage({ messages: [], afterSeq: 7, hasMore: false });
    expect(store.syncedSeq).toBe(3);
  });

  it("starts the cursor at the newest message of the first page", () => {
    const store = new MessageStore();
    store.applyLatestPage({ messages: [msg(41), msg(42)] });
    expect([store.syncedSeq, store.hasGap]).toEqual([42, false]);
    store.applyPage({ messages: [msg(39), msg(40)], hasMore: true }); // an older page
    expect(store.syncedSeq).toBe(42);
  });
});

describe("stream assembly", () => {
  it("grows one entry chunk by chunk, once per index, and the stored reply completes it", () => {
    const store = new MessageStore();
    store.appendChunk(chunk(0, "Echo:"), "Echo agent");
    store.appendChunk(chunk(1, " hello"), "Echo agent");
    store.appendChunk(chunk(1, " hello"), "Echo agent"); // a repeat
    store.appendChunk(chunk(2, " there"), "Echo agent");
    expect(store.get("reply-1")).toMatchObject({
      state: "streaming",
      content: "Echo: hello there",
      userName: "Echo agent",
      senderType: "agent",
      stream: { lastIndex: 2, done: false, interrupted: false, inReplyTo: "m-1" },
    });
    store.finishStream(chunk(3, "", { isComplete: true, seq: 2 }));
    expect(store.get("reply-1")?.stream?.done).toBe(true);
    store.putStored(msg(2, { id: "reply-1", senderType: "agent", userId: null, userName: "Echo agent", content: "Echo: hello there" }));
    expect(store.list()).toHaveLength(1);
    expect(store.get("reply-1")).toMatchObject({ state: "stored", seq: 2, content: "Echo: hello there" });
  });

  it("marks a stream with missed chunks as interrupted", () => {
    const store = new MessageStore();
    store.appendChunk(chunk(0, "a"), "Agent");
    store.appendChunk(chunk(2, "c"), "Agent");
    expect(store.get("reply-1")?.stream?.interrupted).toBe(true);
  });

  it("ignores chunks of a reply already stored", () => {
    const store = new MessageStore();
    store.putStored(msg(2, { id: "reply-1", senderType: "agent", userId: null, content: "whole" }));
    store.appendChunk(chunk(0, "wh"), "Agent");
    expect(store.get("reply-1")).toMatchObject({ state: "stored", content: "whole" });
  });

  it("keeps what a cancelled reply said, and drops one cancelled before a word", () => {
    const store = new MessageStore();
    store.appendChunk(chunk(0, "partial"), "Agent");
    store.finishStream(chunk(1, "", { isComplete: true, cancelled: true }));
    expect(store.get("reply-1")?.stream).toMatchObject({ done: true, cancelled: true });
    store.finishStream(chunk(0, "", { messageId: "reply-2", isComplete: true, cancelled: true }));
    store.appendChunk(chunk(0, "", { messageId: "reply-3" }), "Agent");
    store.finishStream(chunk(1, "", { messageId: "reply-3", isComplete: true, error: { code: "timeout", message: "x" } }));
    expect(store.get("reply-3")).toBeUndefined();
  });

  it("skips live chunks a catch-up already covers, and reads the same as a client present from the start", () => {
    const present = new MessageStore();
    ["Echo:", " one", " two", " three", " four"].forEach((text, index) => present.appendChunk(chunk(index, text), "Agent"));

    // A late joiner: two live chunks reach it before its catch-up (which holds them), then the rest live.
    const joiner = new MessageStore();
    joiner.appendChunk(chunk(1, " one"), "Agent");
    joiner.appendChunk(chunk(2, " two"), "Agent");
    joiner.appendChunk(chunk(2, "Echo: one two", { catchUp: true }), "Agent");
    joiner.appendChunk(chunk(2, " two"), "Agent"); // covered by the catch-up: skipped
    joiner.appendChunk(chunk(3, " three"), "Agent");
    joiner.appendChunk(chunk(4, " four"), "Agent");

    expect(joiner.get("reply-1")?.content).toBe(present.get("reply-1")?.content);
    expect(joiner.get("reply-1")?.stream).toMatchObject({ lastIndex: 4, interrupted: false });
  });

  it("fills a reconnect's gap from the catch-up, and ignores a catch-up older than what it holds", () => {
    const store = new MessageStore();
    store.appendChunk(chunk(0, "a"), "Agent");
    store.interruptStreams(); // disconnected; chunks 1 and 2 are missed
    store.appendChunk(chunk(2, "abc", { catchUp: true }), "Agent");
    expect(store.get("reply-1")).toMatchObject({ content: "abc", stream: { lastIndex: 2, interrupted: false } });
    store.appendChunk(chunk(3, "d"), "Agent");
    store.appendChunk(chunk(1, "ab", { catchUp: true }), "Agent"); // older than what we hold
    expect(store.get("reply-1")).toMatchObject({ content: "abcd", stream: { lastIndex: 3 } });
  });

  it("marks streams cut by a reconnect as interrupted", () => {
    const store = new MessageStore();
    store.appendChunk(chunk(0, "a"), "Agent");
    expect(store.interruptStreams()).toBe(1);
    expect(store.get("reply-1")?.stream?.interrupted).toBe(true);
  });
});

describe("edits and deletions by version", () => {
  const updated = (seq: number, version: number, content: string) => ({
    sessionId: "s-1",
    workspaceId: "demo",
    messageId: `m-${seq}`,
    seq,
    version,
    message: msg(seq, { version, content, editedAt: 1_700_000_000_100 + version, deleted: false }),
  });
  const deleted = (seq: number, version: number) => ({
    sessionId: "s-1",
    workspaceId: "demo",
    messageId: `m-${seq}`,
    seq,
    version,
    timestamp: 1,
  });
  type Change = { kind: "updated"; event: ReturnType<typeof updated> } | { kind: "deleted"; event: ReturnType<typeof deleted> };
  const apply = (store: MessageStore, change: Change) =>
    change.kind === "updated" ? store.applyUpdate(change.event) : store.applyDelete(change.event);

  it("applies an edit newer than what it holds, and ignores a late or repeated one", () => {
    const store = new MessageStore();
    store.putStored(msg(1, { version: 1 }));
    expect(store.applyUpdate(updated(1, 3, "third"))).toMatchObject({ content: "third", version: 3, editedAt: 1_700_000_000_103 });
    expect(store.applyUpdate(updated(1, 2, "second"))).toBeNull();
    expect(store.applyUpdate(updated(1, 3, "third"))).toBeNull();
    expect(store.get("m-1")).toMatchObject({ content: "third", version: 3 });
  });

  it("a history page older than an edit we hold does not roll it back", () => {
    const store = new MessageStore();
    store.putStored(msg(1));
    store.applyUpdate(updated(1, 2, "edited"));
    store.applyPage({ messages: [msg(1, { version: 1, content: "message 1" })], hasMore: false });
    expect(store.get("m-1")).toMatchObject({ content: "edited", version: 2 });
    store.applyPage({ messages: [msg(1, { version: 3, content: "newer" })], hasMore: false });
    expect(store.get("m-1")).toMatchObject({ content: "newer", version: 3 });
  });

  it("a deletion leaves a tombstone in its place; an older edit after it changes nothing", () => {
    const store = new MessageStore();
    store.putStored(msg(1, { contentType: "markdown", html: "<p>x</p>", metadata: { a: 1 } }));
    store.putStored(msg(2));
    expect(store.applyDelete(deleted(1, 3))).toMatchObject({ deleted: true, content: "", html: null, metadata: {}, version: 3, seq: 1 });
    expect(store.applyUpdate(updated(1, 2, "late edit"))).toBeNull();
    expect(store.list().map((m) => [m.id, m.deleted])).toEqual([
      ["m-1", true],
      ["m-2", false],
    ]);
  });

  it("ignores changes to messages it does not hold (history brings them as they are)", () => {
    const store = new MessageStore();
    expect(store.applyUpdate(updated(7, 2, "x"))).toBeNull();
    expect(store.applyDelete(deleted(7, 2))).toBeNull();
    expect(store.size).toBe(0);
  });

  it("every delivery order of the same changes, with repeats, converges on the newest", () => {
    const changes: Change[] = [
      { kind: "updated", event: updated(1, 2, "two") },
      { kind: "updated", event: updated(1, 3, "three") },
      { kind: "updated", event: updated(1, 4, "four") },
      { kind: "updated", event: updated(2, 2, "other two") },
      { kind: "deleted", event: deleted(2, 3) },
    ];
    const permutations = (items: Change[]): Change[][] =>
      items.length <= 1 ? [items] : items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
    const ends = new Set<string>();
    for (const order of permutations(changes)) {
      const store = new MessageStore();
      store.putStored(msg(1));
      store.putStored(msg(2));
      for (const change of [...order, order[0]!, order[order.length - 1]!]) apply(store, change);
      ends.add(JSON.stringify(store.list().map((m) => [m.id, m.version, m.content, m.deleted])));
    }
    expect([...ends]).toEqual([JSON.stringify([["m-1", 4, "four", false], ["m-2", 3, "", true]])]);
  });
});

import { describe, expect, it } from "vitest";

import type { ChatMessage, ReactionsUpdated } from "../src/events.js";
import { MessageStore } from "../src/store.js";
import { message } from "./fake-server.js";

const msg = (seq: number, fields: Record<string, unknown> = {}) => message(seq, fields) as ChatMessage;

/** A chat:reactions-updated for m-1: `pairs` are [emoji, users]. */
function updated(version: number, pairs: Array<[string, string[]]>): ReactionsUpdated {
  return {
    sessionId: "s-1",
    workspaceId: "demo",
    messageId: "m-1",
    seq: 1,
    reactions: pairs.map(([emoji, users]) => ({ emoji, count: users.length, users })),
    reactionsVersion: version,
    userId: "bob",
    emoji: "👍",
    added: true,
    timestamp: version,
  };
}

// Five changes by two people: the final state is version 5.
const changes = [
  updated(1, [["👍", ["bob"]]]),
  updated(2, [["👍", ["bob", "me"]]]),
  updated(3, [["👍", ["bob", "me"]], ["🎉", ["me"]]]),
  updated(4, [["👍", ["me"]], ["🎉", ["me"]]]),
  updated(5, [["🎉", ["me"]], ["👀", ["bob"]]]),
];

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

function storeWithMessage(): MessageStore {
  const store = new MessageStore();
  store.self = { userId: "me", userName: "me" };
  store.putStored(msg(1));
  return store;
}

describe("reactions", () => {
  it("end in the newest aggregate whatever order (and how often) the updates arrive", () => {
    for (const order of permutations(changes)) {
      const store = storeWithMessage();
      for (const change of [...order, ...order.slice(0, 2)]) store.applyReactions(change);
      const held = store.get("m-1")!.reactions;
      expect(held.version).toBe(5);
      expect(held.reactions.map((r) => [r.emoji, r.count, r.me])).toEqual([
        ["🎉", 1, true],
        ["👀", 1, false],
      ]);
    }
  });

  it("ignores an older or repeated update without changing the entry", () => {
    const store = storeWithMessage();
    expect(store.applyReactions(changes[2]!)).toBe(true);
    const entry = store.get("m-1");
    const revision = store.revision;
    expect(store.applyReactions(changes[2]!)).toBe(false);
    expect(store.applyReactions(changes[0]!)).toBe(false);
    expect(store.get("m-1")).toBe(entry);
    expect(store.revision).toBe(revision);
  });

  it("marks what I reacted with, from the listed users", () => {
    const store = storeWithMessage();
    store.applyReactions(changes[2]!);
    expect(store.get("m-1")!.reactions.reactions.map((r) => [r.emoji, r.me])).toEqual([
      ["👍", true],
      ["🎉", true],
    ]);
  });

  it("keeps an update that overtook its message, and a stale history copy never rolls it back", () => {
    const store = new MessageStore();
    store.self = { userId: "me", userName: "me" };
    store.applyReactions(changes[3]!);
    store.putStored(msg(1, { reactions: changes[1]!.reactions, reactionsVersion: 2 }));
    expect(store.get("m-1")!.reactions.version).toBe(4);
    store.putStored(msg(1, { reactions: changes[4]!.reactions, reactionsVersion: 5 }));
    expect(store.get("m-1")!.reactions.version).toBe(5);
    store.putStored(msg(1, { reactions: [], reactionsVersion: 0 }));
    expect(store.get("m-1")!.reactions.version).toBe(5);
  });
});

import { describe, expect, it } from "vitest";

import type { TypingIndicator } from "../src/events.js";
import { PresenceTracker } from "../src/presence.js";
import { presence } from "./fake-server.js";

const typing = (userId: string, isTyping: boolean, fields: Partial<TypingIndicator> = {}): TypingIndicator => ({
  sessionId: "s-1",
  userId,
  userName: userId,
  isTyping,
  timestamp: 1,
  ...fields,
});

describe("presence", () => {
  it("shows one entry per user with their most present socket, ourselves first", () => {
    const tracker = new PresenceTracker();
    tracker.selfId = "ann";
    tracker.put(presence("bob", "b1", "away") as any);
    tracker.put(presence("bob", "b2", "idle") as any);
    tracker.put(presence("ann", "a1", "away") as any);
    tracker.put(presence("cy", "c1") as any);
    expect(tracker.list().map((p) => [p.userId, p.status, p.self])).toEqual([
      ["ann", "away", true],
      ["cy", "active", false],
      ["bob", "idle", false],
    ]);
    expect(tracker.leave("bob", "b2")).toBe(false);
    expect(tracker.list().find((p) => p.userId === "bob")?.status).toBe("away");
    expect(tracker.leave("bob", "b1")).toBe(true);
    expect(tracker.list().map((p) => p.userId)).toEqual(["ann", "cy"]);
  });

  it("expires what a rejoin could not confirm after the TTL", () => {
    const tracker = new PresenceTracker();
    tracker.selfId = "ann";
    tracker.put(presence("ann", "a1") as any);
    tracker.put(presence("bob", "b1") as any);
    tracker.put(presence("cy", "c1") as any);
    tracker.markUnconfirmed(1_000);
    tracker.put(presence("ann", "a2") as any); // our new socket, from the join
    expect(tracker.nextExpiry(30_000)).toBe(31_000);
    tracker.confirmUser("bob"); // bob said something after our rejoin
    expect(tracker.expire(30_999, 30_000)).toBe(false);
    expect(tracker.expire(31_000, 30_000)).toBe(true);
    expect(tracker.list().map((p) => p.userId)).toEqual(["ann", "bob"]);
    expect(tracker.nextExpiry(30_000)).toBeNull();
    expect(tracker.leave("ann", "a2")).toBe(true); // the old socket a1 expired with the others
  });

  it("keeps a socket the server announces again after a rejoin", () => {
    const tracker = new PresenceTracker();
    tracker.put(presence("bob", "b1") as any);
    tracker.markUnconfirmed(0);
    tracker.put(presence("bob", "b1", "idle") as any);
    expect(tracker.expire(60_000, 30_000)).toBe(false);
    expect(tracker.list()[0]?.status).toBe("idle");
  });
});

describe("typing", () => {
  it("ends a typing state not renewed in time", () => {
    const tracker = new PresenceTracker(7_000);
    tracker.typing(typing("bob", true), 0);
    tracker.typing(typing("bob", true), 5_000); // renewed
    expect(tracker.expireTyping(11_999)).toBe(false);
    expect(tracker.typingList().map((t) => t.name)).toEqual(["bob"]);
    expect(tracker.nextTypingExpiry()).toBe(12_000);
    expect(tracker.expireTyping(12_000)).toBe(true);
    expect(tracker.typingList()).toEqual([]);
  });

  it("lists typers longest first, agents apart from users, never ourselves", () => {
    const tracker = new PresenceTracker();
    tracker.selfId = "ann";
    expect(tracker.typing(typing("ann", true), 0)).toBe(false);
    tracker.typing(typing("Echo agent", true, { senderType: "agent", agentId: "echo" }), 1);
    tracker.typing(typing("bob", true), 2);
    expect(tracker.typingList().map((t) => [t.name, t.agent])).toEqual([
      ["Echo agent", true],
      ["bob", false],
    ]);
    tracker.typing(typing("Echo agent", false, { senderType: "agent", agentId: "echo" }), 3);
    expect(tracker.typingList().map((t) => t.name)).toEqual(["bob"]);
  });

  it("stops a user's typing when their last socket leaves", () => {
    const tracker = new PresenceTracker();
    tracker.put(presence("bob", "b1") as any);
    tracker.typing(typing("bob", true), 0);
    tracker.leave("bob", "b1");
    expect(tracker.typingList()).toEqual([]);
  });
});

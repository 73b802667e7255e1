import { describe, expect, it } from "vitest";

import { ReadState } from "../src/readstate.js";

describe("read state", () => {
  it("starts from the server's count and adds what others write after it", () => {
    const read = new ReadState();
    read.ownPointer(3, 2, 5); // read to 3; 4 and 5 unread, counted up to 5
    expect([read.lastReadSeq, read.unreadCount]).toEqual([3, 2]);
    read.noteMessage(5); // already counted
    read.noteMessage(6);
    read.noteMessage(6); // a repeat
    expect(read.unreadCount).toBe(3);
    read.ownPointer(6, 0, 6);
    expect(read.unreadCount).toBe(0);
  });

  it("never moves back, whatever order pointers arrive in", () => {
    const orders = [
      [2, 5, 3],
      [5, 3, 2],
      [3, 2, 5, 5],
    ];
    for (const order of orders) {
      const read = new ReadState();
      for (const seq of order) {
        read.ownPointer(seq, 9 - seq, 9);
        read.receipt("ann", seq);
      }
      expect([read.lastReadSeq, read.unreadCount, read.readBy("ann")]).toEqual([5, 4, 5]);
      expect(read.receiptList()).toEqual({ ann: 5 });
    }
  });

  it("tells whether a receipt is news", () => {
    const read = new ReadState();
    expect(read.receipt("bob", 4)).toBe(true);
    expect(read.receipt("bob", 4)).toBe(false);
    expect(read.receipt("bob", 2)).toBe(false);
    expect(read.readBy("bob")).toBe(4);
  });
});

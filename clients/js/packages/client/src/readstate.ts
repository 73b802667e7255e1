/**
 * Read state of one session: how far we read, how much is unread, and how far each member read.
 *
 * Pure data.  The server is the truth: the join's `lastReadSeq` and
 * `unreadCount`, the acks of our `chat:mark-read`, and `chat:read-updated`
 * (ours from another device, and every member's for read receipts).
 * Pointers only move forward, so repeated or reordered updates converge.
 * Messages others send after the server's last count are added locally
 * until the next mark-read (docs/protocol.md, "Read state").
 */

export class ReadState {
  /** The seq we marked read (0: nothing). */
  lastReadSeq = 0;
  /** Unread messages as the server last counted them, up to `countedTo`. */
  private serverUnread = 0;
  private countedTo = 0;
  /** Seqs of messages from others received after `countedTo`. */
  private readonly later = new Set<number>();
  /** userId -> the highest seq they read (read receipts). */
  private readonly receipts = new Map<string, number>();

  get unreadCount(): number {
    let newer = 0;
    for (const seq of this.later) if (seq > this.lastReadSeq) newer += 1;
    return this.serverUnread + newer;
  }

  /** How far `userId` read (0: unknown). */
  readBy(userId: string): number {
    return this.receipts.get(userId) ?? 0;
  }

  /** Every member's pointer we heard of, as a plain object. */
  receiptList(): Record<string, number> {
    return Object.fromEntries(this.receipts);
  }

  /** The server's count for us: after a join, our mark-read's ack, or our `chat:read-updated`. */
  ownPointer(seq: number, unreadCount: number, countedTo: number): boolean {
    if (seq < this.lastReadSeq) return false;
    if (seq === this.lastReadSeq && countedTo <= this.countedTo && unreadCount === this.serverUnread) return false;
    this.lastReadSeq = seq;
    this.serverUnread = unreadCount;
    this.countedTo = Math.max(countedTo, seq);
    for (const later of [...this.later]) if (later <= this.countedTo) this.later.delete(later);
    return true;
  }

  /** A member's pointer moved (a receipt); true when it is news. */
  receipt(userId: string, seq: number): boolean {
    if (seq <= this.readBy(userId)) return false;
    this.receipts.set(userId, seq);
    return true;
  }

  /** A message from someone else arrived. */
  noteMessage(seq: number): boolean {
    if (seq <= this.countedTo || seq <= this.lastReadSeq || this.later.has(seq)) return false;
    this.later.add(seq);
    return true;
  }
}

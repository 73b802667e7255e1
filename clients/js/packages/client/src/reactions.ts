/**
 * A message's reactions as a view shows them: each emoji's count, who, and whether it is ours.
 *
 * The server sends a message's whole aggregate with a version
 * (`reactionsVersion`: one per change of that message's reactions) in
 * `chat:reactions-updated`, history pages and `chat:message-received`.  A
 * client keeps the aggregate with the highest version and ignores the rest,
 * so repeated, late or reordered events all end in the server's state
 * (docs/protocol.md, "Reactions").  "Reacted by me" is computed here from
 * the listed users, so one broadcast is right for every recipient.
 */

import type { Reaction } from "./events.generated.js";

export interface ReactionItem {
  readonly emoji: string;
  readonly count: number;
  /** Who reacted (userIds), the first ones the server lists. */
  readonly users: readonly string[];
  /** The current user reacted with this emoji. */
  readonly me: boolean;
}

export interface ReactionState {
  readonly reactions: readonly ReactionItem[];
  readonly version: number;
}

export const NO_REACTIONS: ReactionState = { reactions: [], version: 0 };

/** The server's aggregate, seen by `selfId`. */
export function reactionState(reactions: readonly Reaction[] | undefined, version: number | undefined, selfId: string | null): ReactionState {
  return {
    version: version ?? 0,
    reactions: (reactions ?? []).map((r) => ({ emoji: r.emoji, count: r.count, users: r.users, me: selfId !== null && r.users.includes(selfId) })),
  };
}

/** The state to keep: the newer of the two (the held one on a tie, so a repeat changes nothing). */
export function newer(held: ReactionState, incoming: ReactionState): ReactionState {
  return incoming.version > held.version ? incoming : held;
}

/** A small fixed palette for pickers. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"] as const;

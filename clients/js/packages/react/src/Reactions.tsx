/**
 * A message's reactions in <RealTimeChat>: one toggle per emoji (its count; pressed when it is ours)
 * and a small palette to add one.  Every control is a button (Tab, Enter, Space); emoji are text.
 */

import { type MessageItem, QUICK_REACTIONS } from "@chatserver/client";

export interface ReactionsProps {
  message: MessageItem;
  disabled: boolean;
  onToggle: (messageId: string, emoji: string) => Promise<unknown>;
}

export function Reactions({ message, disabled, onToggle }: ReactionsProps) {
  const { reactions } = message.reactions;
  return (
    <div className="rtc-reactions" role="group" aria-label="Reactions">
      {reactions.map((r) => (
        <button
          key={r.emoji}
          type="button"
          className="rtc-reaction"
          data-emoji={r.emoji}
          aria-pressed={r.me}
          aria-label={`${r.emoji} ${r.count}${r.me ? ", reacted by you" : ""}`}
          title={r.users.join(", ")}
          disabled={disabled}
          onClick={() => void onToggle(message.id, r.emoji)}
        >
          {r.emoji} {r.count}
        </button>
      ))}
      {!disabled && (
        <details className="rtc-reactions__add">
          <summary aria-label="Add a reaction">+</summary>
          {QUICK_REACTIONS.map((emoji) => (
            <button
              key={emoji}
              type="button"
              className="rtc-reaction rtc-reaction--quick"
              aria-label={`React with ${emoji}`}
              onClick={(event) => {
                event.currentTarget.closest("details")?.removeAttribute("open");
                void onToggle(message.id, emoji);
              }}
            >
              {emoji}
            </button>
          ))}
        </details>
      )}
    </div>
  );
}

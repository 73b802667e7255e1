/**
 * The controls of an agent's reply in <RealTimeChat>: "Stop" while it is being produced;
 * once stored, thumbs up / thumbs down (pressed when it is our rating; pressing it again
 * takes the rating back) and "Regenerate".  The server decides who may stop or regenerate
 * a reply (who wrote the message it answers, moderators): a refusal shows as the panel's error.
 *
 * Every control is a labelled <button> (Tab, Enter / Space).  "Regenerate" turns into
 * "Stop" while the new answer streams and back again: the focus follows to the partner
 * so a keyboard user does not lose their place.
 */

import type { MessageItem } from "@chatserver/client";
import { useEffect, useRef, useState } from "react";

export interface ReplyToolsProps {
  message: MessageItem;
  /** Requests cannot go out (not joined, or the session is closed). */
  disabled: boolean;
  onStop: (messageId: string) => Promise<unknown>;
  onRegenerate: (messageId: string) => Promise<unknown>;
  onRate: (messageId: string, rating: "up" | "down" | null) => Promise<unknown>;
}

type Action = "stop" | "regenerate" | "rate-up" | "rate-down";
const FOCUS_PARTNER: Partial<Record<Action, Action>> = { stop: "regenerate", regenerate: "stop" };

/** Thumb outlines (Feather icons, MIT), drawn so they show without an emoji font; the same as the widget's. */
const THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
const THUMB_DOWN =
  "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

const THUMBS = [
  { choice: "up", name: "Good reply", path: THUMB_UP },
  { choice: "down", name: "Bad reply", path: THUMB_DOWN },
] as const;

function Thumb({ path }: { path: string }) {
  return (
    <svg className="rtc-reply-tools__icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={path} />
    </svg>
  );
}

export function ReplyTools({ message, disabled, onStop, onRegenerate, onRate }: ReplyToolsProps) {
  const row = useRef<HTMLDivElement>(null);
  const focusWanted = useRef<Action | null>(null);
  const [rating, setRating] = useState(false);
  const streaming = message.state === "streaming" && !message.stream?.done;
  const stored = message.seq !== null && !message.deleted;

  // The focused control went away with the re-render: focus its partner once it is there.
  useEffect(() => {
    const wanted = focusWanted.current;
    if (!wanted || !row.current) return;
    const active = row.current.ownerDocument.activeElement;
    if (active && active !== row.current.ownerDocument.body && row.current.contains(active)) return;
    const target = row.current.querySelector<HTMLButtonElement>(`button[data-action="${wanted}"]`);
    if (target) {
      target.focus();
      focusWanted.current = null;
    }
  });

  const run = (action: Action, request: () => Promise<unknown>) => {
    focusWanted.current = FOCUS_PARTNER[action] ?? null;
    void request();
  };

  const rate = (choice: "up" | "down") => {
    if (rating) return;
    const next = message.feedback?.mine === choice ? null : choice;
    setRating(true);
    void onRate(message.id, next).finally(() => setRating(false));
  };

  if (message.senderType !== "agent" || (!streaming && !stored)) return null;
  const mine = message.feedback?.mine ?? null;
  // Counts are known once we rated (the ack carries them); the label says what the button shows.
  const label = (name: string, count: number) => (message.feedback ? `${name}, ${count}` : name);
  return (
    <div className="rtc-reply-tools" role="group" aria-label="Reply actions" ref={row}>
      {streaming ? (
        <button
          type="button"
          className="rtc-reply-tools__button"
          data-action="stop"
          aria-label="Stop the reply"
          disabled={disabled}
          onClick={() => run("stop", () => onStop(message.id))}
        >
          Stop
        </button>
      ) : (
        <>
          {THUMBS.map(({ choice, name, path }) => (
            <button
              key={choice}
              type="button"
              className="rtc-reply-tools__button"
              data-action={`rate-${choice}`}
              aria-label={label(name, message.feedback?.[choice] ?? 0)}
              aria-pressed={mine === choice}
              aria-busy={rating || undefined}
              disabled={disabled}
              onClick={() => rate(choice)}
            >
              <Thumb path={path} />
              {message.feedback ? message.feedback[choice] : null}
            </button>
          ))}
          <button
            type="button"
            className="rtc-reply-tools__button"
            data-action="regenerate"
            aria-label="Regenerate this reply"
            disabled={disabled}
            onClick={() => run("regenerate", () => onRegenerate(message.id))}
          >
            Regenerate
          </button>
        </>
      )}
    </div>
  );
}

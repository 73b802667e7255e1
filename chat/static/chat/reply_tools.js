/**
 * The controls under an agent's reply: thumbs up / down (pressed state), "Regenerate", and "Stop"
 * while it streams; and which version of the reply is shown.
 *
 * Pure rendering: buttons carry `data-action` (one of REPLY_ACTIONS) and the view dispatches them
 * to the room (session.js `stopReply`, `regenerate`, `rate`).  Every button is a real <button> with
 * a label, so the row works from the keyboard alone (Tab, Enter / Space), and the view keeps focus
 * on the same control when the reply re-renders.
 */

import { MessageState } from "./store.js";

export const REPLY_ACTIONS = new Set(["stop", "regenerate", "rate-up", "rate-down", "version-prev", "version-next"]);
/** Where the focus goes when its control disappears: "Regenerate" turns into "Stop" while the new answer streams. */
export const FOCUS_PARTNER = { stop: "regenerate", regenerate: "stop" };

const SVG = "http://www.w3.org/2000/svg";
/** Thumb outlines (Feather icons, MIT): drawn, so they show without an emoji font. */
const THUMB_UP = "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
const THUMB_DOWN = "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

function icon(path) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "reply-tools__icon");
  const shape = document.createElementNS(SVG, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

function button(action, text, label, extra = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "msg__action reply-tools__button";
  b.dataset.action = action;
  b.textContent = text;
  b.setAttribute("aria-label", label);
  for (const [name, value] of Object.entries(extra)) b.setAttribute(name, value);
  return b;
}

/**
 * The row for `item` (null for anything but an agent's reply).  `canSteer`: may this user stop or
 * regenerate it (they wrote the message it answers, or moderate); the server checks it again.
 */
export function replyTools(item, { canSteer, position = null }) {
  if (item.senderType !== "agent") return null;
  const row = document.createElement("div");
  row.className = "reply-tools";
  row.setAttribute("role", "group");
  row.setAttribute("aria-label", "Reply actions");
  const streaming = item.state === MessageState.STREAMING && !item.streamDone;
  if (streaming) {
    if (canSteer) row.append(button("stop", "Stop", "Stop this reply"));
  } else if (item.seq != null) {
    const mine = item.feedback?.mine ?? null;
    // Counts are known once we rated (the ack carries them); the label says what the button shows.
    const count = (n) => (item.feedback ? String(n) : "");
    const label = (name, n) => (item.feedback ? `${name}, ${n}` : name);
    const { up: ups = 0, down: downs = 0 } = item.feedback ?? {};
    const up = button("rate-up", count(ups), label("Good reply", ups), { "aria-pressed": String(mine === "up") });
    const down = button("rate-down", count(downs), label("Bad reply", downs), { "aria-pressed": String(mine === "down") });
    up.prepend(icon(THUMB_UP));
    down.prepend(icon(THUMB_DOWN));
    row.append(up, down);
    if (canSteer) row.append(button("regenerate", "Regenerate", "Regenerate this reply"));
  }
  if (item.seq != null && item.metadata?.cancelled === true) {
    row.append(Object.assign(document.createElement("span"), { className: "reply-tools__note", textContent: "Stopped" }));
  }
  const version = item.regenVersion ?? item.version ?? 1;
  if (position) {
    // Earlier versions can be browsed: previous / "2/3" / next.  At either end the button says so
    // (aria-disabled) but keeps its place and the focus.
    const at = (action, text, label, off) => {
      const b = button(action, text, label);
      b.classList.add("reply-tools__step");
      if (off) b.setAttribute("aria-disabled", "true");
      return b;
    };
    const where = document.createElement("span");
    where.className = "reply-tools__version";
    where.textContent = `${position.shown}/${position.total}`;
    where.setAttribute("aria-live", "polite");
    row.append(
      at("version-prev", "‹", "Previous version", position.shown <= 1),
      where,
      at("version-next", "›", "Next version", position.shown >= position.total),
    );
  } else if (version > 1) {
    const label = document.createElement("span");
    label.className = "reply-tools__version";
    label.textContent = `Version ${version}`;
    row.append(label);
  }
  return row.childElementCount ? row : null;
}

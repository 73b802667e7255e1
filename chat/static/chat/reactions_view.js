/**
 * Reactions under a message: one toggle button per emoji (its count; pressed when it is ours),
 * and the picker that adds one -- a small fixed palette plus a field for any emoji typed.
 *
 * Pure DOM helpers for view.js, which routes the clicks (`data-action` "react",
 * "react-picker") to `ChatRoom.toggleReaction`.  Everything is a real button or
 * form control: reachable with Tab, pressed with Enter or Space; Escape closes
 * the picker and gives focus back to the button that opened it.  Emoji and
 * names are set as text, never as HTML.
 */

export const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function who(users, count, selfId) {
  const names = users.map((user) => (user === selfId ? "you" : user));
  const more = count - names.length;
  return more > 0 ? `${names.join(", ")} and ${more} more` : names.join(", ");
}

/** The reaction bar of a stored message: its reactions and the "add" button. */
export function reactionBar(item, selfId, { canReact }) {
  const bar = el("div", "reactions");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Reactions");
  for (const reaction of item.reactions) {
    const mine = selfId != null && reaction.users.includes(selfId);
    const button = el("button", `reaction${mine ? " reaction--mine" : ""}`);
    button.type = "button";
    button.dataset.action = "react";
    button.dataset.emoji = reaction.emoji;
    button.disabled = !canReact;
    button.setAttribute("aria-pressed", String(mine));
    button.title = `${reaction.emoji} by ${who(reaction.users, reaction.count, selfId)}`;
    button.setAttribute("aria-label", `${reaction.emoji} ${reaction.count}${mine ? ", reacted by you" : ""}`);
    button.append(el("span", "reaction__emoji", reaction.emoji), el("span", "reaction__count", String(reaction.count)));
    bar.append(button);
  }
  if (canReact) {
    const add = el("button", "reaction reaction--add", "+");
    add.type = "button";
    add.dataset.action = "react-picker";
    add.setAttribute("aria-label", "Add a reaction");
    add.setAttribute("aria-haspopup", "dialog");
    add.setAttribute("aria-expanded", "false");
    bar.append(add);
  }
  return bar;
}

/** Open the picker next to `opener`; `onPick(emoji)` is called with the chosen one. */
export function openPicker(opener, onPick) {
  closePickers();
  const picker = el("div", "reaction-picker");
  picker.setAttribute("role", "dialog");
  picker.setAttribute("aria-label", "Choose a reaction");
  const close = () => {
    picker.remove();
    opener.setAttribute("aria-expanded", "false");
    opener.focus();
  };
  const pick = (emoji) => {
    close();
    onPick(emoji);
  };
  for (const emoji of PALETTE) {
    const button = el("button", "reaction-picker__emoji", emoji);
    button.type = "button";
    button.setAttribute("aria-label", `React with ${emoji}`);
    button.addEventListener("click", () => pick(emoji));
    picker.append(button);
  }
  const form = el("form", "reaction-picker__form");
  const input = el("input", "reaction-picker__input");
  input.type = "text";
  input.maxLength = 32;
  input.setAttribute("aria-label", "Or type an emoji");
  input.placeholder = "Type an emoji";
  const submit = el("button", "reaction-picker__add", "Add");
  submit.type = "submit";
  form.append(input, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const emoji = input.value.trim();
    if (emoji) pick(emoji);
  });
  picker.append(form);
  picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
  opener.after(picker);
  opener.setAttribute("aria-expanded", "true");
  picker.querySelector("button")?.focus();
  return picker;
}

export function closePickers(root = document) {
  for (const picker of root.querySelectorAll(".reaction-picker")) picker.remove();
}

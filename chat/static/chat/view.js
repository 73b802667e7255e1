/**
 * The chat panel's DOM (templates/chat/_chat_panel.html), kept in step with a ChatRoom.
 *
 * Messages are keyed by id: a change re-renders only the entries whose
 * `rev` moved, and entries are moved (never recreated) when a seq puts
 * them in a new place.  Renders are batched per animation frame.  Message
 * bodies come from message_body.js: text as text, markdown as the server's HTML.
 *
 * Accessibility: the message region is focusable (keyboard scrolling), new
 * messages from others are read out by a polite live region (not the
 * history loaded above them), errors use role="alert", the connection
 * banner role="status"; every control has a label.
 */

import { ConnectionState } from "./connection.js";
import { renderAttachments } from "./attachments.js";
import { copyCode, renderBody } from "./message_body.js";
import { openPicker, reactionBar } from "./reactions_view.js";
import { FOCUS_PARTNER, REPLY_ACTIONS, replyTools } from "./reply_tools.js";
import { VersionBrowser } from "./versions.js";
import { renderSteps, stepsOf } from "./steps.js";
import { MessageState } from "./store.js";

const NEAR_BOTTOM_PX = 48;
const LOAD_OLDER_WITHIN_PX = 160;
const GROUP_WITHIN_MS = 5 * 60 * 1000;
const RECONNECTED_FLASH_MS = 2_500;
const MAX_ANNOUNCEMENTS = 5;
/** Errors after which sending the same message again can succeed (others offer "Edit" too). */
const RETRY_HELPS = new Set(["rate_limited", "internal", "timeout", "not_joined"]);
const AVATAR_COLORS = ["#1d4ed8", "#7c3aed", "#be185d", "#b45309", "#047857", "#0f766e", "#9333ea", "#c2410c"];

const ERROR_TEXT = {
  rate_limited: () => "You're sending messages too quickly.",
  message_too_long: (e) => `That message is too long${e.maxLength ? ` (at most ${e.maxLength} characters)` : ""}.`,
  session_closed: () => "This conversation is closed.",
  forbidden: () => "You don't have access to this conversation.",
  not_a_member: () => "You're not a member of this workspace.",
  agent_not_found: () => "That agent doesn't exist in this workspace.",
  internal: () => "Something went wrong on the server. Try again.",
  timeout: () => "The server did not answer in time.",
  muted: (e) =>
    `A moderator muted you in this workspace${e.mutedUntil ? ` until ${new Date(e.mutedUntil).toLocaleString()}` : ""}.`,
  banned: () => "You are banned from this workspace.",
  message_blocked: () => "This workspace does not accept messages that look like code injection.",
  invalid_emoji: () => "A reaction is a single emoji.",
  reaction_emoji_limit: (e) => `This message already has ${e.limit ?? "too many"} different reactions.`,
  reaction_user_limit: (e) => `You can add at most ${e.limit ?? "a few"} reactions to one message.`,
  agent_run_active: () => "The agent is already answering that message.",
  agent_run_finished: () => "That reply has already finished.",
  not_author: () => "Only the author can change this message.",
  edit_window_closed: () => "This message can no longer be edited or deleted.",
  version_conflict: () => "This message changed meanwhile; edit it again.",
  message_deleted: () => "This message was deleted.",
  message_not_found: () => "That message no longer exists.",
  too_many_edits: () => "This message has been edited too many times.",
  spam_detected: (e) =>
    e.reason === "repeated_message" ? "You already sent that message several times." : "That message looks like spam.",
};

export function describeError(error) {
  if (!error) return "";
  const text = ERROR_TEXT[error.code];
  return text ? text(error) : error.message || "Something went wrong.";
}

function secondsLeft(until) {
  return Math.max(0, Math.ceil((until - Date.now()) / 1000));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function initials(name) {
  const parts = String(name || "?").trim().split(/[\s._-]+/).filter(Boolean);
  return ((parts[0]?.[0] ?? "?") + (parts[1]?.[0] ?? "")).toUpperCase();
}

function avatarColor(name) {
  let hash = 0;
  for (const char of String(name)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return AVATAR_COLORS[hash % AVATAR_COLORS.length];
}

function timeLabel(timestamp) {
  const date = new Date(timestamp);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

/** "A is typing", "A and B are typing", "A, B and C are typing", "A, B and 3 others are typing". */
export function typingText(typers) {
  const names = typers.map((t) => t.name);
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
}

export class ChatView {
  /**
   * @param {HTMLElement} root the [data-chat-panel] element
   * @param {object} options
   * @param {import("./connection.js").Connection} options.connection
   * @param {() => boolean} [options.canModerate] show "Hide" on messages
   * @param {(id: string) => Promise<void>} [options.onHide]
   * @param {(id: string) => Promise<object>} [options.fetchVersions] a reply's earlier versions (REST), to browse them
   * @param {{upload: (file: File, onProgress: (f: number) => void) => Promise<object>,
   *          links: import("./attachments.js").AttachmentLinks}} [options.attachments]
   *   uploads and download links; without it there is no attach button
   */
  constructor(
    root,
    { connection, canModerate = () => false, onHide = null, attachments = null, fetchVersions = null } = {},
  ) {
    this.root = root;
    this.connection = connection;
    this.canModerate = canModerate;
    this.onHide = onHide;
    this.versions = new VersionBrowser(fetchVersions);
    this.attachments = attachments;
    this._uploaded = [];
    this._uploading = 0;
    this.room = null;
    this.elements = new Map();
    this._frame = 0;
    this._pending = {};
    this._unseen = 0;
    this._countdown = null;
    this._flashTimer = null;
    /** The id of the message being edited in place, or null. */
    this._editing = null;
    const q = (name) => root.querySelector(`[data-${name}]`);
    this.dom = {
      title: q("chat-title"),
      subtitle: q("chat-subtitle"),
      presence: q("presence"),
      presenceSummary: q("presence-summary"),
      presenceDots: q("presence-dots"),
      presenceList: q("presence-list"),
      banner: q("connection-banner"),
      bannerText: q("connection-text"),
      bannerRetry: q("connection-retry"),
      bannerLogin: q("connection-login"),
      error: q("error"),
      errorText: q("error-text"),
      errorDismiss: q("error-dismiss"),
      scroller: q("scroller"),
      loadOlder: q("load-older"),
      historyStatus: q("history-status"),
      list: q("message-list"),
      jump: q("jump"),
      typing: q("typing"),
      typingText: q("typing-text"),
      closedNote: q("closed-note"),
      composer: q("composer"),
      input: q("composer-input"),
      send: q("send"),
      attach: q("attach"),
      attachInput: q("attach-input"),
      uploads: q("uploads"),
      uploadProgress: q("upload-progress"),
      uploadList: q("upload-list"),
      hint: q("composer-hint"),
      announcer: q("announcer"),
    };
    this._defaultHint = this.dom.hint.textContent;
    this._bindDom();
    this._onConnectionState = (event) => this._renderConnection(event.detail);
    connection.addEventListener("state", this._onConnectionState);
    this._renderConnection({ state: connection.state, ...connection.detail });
  }

  // --- wiring ---------------------------------------------------------------------------

  _bindDom() {
    const { input, composer, scroller, loadOlder, jump, errorDismiss, bannerRetry, list } = this.dom;
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      this._autosize();
      this.room?.noteInput(input.value);
      this._renderComposer();
    });
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.room || !this._canSend() || this._uploading) return;
      const item = this.room.send(input.value, this._uploaded);
      if (item) {
        input.value = "";
        this._uploaded = [];
        this._renderUploads();
        this._autosize();
        this._pending.own = true;
        this._renderComposer();
      }
      input.focus();
    });
    if (this.attachments) this._bindAttachments();
    scroller.addEventListener("scroll", () => this._onScroll(), { passive: true });
    loadOlder.addEventListener("click", () => this.room?.loadOlder());
    jump.addEventListener("click", () => {
      this._scrollToBottom();
      input.focus();
    });
    errorDismiss.addEventListener("click", () => {
      this.room?.dismissError();
      input.focus();
    });
    bannerRetry.addEventListener("click", () => this.connection.retryNow());
    document.addEventListener("visibilitychange", () => this._markRead());
    list.addEventListener("submit", (event) => {
      const form = event.target.closest("form[data-edit-form]");
      if (!form) return;
      event.preventDefault();
      this._saveEdit(form);
    });
    list.addEventListener("keydown", (event) => {
      const form = event.target.closest?.("form[data-edit-form]");
      if (!form) return;
      if (event.key === "Escape") {
        event.preventDefault();
        this._stopEdit(true);
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || !this.room) return;
      if (button.dataset.action === "copy-code") {
        copyCode(button);
        return;
      }
      const id = button.closest("[data-id]")?.dataset.id;
      if (!id) return;
      if (REPLY_ACTIONS.has(button.dataset.action)) {
        this._replyAction(id, button.dataset.action); // focus stays on the control
        return;
      }
      if (button.dataset.action === "edit-message") return this._startEdit(id);
      if (button.dataset.action === "cancel-edit") return this._stopEdit(true);
      if (button.dataset.action === "delete-message") return this._delete(id, button);
      if (button.dataset.action === "retry") this.room.retry(id);
      else if (button.dataset.action === "discard") this.room.discard(id);
      else if (button.dataset.action === "edit") {
        const item = this.room.store.get(id);
        if (item) {
          input.value = item.content;
          this._autosize();
          this.room.discard(id);
          this._renderComposer();
        }
      }
      else if (button.dataset.action === "hide") this._hide(id, button);
      else if (button.dataset.action === "react") {
        this.room.toggleReaction(id, button.dataset.emoji);
        return; // keep the focus on the reaction
      } else if (button.dataset.action === "react-picker") {
        const room = this.room;
        openPicker(button, (emoji) => room.toggleReaction(id, emoji));
        return;
      }
      input.focus();
    });
  }

  /** Show `room` (null: nothing).  The previous room is left to its owner to stop. */
  bind(room) {
    if (this.room) {
      this.room.removeEventListener("change", this._onChange);
      this.room.removeEventListener("announce", this._onAnnounce);
    }
    for (const element of this.elements.values()) element.remove();
    this.elements.clear();
    this._unseen = 0;
    this.room = room;
    this._editing = null;
    this.dom.input.value = "";
    this._autosize();
    if (!room) return;
    this._onChange = (event) => this._schedule(event.detail);
    this._onAnnounce = (event) => this.announce(event.detail.text);
    room.addEventListener("change", this._onChange);
    room.addEventListener("announce", this._onAnnounce);
    this._pending = { initial: true };
    this.render();
  }

  setTitle(title, subtitle = "") {
    this.dom.title.textContent = title;
    this.dom.subtitle.textContent = subtitle;
  }

  focusComposer() {
    this.dom.input.focus();
  }

  announce(text) {
    if (!text) return;
    const line = el("p", null, text);
    this.dom.announcer.append(line);
    while (this.dom.announcer.childElementCount > MAX_ANNOUNCEMENTS) this.dom.announcer.firstElementChild.remove();
  }

  // --- rendering --------------------------------------------------------------------------

  _schedule(detail = {}) {
    const p = this._pending;
    if (detail.kind === "history" && detail.older) p.older = true;
    if (detail.kind === "history" && detail.initial) p.initial = true;
    if (detail.incoming) p.incoming = (p.incoming ?? 0) + 1;
    if (detail.own) p.own = true;
    if (!this._frame) this._frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this._frame = 0;
    const pending = this._pending;
    this._pending = {};
    const room = this.room;
    if (!room) return;
    const { scroller } = this.dom;
    const wasNearBottom = this._nearBottom();
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;

    this._renderMessages();
    this._renderHistoryStatus();
    this._renderTyping();
    this._renderPresence();
    this._renderError();
    this._renderComposer();
    this._tickCountdown();

    if (pending.initial || pending.own || (wasNearBottom && !pending.older)) {
      this._scrollToBottom();
    } else if (pending.older) {
      scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep what was on screen in place
    } else if (pending.incoming) {
      this._unseen += pending.incoming;
      this._renderJump();
    }
    if (this._nearTop() && room.hasOlder && !room.loadingOlder && room.initialLoaded) room.loadOlder();
    this._markRead();
  }

  /** The newest messages are on screen in a visible page: tell the server we read them. */
  _markRead() {
    if (this.room?.initialLoaded && document.visibilityState === "visible" && this._nearBottom()) this.room.markRead();
  }

  _renderMessages() {
    const items = this.room.store.list();
    const { list } = this.dom;
    const keep = new Set(items.map((item) => item.id));
    for (const [id, element] of this.elements) {
      if (!keep.has(id)) {
        element.remove();
        this.elements.delete(id);
      }
    }
    const moderator = this.canModerate();
    const blockedFor = this.room.sendBlocked ? secondsLeft(this.room.sendBlockedUntil) : 0;
    let cursor = list.firstElementChild;
    let previous = null;
    for (const item of items) {
      let element = this.elements.get(item.id);
      if (!element) {
        element = el("li");
        element.dataset.id = item.id;
        this.elements.set(item.id, element);
      }
      const continued =
        previous != null &&
        previous.senderType === item.senderType &&
        previous.userName === item.userName &&
        item.senderType !== "system" &&
        Math.abs(item.timestamp - previous.timestamp) < GROUP_WITHIN_MS;
      const editing = this._editing === item.id;
      const shown = this.versions.position(item)?.shown ?? "";
      const reactable = this.room.joined && !this.room.closed;
      const key = `${item.rev}|${continued}|${moderator}|${editing}|${reactable}|${item.state === MessageState.FAILED ? blockedFor : ""}|${shown}`;
      if (element._key !== key) {
        // Re-rendering replaces the entry's buttons: keep the keyboard focus on the same control.
        const focused = element.contains(document.activeElement) ? document.activeElement.dataset?.action : null;
        this._fillMessage(element, item, continued, moderator, blockedFor);
        element._key = key;
        if (focused) {
          const again = (action) => (action ? element.querySelector(`button[data-action="${action}"]`) : null);
          (again(focused) ?? again(FOCUS_PARTNER[focused]) ?? element.querySelector("button"))?.focus();
        }
      }
      if (element !== cursor) list.insertBefore(element, cursor);
      else cursor = cursor.nextElementSibling;
      previous = item;
    }
  }

  _bindAttachments() {
    const { attach, attachInput, uploadList } = this.dom;
    attach.hidden = false;
    attach.addEventListener("click", () => attachInput.click());
    attachInput.addEventListener("change", () => {
      const [file] = attachInput.files;
      attachInput.value = "";
      if (file) void this._upload(file);
    });
    uploadList.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-remove]");
      if (!button) return;
      this._uploaded = this._uploaded.filter((attachment) => attachment.id !== button.dataset.remove);
      this._renderUploads();
      this.dom.input.focus();
    });
  }

  async _upload(file) {
    const { uploadProgress } = this.dom;
    this._uploading += 1;
    uploadProgress.value = 0;
    this._renderUploads();
    try {
      const attachment = await this.attachments.upload(file, (fraction) => {
        uploadProgress.value = fraction;
      });
      this._uploaded = [...this._uploaded, attachment];
      this.announce(`${attachment.name} is ready to send.`);
    } catch (error) {
      this.announce(`${file.name} could not be uploaded: ${error.message}`);
      this.dom.errorText.textContent = `${file.name}: ${error.message}`;
      this.dom.error.hidden = false;
    } finally {
      this._uploading -= 1;
      this._renderUploads();
      this._renderComposer();
    }
  }

  _renderUploads() {
    const { uploads, uploadProgress, uploadList } = this.dom;
    uploads.hidden = !this._uploading && !this._uploaded.length;
    uploadProgress.hidden = !this._uploading;
    uploadList.replaceChildren(
      ...this._uploaded.map((attachment) => {
        const entry = el("li", "composer__file", attachment.name);
        entry.dataset.attachmentId = attachment.id;
        const remove = el("button", "composer__remove", "×");
        remove.type = "button";
        remove.dataset.remove = attachment.id;
        remove.setAttribute("aria-label", `Remove ${attachment.name}`);
        entry.append(remove);
        return entry;
      }),
    );
  }

  _fillMessage(li, item, continued, moderator, blockedFor) {
    const kind = item.senderType === "system" ? "system" : item.mine ? "mine" : item.senderType === "agent" ? "agent" : "other";
    li.className = `msg msg--${kind}${continued ? " msg--continued" : ""} msg--${item.state}`;
    li.dataset.state = item.state;
    li.dataset.senderType = item.senderType;
    if (item.seq != null) li.dataset.seq = String(item.seq);
    else delete li.dataset.seq;
    // Steps stay open, and a focused step keeps focus, while the reply re-renders chunk by chunk.
    const openSteps = new Set([...li.querySelectorAll("details[open]")].map((d) => d.dataset.stepKey));
    const focused = li.ownerDocument.activeElement?.closest?.("details")?.dataset.stepKey;
    const hadFocus = focused != null && li.contains(li.ownerDocument.activeElement);
    li.replaceChildren();

    if (kind !== "mine" && kind !== "system") {
      const avatar = el("span", "msg__avatar", initials(item.userName));
      avatar.setAttribute("aria-hidden", "true");
      avatar.style.backgroundColor = avatarColor(item.userName);
      li.append(avatar);
    }
    const main = el("div", "msg__main");
    const meta = el("p", "msg__meta");
    meta.append(el("span", "msg__author", kind === "mine" ? "You" : item.userName || "Someone"));
    if (item.senderType === "agent") meta.append(el("span", "msg__tag", "Agent"));
    const time = el("time", "msg__time", timeLabel(item.timestamp));
    time.dateTime = new Date(item.timestamp).toISOString();
    time.title = new Date(item.timestamp).toLocaleString();
    meta.append(time);
    if (moderator && item.seq != null && item.senderType !== "system") {
      const hide = el("button", "msg__tool", "Hide");
      hide.type = "button";
      hide.dataset.action = "hide";
      hide.setAttribute("aria-label", `Hide message from ${item.userName || "someone"}`);
      meta.append(hide);
    }
    main.append(meta);

    if (item.deleted) li.classList.add("msg--deleted");
    if (this._editing === item.id && !item.deleted) {
      main.append(this._editForm(item));
      li.append(main);
      return;
    }
    const bubble = el("div", "msg__bubble");
    // An earlier version being browsed (versions.js) is shown whole: its text and its steps.
    const earlier = this.versions.shownVersion(item);
    const shown = earlier ? { ...earlier, state: MessageState.STORED } : item;
    const steps = stepsOf(shown);
    if (steps.length) {
      const list = el("div", "msg__steps");
      list.setAttribute("role", "group");
      list.setAttribute("aria-label", "Agent steps");
      renderSteps(list, steps, openSteps);
      bubble.append(list);
    }
    const body = el("div", "msg__body");
    if (item.deleted) body.append(el("p", "msg__tombstone", "This message was deleted."));
    else renderBody(body, shown);
    li.dataset.version = String(earlier?.version ?? item.version ?? 1); // the version on screen
    bubble.append(body);
    if (item.attachments?.length) renderAttachments(bubble, item.attachments, this.attachments?.links ?? null);
    if (item.state === MessageState.STREAMING) {
      bubble.setAttribute("aria-busy", "true");
      const caret = el("span", "msg__caret");
      caret.setAttribute("aria-hidden", "true");
      if (!item.streamDone) (body.lastElementChild ?? body).append(caret);
    }
    main.append(bubble);
    const changes = this._changesLine(item, moderator);
    if (changes) main.append(changes);

    if (item.seq != null && item.senderType !== "system" && (item.reactions.length || this.room.joined)) {
      main.append(reactionBar(item, this.room.store.self.userId, { canReact: this.room.joined && !this.room.closed }));
    }
    const status = this._statusLine(item, blockedFor);
    if (status) main.append(status);
    const inReplyTo = item.metadata?.inReplyTo;
    const canSteer = moderator || Boolean(inReplyTo && this.room.store.get(inReplyTo)?.mine);
    const tools = replyTools(item, { canSteer, position: this.versions.position(item) });
    if (tools) main.append(tools);
    li.append(main);
    if (hadFocus) li.querySelector(`details[data-step-key="${CSS.escape(focused)}"] > summary`)?.focus();
  }

  /** "(edited)", and Edit / Delete on our own stored messages (Delete on any, for moderators). */
  _changesLine(item, moderator) {
    if (item.seq == null || item.deleted || item.state === MessageState.STREAMING) return null;
    const line = el("p", "msg__changes");
    if (item.editedAt) {
      const edited = el("span", "msg__edited", "(edited)");
      edited.title = `Edited ${new Date(item.editedAt).toLocaleString()}`;
      line.append(edited);
    }
    const tool = (action, text, label) => {
      const b = el("button", "msg__tool", text);
      b.type = "button";
      b.dataset.action = action;
      b.setAttribute("aria-label", label);
      line.append(b);
    };
    const own = item.mine && item.senderType === "user";
    if (own) tool("edit-message", "Edit", "Edit your message");
    if (own || (moderator && item.senderType !== "system")) {
      tool("delete-message", "Delete", own ? "Delete your message" : `Delete message from ${item.userName || "someone"}`);
    }
    return line.childElementCount ? line : null;
  }

  _editForm(item) {
    const form = el("form", "msg__edit");
    form.dataset.editForm = "";
    const box = el("textarea", "msg__edit-input");
    box.value = item.content;
    box.rows = Math.min(8, Math.max(2, item.content.split("\n").length));
    box.setAttribute("aria-label", "Edit your message (Enter saves, Escape cancels)");
    const save = el("button", "msg__action", "Save");
    save.type = "submit";
    const cancel = el("button", "msg__action", "Cancel");
    cancel.type = "button";
    cancel.dataset.action = "cancel-edit";
    const actions = el("span", "msg__actions");
    actions.append(save, cancel);
    form.append(box, actions);
    return form;
  }

  _startEdit(id) {
    const item = this.room?.store.get(id);
    if (!item || !item.mine || item.deleted) return;
    this._editing = id;
    this._renderMessages();
    const box = this.elements.get(id)?.querySelector("textarea");
    if (box) {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  }

  _stopEdit(refocus) {
    const id = this._editing;
    this._editing = null;
    if (!this.room) return;
    this._renderMessages();
    if (refocus) (this.elements.get(id)?.querySelector('[data-action="edit-message"]') ?? this.dom.input).focus();
  }

  async _saveEdit(form) {
    const id = this._editing;
    const box = form.querySelector("textarea");
    const item = id && this.room?.store.get(id);
    if (!item || !box) return;
    if (!box.value.trim() || box.value === item.content) return this._stopEdit(true);
    for (const control of form.elements) control.disabled = true;
    const saved = await this.room.editMessage(id, box.value);
    if (saved) return this._stopEdit(true);
    for (const control of form.elements) control.disabled = false;
    box.focus();
  }

  async _delete(id, button) {
    button.disabled = true;
    const deleted = await this.room.deleteMessage(id);
    if (!deleted) button.disabled = false;
    this.dom.input.focus();
  }

  _statusLine(item, blockedFor) {
    const line = el("p", "msg__status");
    switch (item.state) {
      case MessageState.PENDING:
        line.textContent = item.queued ? "Waiting for connection…" : "Sending…";
        return line;
      case MessageState.SENT:
        line.append(el("span", "msg__check", "✓"), " Sent");
        line.firstChild.setAttribute("aria-hidden", "true");
        return line;
      case MessageState.FAILED: {
        line.classList.add("msg__status--failed");
        line.append(el("span", "msg__error", `Not sent: ${describeError(item.error)}`));
        const actions = el("span", "msg__actions");
        const button = (action, text, label) => {
          const b = el("button", "msg__action", text);
          b.type = "button";
          b.dataset.action = action;
          if (label) b.setAttribute("aria-label", label);
          actions.append(b);
          return b;
        };
        const retry = button("retry", blockedFor ? `Retry in ${blockedFor} s` : "Retry");
        retry.disabled = blockedFor > 0;
        if (!RETRY_HELPS.has(item.error?.code)) button("edit", "Edit", "Edit this message");
        button("discard", "Discard", "Discard this message");
        line.append(actions);
        return line;
      }
      case MessageState.STREAMING:
        if (item.streamError) line.textContent = "The agent could not finish this reply.";
        else if (item.cancelled) line.textContent = "Reply cancelled.";
        else if (item.interrupted) line.textContent = "Connection interrupted: the full reply will appear when it is stored.";
        else return null;
        return line;
      default:
        return null;
    }
  }

  _renderHistoryStatus() {
    const room = this.room;
    const { loadOlder, historyStatus } = this.dom;
    loadOlder.hidden = !(room.initialLoaded && room.hasOlder) || room.loadingOlder;
    let text = "";
    if (room.loadingOlder || (room.status === "joining" && !room.initialLoaded)) text = "Loading messages…";
    else if (room.initialLoaded && !room.hasOlder) {
      text = room.store.size ? "This is the beginning of the conversation." : "No messages yet. Say hello!";
    }
    historyStatus.textContent = text;
  }

  _renderTyping() {
    const text = typingText(this.room.typers());
    this.dom.typingText.textContent = text;
    this.dom.typing.classList.toggle("typing--on", Boolean(text));
  }

  _renderPresence() {
    const people = this.room.people();
    const { presenceList, presenceSummary, presenceDots } = this.dom;
    presenceList.replaceChildren(
      ...people.map((person) => {
        const li = el("li", "presence__item");
        li.dataset.user = person.userId;
        li.dataset.status = person.status;
        const dot = el("span", `dot dot--${person.status}`);
        dot.setAttribute("aria-hidden", "true");
        li.append(dot, el("span", "presence__name", person.self ? `${person.userName} (you)` : person.userName));
        li.append(" ", el("span", "presence__status", person.status));
        return li;
      }),
    );
    presenceSummary.textContent = people.length === 0 ? "Nobody here yet" : `${people.length} here`;
    presenceDots.replaceChildren(...people.slice(0, 4).map((p) => el("span", `dot dot--${p.status}`)));
  }

  _renderError() {
    const error = this.room?.error;
    const { error: box, errorText, errorDismiss } = this.dom;
    if (!error) {
      box.classList.remove("alert--on");
      errorText.textContent = "";
      errorDismiss.hidden = true;
      return;
    }
    let text = describeError(error);
    if (error.code === "rate_limited" && this.room.sendBlocked) {
      text += ` You can send again in ${secondsLeft(this.room.sendBlockedUntil)} s.`;
    } else if (error.code === "rate_limited") {
      text += " You can send again now.";
    }
    box.classList.add("alert--on");
    box.dataset.code = error.code;
    if (errorText.textContent !== text) errorText.textContent = text;
    errorDismiss.hidden = false;
  }

  _canSend() {
    const room = this.room;
    return Boolean(room) && !room.closed && !room.sendBlocked && room.status !== "ended" && !(room.status === "error" && !room.joined);
  }

  _renderComposer() {
    const room = this.room;
    const { input, send, closedNote, hint } = this.dom;
    const closed = Boolean(room?.closed);
    closedNote.hidden = !closed;
    input.disabled = !room || closed || room.status === "ended";
    input.placeholder = closed ? "This conversation is closed" : "Write a message…";
    send.disabled = !this._canSend() || Boolean(this._uploading) || (!input.value.trim() && !this._uploaded.length);
    if (this.attachments) this.dom.attach.disabled = !this._canSend();
    const blocked = room?.sendBlocked ? secondsLeft(room.sendBlockedUntil) : 0;
    hint.textContent = blocked ? `Sending paused: you can send again in ${blocked} s.` : this._defaultHint;
    this.root.classList.toggle("chat--closed", closed);
  }

  /** While sends are paused (rate_limited), count down every second. */
  _tickCountdown() {
    if (this.room?.sendBlocked) {
      if (!this._countdown) {
        this._countdown = setInterval(() => {
          this._renderMessages();
          this._renderError();
          this._renderComposer();
          if (!this.room?.sendBlocked) {
            clearInterval(this._countdown);
            this._countdown = null;
            this._renderMessages();
            this._renderError();
            this._renderComposer();
          }
        }, 1_000);
      }
    }
  }

  _renderConnection({ state, attempt, message, login }) {
    const { banner, bannerText, bannerRetry, bannerLogin } = this.dom;
    clearTimeout(this._flashTimer);
    let text = "";
    switch (state) {
      case ConnectionState.CONNECTING:
        text = "Connecting…";
        break;
      case ConnectionState.RECONNECTING:
        text = message || `Connection lost. Reconnecting${attempt > 1 ? ` (attempt ${attempt})` : ""}…`;
        break;
      case ConnectionState.OFFLINE:
        text = "You're offline. Messages you write will be sent when the connection is back.";
        break;
      case ConnectionState.FAILED:
        text = message || "Can't connect to the chat.";
        break;
      default:
        text = "";
    }
    banner.dataset.state = state;
    bannerRetry.hidden = !(state === ConnectionState.RECONNECTING || state === ConnectionState.OFFLINE);
    bannerLogin.hidden = !(state === ConnectionState.FAILED && login);
    if (state === ConnectionState.CONNECTED && this.connection.everConnected && this._shownState && this._shownState !== ConnectionState.CONNECTED && this._shownState !== ConnectionState.CONNECTING) {
      text = "Reconnected.";
      banner.classList.add("banner--flash");
      this._flashTimer = setTimeout(() => {
        banner.classList.remove("banner--flash");
        bannerText.textContent = "";
      }, RECONNECTED_FLASH_MS);
    } else {
      banner.classList.remove("banner--flash");
    }
    this._shownState = state;
    bannerText.textContent = text;
    this.root.dataset.connection = state;
    this._renderComposer();
  }

  _renderJump() {
    const { jump } = this.dom;
    jump.hidden = this._unseen === 0;
    jump.firstChild.textContent = this._unseen === 1 ? "1 new message " : `${this._unseen} new messages `;
  }

  // --- scrolling --------------------------------------------------------------------------

  _nearBottom() {
    const { scroller } = this.dom;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
  }

  _nearTop() {
    return this.dom.scroller.scrollTop < LOAD_OLDER_WITHIN_PX;
  }

  _scrollToBottom() {
    const { scroller } = this.dom;
    scroller.scrollTop = scroller.scrollHeight;
    this._unseen = 0;
    this._renderJump();
  }

  _onScroll() {
    if (this._nearBottom() && this._unseen) {
      this._unseen = 0;
      this._renderJump();
    }
    this._markRead();
    const room = this.room;
    if (room && this._nearTop() && room.hasOlder && !room.loadingOlder && room.initialLoaded) room.loadOlder();
  }

  _autosize() {
    const { input } = this.dom;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }

  _replyAction(id, action) {
    const room = this.room;
    if (action === "version-prev" || action === "version-next") {
      const item = room.store.get(id);
      if (!item) return;
      this.versions.step(item, action === "version-prev" ? -1 : 1).then(
        (changed) => changed && this._schedule({}),
        (error) => room._setError({ code: error.code ?? "internal", message: error.message }, "agent"),
      );
      return;
    }
    if (action === "stop") room.stopReply(id);
    else if (action === "regenerate") room.regenerate(id);
    else if (action === "rate-up") room.rate(id, "up");
    else if (action === "rate-down") room.rate(id, "down");
  }

  async _hide(id, button) {
    if (!this.onHide) return;
    button.disabled = true;
    try {
      await this.onHide(id);
    } catch (error) {
      button.disabled = false;
      this.room?._setError({ code: error.code ?? "internal", message: error.message }, "moderation");
    }
  }
}

/**
 * RealTimeChat: a complete chat panel for one session, with the seed's props.
 *
 *   <RealTimeChat sessionId="chat-session-1" agentId="agent-123" workspaceId="workspace-456"
 *                 userId={user.id} userName={user.name} />
 *
 * Safe rendering: a message's `content` is always rendered as text; only a
 * stored message's `html` -- the server's sanitised rendering (markdown
 * messages) -- is inserted as HTML, and nothing else ever is.
 *
 * Agent replies show their steps (tool calls, reasoning) as collapsible
 * text, thumbs up / down, "Regenerate" and, while one streams, "Stop";
 * messages show their files (images inline, others as links), and the
 * composer uploads files with progress (`allowAttachments`).
 *
 * Accessible: labelled controls, a keyboard-scrollable message region, new
 * messages read out by a polite log, errors as alerts, the connection state
 * as a status, statuses as text as well as colour.
 *
 * Themeable: every colour, radius and font is a CSS variable on `.rtc`
 * (`--rtc-bg`, `--rtc-fg`, `--rtc-accent`... see styles.css); `theme`
 * forces light or dark, default follows the system.
 */

import { messageSteps } from "@chatserver/client";
import type { ChatSession, ConnectionStatus, MessageItem, Person, SessionError, Typer } from "@chatserver/client";
import { useEffect, useId, useLayoutEffect, useRef, useState } from "react";
import type { ChangeEvent, CSSProperties, FormEvent, KeyboardEvent } from "react";

import { Attachments, type Upload, UploadList } from "./Attachments.js";
import { Reactions } from "./Reactions.js";
import { ReplyTools } from "./ReplyTools.js";
import { Steps } from "./Steps.js";
import { useChatSession } from "./useChatSession.js";

export interface RealTimeChatProps {
  sessionId: string;
  workspaceId: string;
  /** The agent of a session this creates. */
  agentId?: string | null;
  /** Who we are, until the server says (it wins). */
  userId?: string;
  userName?: string;
  /** The panel's heading (default: the session's title, else "Chat"). */
  title?: string;
  placeholder?: string;
  /** `auto` (default) follows the system; `light` or `dark` forces one. */
  theme?: "auto" | "light" | "dark";
  /** Show who is here (default true). */
  showPresence?: boolean;
  /** Insert stored messages' server-rendered `html` (default true); false shows `content` only. */
  renderHtml?: boolean;
  /** Offer a file picker that uploads files to send with a message (default true). */
  allowAttachments?: boolean;
  /** What the file picker offers (the input's `accept`, e.g. "image/*,.pdf"); the server decides what it takes. */
  accept?: string;
  className?: string;
  style?: CSSProperties;
}

const useIsomorphicLayoutEffect = typeof window === "undefined" ? useEffect : useLayoutEffect;

const CONNECTION_TEXT: Record<ConnectionStatus["state"], string> = {
  idle: "Connecting…",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Connection lost. Reconnecting…",
  offline: "You're offline. Waiting for the network…",
  failed: "The chat could not sign you in.",
  closed: "Disconnected",
};

function typingText(typers: readonly Typer[]): string {
  const names = typers.map((typer) => typer.name);
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
}

function timeOf(timestamp: number): string {
  return new Date(timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Re-render every second while `until` is in the future (a rate-limit countdown). */
function useCountdown(until: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until <= Date.now()) return;
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= until) clearInterval(timer);
    }, 1_000);
    return () => clearInterval(timer);
  }, [until]);
  return Math.max(0, Math.ceil((until - now) / 1_000));
}

export function RealTimeChat({
  sessionId,
  workspaceId,
  agentId = null,
  userId,
  userName,
  title,
  placeholder = "Write a message…",
  theme = "auto",
  showPresence = true,
  renderHtml = true,
  allowAttachments = true,
  accept,
  className,
  style,
}: RealTimeChatProps) {
  const chat = useChatSession(sessionId, workspaceId, { agentId });
  const ids = useId();
  const [draft, setDraft] = useState("");
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [announcement, setAnnouncement] = useState("");
  const fileInput = useRef<HTMLInputElement>(null);
  const uploadKeys = useRef(0);
  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const olderFrom = useRef<number | null>(null);
  const secondsLeft = useCountdown(chat.sendBlockedUntil);

  const session = chat.session;
  useEffect(() => {
    if (session && userId) session.identify(userId, userName);
  }, [session, userId, userName]);

  // Keep the newest message in view while the reader is at the bottom; keep the
  // reader's place when an older page arrives above.
  useIsomorphicLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    if (olderFrom.current !== null) {
      element.scrollTop += element.scrollHeight - olderFrom.current;
      olderFrom.current = null;
    } else if (pinned.current) {
      element.scrollTop = element.scrollHeight;
    }
  }, [chat.messages]);

  const onScroll = () => {
    const element = scroller.current;
    if (!element) return;
    pinned.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
    if (element.scrollTop < 40 && chat.hasOlder && !chat.loadingOlder) loadOlder();
  };

  const loadOlder = () => {
    olderFrom.current = scroller.current?.scrollHeight ?? null;
    // A page that added nothing leaves no layout change to consume the mark: drop it after the next paint.
    void chat.loadOlder().then(() => requestAnimationFrame(() => (olderFrom.current = null)));
  };

  const uploading = uploads.some((upload) => !upload.attachment && !upload.error);
  const ready = uploads.flatMap((upload) => (upload.attachment ? [upload.attachment] : []));

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (chat.closed || uploading) return;
    if (chat.send(draft, ready.length ? { attachments: ready } : undefined)) {
      setDraft("");
      setUploads([]);
      pinned.current = true;
    }
  };

  const changeUpload = (key: number, changes: Partial<Upload>) =>
    setUploads((current) => current.map((upload) => (upload.key === key ? { ...upload, ...changes } : upload)));

  const upload = (file: File) => {
    const key = ++uploadKeys.current;
    setUploads((current) => [...current, { key, name: file.name, progress: null, attachment: null, error: null }]);
    chat.uploadAttachment(file, (progress) => changeUpload(key, { progress })).then(
      (attachment) => {
        changeUpload(key, { attachment, progress: 1 });
        setAnnouncement(`${attachment.name} is ready to send.`);
      },
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : "The upload failed.";
        changeUpload(key, { error: reason });
        setAnnouncement(`${file.name} could not be uploaded: ${reason}`);
      },
    );
  };

  const onFiles = (event: ChangeEvent<HTMLInputElement>) => {
    const files = [...(event.target.files ?? [])];
    event.target.value = "";
    for (const file of files) upload(file);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  const heading = title ?? chat.title ?? "Chat";
  const connection = chat.connection.state;
  const canRetryConnection = connection === "reconnecting" || connection === "offline";
  const inputLabel = chat.closed ? "This conversation is closed" : "Message";

  return (
    <section
      className={["rtc", className].filter(Boolean).join(" ")}
      style={style}
      data-theme={theme}
      data-session={sessionId}
      data-status={chat.status}
      data-loaded={chat.initialLoaded ? "true" : "false"}
      aria-labelledby={`${ids}-title`}
    >
      <header className="rtc__header">
        <h2 className="rtc__title" id={`${ids}-title`}>
          {heading}
        </h2>
        <p className="rtc__connection" role="status" data-state={connection}>
          <span className="rtc__dot" aria-hidden="true" />
          {chat.connection.message ?? CONNECTION_TEXT[connection]}
          {canRetryConnection && (
            <button type="button" className="rtc__link" onClick={() => chat.session?.client.retryNow()}>
              Retry now
            </button>
          )}
        </p>
      </header>

      {showPresence && chat.presence.length > 0 && <PresenceList people={chat.presence} />}

      {chat.error && (
        <ErrorBanner
          error={chat.error}
          secondsLeft={chat.error.code === "rate_limited" ? secondsLeft : 0}
          onDismiss={chat.dismissError}
        />
      )}

      <div
        className="rtc__scroller"
        ref={scroller}
        onScroll={onScroll}
        role="log"
        aria-label="Conversation"
        aria-relevant="additions"
        tabIndex={0}
      >
        {chat.hasOlder && (
          <button type="button" className="rtc__older" onClick={loadOlder} disabled={chat.loadingOlder}>
            {chat.loadingOlder ? "Loading…" : "Load older messages"}
          </button>
        )}
        {!chat.initialLoaded && chat.messages.length === 0 && <p className="rtc__empty">Loading the conversation…</p>}
        {chat.initialLoaded && chat.messages.length === 0 && <p className="rtc__empty">No messages yet.</p>}
        <ol className="rtc__messages" aria-label="Messages">
          {chat.messages.map((message) => (
            <MessageRow
              key={message.id}
              message={message}
              renderHtml={renderHtml}
              onRetry={chat.retry}
              onDiscard={chat.discard}
              onCancel={chat.cancelAgent}
              onRegenerate={chat.regenerate}
              onRate={chat.rateMessage}
              onReact={chat.toggleReaction}
              canReact={chat.joined && !chat.closed}
              session={chat.session}
            />
          ))}
        </ol>
      </div>

      <p className="rtc__typing" aria-live="polite" data-typing={chat.typing.length}>
        {typingText(chat.typing)}
      </p>

      <form className={allowAttachments ? "rtc__composer rtc__composer--files" : "rtc__composer"} onSubmit={submit}>
        <label className="rtc__label" htmlFor={`${ids}-input`}>
          {inputLabel}
        </label>
        <textarea
          id={`${ids}-input`}
          className="rtc__input"
          rows={2}
          value={draft}
          placeholder={chat.closed ? "" : placeholder}
          disabled={chat.closed}
          aria-describedby={`${ids}-hint`}
          onChange={(event) => {
            setDraft(event.target.value);
            chat.noteInput(event.target.value);
          }}
          onKeyDown={onKeyDown}
          onBlur={chat.stopTyping}
        />
        {allowAttachments && (
          <>
            <input
              ref={fileInput}
              type="file"
              className="rtc__file-input"
              hidden
              multiple
              accept={accept}
              tabIndex={-1}
              aria-hidden="true"
              onChange={onFiles}
            />
            <button
              type="button"
              className="rtc__attach"
              aria-label="Attach a file"
              title="Attach a file"
              disabled={chat.closed || !chat.joined}
              onClick={() => fileInput.current?.click()}
            >
              <svg className="rtc__attach-icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                <path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48" />
              </svg>
            </button>
          </>
        )}
        <button
          type="submit"
          className="rtc__send"
          disabled={chat.closed || uploading || (!draft.trim() && !ready.length)}
        >
          Send
        </button>
        <UploadList uploads={uploads} onRemove={(key) => setUploads((current) => current.filter((u) => u.key !== key))} />
        <p className="rtc__visually-hidden" role="status" aria-live="polite">
          {announcement}
        </p>
        <p className="rtc__hint" id={`${ids}-hint`}>
          Enter sends, Shift+Enter starts a new line.
        </p>
      </form>
    </section>
  );
}

function PresenceList({ people }: { people: readonly Person[] }) {
  return (
    <ul className="rtc__presence" aria-label="People in this conversation">
      {people.map((person) => (
        <li key={person.userId} className="rtc__person" data-user={person.userId} data-status={person.status}>
          <span className="rtc__dot" aria-hidden="true" />
          {person.userName}
          {person.self ? " (you)" : ""}
          <span className="rtc__person-status">{person.status}</span>
        </li>
      ))}
    </ul>
  );
}

function ErrorBanner({ error, secondsLeft, onDismiss }: { error: SessionError; secondsLeft: number; onDismiss: () => void }) {
  const text = error.code === "rate_limited" && secondsLeft > 0 ? `${error.message} Sending again in ${secondsLeft} s.` : error.message;
  return (
    <div className="rtc__error" role="alert" data-code={error.code}>
      <span>{text}</span>
      <button type="button" className="rtc__link" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}

interface MessageRowProps {
  message: MessageItem;
  renderHtml: boolean;
  onRetry: (id: string) => void;
  onDiscard: (id: string) => void;
  onCancel: (id: string) => Promise<unknown>;
  onRegenerate: (id: string) => Promise<unknown>;
  onRate: (id: string, rating: "up" | "down" | null) => Promise<unknown>;
  onReact: (id: string, emoji: string) => Promise<unknown>;
  canReact: boolean;
  session: ChatSession | null;
}

function statusOf(message: MessageItem): string {
  if (message.state === "pending") return message.queued ? "Waiting for connection…" : "Sending…";
  if (message.state === "sent") return "Sent";
  if (message.state === "failed") return `Not sent: ${message.error?.message ?? "refused"}`;
  const stream = message.stream;
  if (!stream) return message.senderType === "agent" && message.metadata.cancelled === true ? "Stopped" : "";
  if (message.state === "streaming" && !stream.done) return stream.interrupted ? "Reply interrupted…" : "";
  if (stream.error) return `The reply failed: ${stream.error.message}`;
  if (stream.cancelled) return "Stopped";
  return "";
}

function MessageRow({
  message,
  renderHtml,
  onRetry,
  onDiscard,
  onCancel,
  onRegenerate,
  onRate,
  onReact,
  canReact,
  session,
}: MessageRowProps) {
  const streaming = message.state === "streaming" && !message.stream?.done;
  const status = statusOf(message);
  const showHtml = renderHtml && message.html !== null && (message.state === "stored" || message.state === "sent");
  const steps = message.deleted ? [] : messageSteps(message);
  return (
    <li
      className="rtc-msg"
      data-id={message.id}
      data-seq={message.seq ?? undefined}
      data-state={message.state}
      data-sender-type={message.senderType}
      data-mine={message.mine ? "true" : "false"}
      data-version={message.version}
      aria-busy={streaming ? "true" : undefined}
    >
      <p className="rtc-msg__meta">
        <span className="rtc-msg__author">{message.mine ? "You" : message.userName || "Someone"}</span>
        <time className="rtc-msg__time" dateTime={new Date(message.timestamp).toISOString()} suppressHydrationWarning>
          {timeOf(message.timestamp)}
        </time>
      </p>
      <Steps steps={steps} />
      {message.deleted ? (
        <div className="rtc-msg__body rtc-msg__body--deleted">This message was deleted.</div>
      ) : showHtml ? (
        <div className="rtc-msg__body rtc-msg__body--html" dangerouslySetInnerHTML={{ __html: message.html! }} />
      ) : (
        <div className="rtc-msg__body">{message.content}</div>
      )}
      {!message.deleted && <Attachments session={session} attachments={message.attachments} />}
      {message.editedAt !== null && !message.deleted && <p className="rtc-msg__edited">(edited)</p>}
      {streaming && <span className="rtc-msg__caret" aria-hidden="true" />}
      {message.seq !== null && message.senderType !== "system" && (canReact || message.reactions.reactions.length > 0) && (
        <Reactions message={message} disabled={!canReact} onToggle={onReact} />
      )}
      <ReplyTools message={message} disabled={!canReact} onStop={onCancel} onRegenerate={onRegenerate} onRate={onRate} />
      {(status || message.state === "failed") && (
        <p className="rtc-msg__status">
          {status && <span>{status}</span>}
          {message.state === "failed" && (
            <>
              <button type="button" className="rtc__link" onClick={() => onRetry(message.id)}>
                Retry
              </button>
              <button type="button" className="rtc__link" onClick={() => onDiscard(message.id)}>
                Discard
              </button>
            </>
          )}
        </p>
      )}
    </li>
  );
}

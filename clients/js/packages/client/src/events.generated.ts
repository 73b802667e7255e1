// Generated from schema/chat-events.schema.json by scripts/generate-types.mjs: do not edit.
// Change the schema, then run `npm run generate` in clients/js (schema/README.md).

/** An id a client chooses (session, message, agent): 1-128 characters of A-Z, a-z, 0-9, _ and -. */
export type ClientId = string;

/** A workspace's slug: 1-64 characters of A-Z, a-z, 0-9, _ and -. */
export type WorkspaceSlug = string;

/** Milliseconds since the epoch. */
export type Millis = number;

/** A message's position in its session: 1, 2, 3... with no gaps and no duplicates. */
export type Seq = number;

export type SenderType = "user" | "agent" | "system";

export type ContentType = "text" | "markdown";

export type PresenceStatus = "active" | "idle" | "away";

export type SessionStatus = "open" | "closed";

/** A stable machine code of a refused request (docs/protocol.md, 'Error codes'). */
export type ErrorCode = "invalid_payload" | "not_a_member" | "forbidden" | "agent_not_found" | "session_not_found" | "session_closed" | "not_joined" | "access_revoked" | "message_too_long" | "metadata_too_large" | "rate_limited" | "message_blocked" | "spam_detected" | "muted" | "banned" | "agent_run_not_found" | "agent_run_finished" | "agent_run_active" | "message_not_found" | "invalid_emoji" | "reaction_emoji_limit" | "reaction_user_limit" | "not_author" | "edit_window_closed" | "version_conflict" | "message_deleted" | "too_many_edits" | "unknown_event" | "too_many_pending_events" | "too_many_attachments" | "attachment_not_found" | "attachment_in_use" | "internal";

/** A stored message, as every event and history page carries it. */
export interface ChatMessage {
  /** The sender's id for it, unique within the session: the idempotency key. */
  id: ClientId;
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  seq: Seq;
  senderType: SenderType;
  /** The sending user; null for agents and the system. */
  userId: string | null;
  userName: string;
  /** What was written, verbatim: render it as text. */
  content: string;
  contentType: ContentType;
  /** The server's sanitised HTML rendering of `content` (markdown messages), safe to insert as HTML; absent or null when there is none. */
  html?: string | null;
  /** At most 16 KiB of JSON, nested at most 8 deep. */
  metadata: Record<string, unknown>;
  timestamp: Millis;
  /** Its reactions, in order of first use; absent: none. */
  reactions?: Reaction[];
  /** The reactions' version (0: never reacted to); keep the reactions with the highest one. */
  reactionsVersion?: number;
  version?: Version;
  /** When the content was last edited (ms); null if never. */
  editedAt?: number | null;
  /** A tombstone: the message was deleted; content, html and metadata are empty. */
  deleted?: boolean;
  /** The files the message carries, in the order sent (absent from servers before attachments). */
  attachments?: ChatAttachment[];
}

/** An attachment's id: the server's, 32 hex digits (REST `POST .../sessions/<id>/attachments/` answers it). */
export type AttachmentId = string;

/** A file a message carries. `contentType` was sniffed from its bytes. */
export interface ChatAttachment {
  id: AttachmentId;
  /** The uploader's file name, for display only: show it as text. */
  name: string;
  contentType: string;
  size: number;
  /** Raster images: pixels, when the header says. */
  width: number | null;
  height: number | null;
  /** A short-lived signed download path for the receiving user, relative to the server; null in broadcasts (ask REST `GET .../attachments/<id>/` for one). */
  url: string | null;
}

/** A message's version: 1 when sent, one more with every edit or deletion. Keep the highest you have seen: an event with a version at or below it is late and changes nothing. */
export type Version = number;

/** One socket of a user in a session. */
export interface ChatPresence {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  userId: string;
  userName: string;
  socketId: string;
  status: PresenceStatus;
  lastSeen: Millis;
}

/** A refused request: the `<event>-error` event, and the body of a failed ack (with `ok: false`). */
export interface ChatError {
  /** A sentence for people. */
  error: string;
  code: ErrorCode;
  /** The session id the request named, when well-formed. */
  sessionId?: ClientId;
  /** The message id the request named, when well-formed. */
  messageId?: ClientId;
  workspaceId?: WorkspaceSlug;
  /** True when the same request may simply be retried. */
  retryable?: boolean;
  /** rate_limited: milliseconds to wait. */
  retryAfter?: number;
  /** message_too_long: the longest content accepted. */
  maxLength?: number;
  /** muted: when the mute ends. */
  mutedUntil?: Millis;
  /** message_blocked, spam_detected: which rule. */
  reason?: string;
  /** version_conflict: the message's current version. */
  currentVersion?: Version;
  /** edit_window_closed: the workspace's edit window. */
  editWindowSeconds?: number;
  /** too_many_edits: the most versions a message can have. */
  maxVersions?: number;
  /** attachment_not_found, attachment_in_use: which one. */
  attachmentId?: AttachmentId;
  /** too_many_attachments: the most a message carries; reaction_emoji_limit, reaction_user_limit: the cap reached. */
  limit?: number;
}

/** The `data` of a `connect_error` the server refused with (not a chat:* event). */
export interface ConnectErrorData {
  /** unauthenticated, connection_limit, rate_limited, invalid_packet... */
  code: string;
  /** unauthenticated: token_replayed, token_expired... */
  reason?: string;
  retryAfter?: number;
  limit?: number;
}

export interface JoinSessionRequest {
  /** Chosen by the client; a session that does not exist is created. */
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  /** The agent of a session this join creates. */
  agentId?: ClientId;
}

export interface JoinSessionSuccess {
  sessionId: ClientId;
  agentId: string | null;
  workspaceId: WorkspaceSlug;
  roomId: string;
  workspaceRoomId: string;
  status: SessionStatus;
  /** The session's highest seq: catch up with afterSeq from what you hold. */
  lastSeq: number;
  /** How far this member marked the session read (chat:mark-read); 0: nothing yet. */
  lastReadSeq?: number;
  /** Visible messages after lastReadSeq that others sent. */
  unreadCount?: number;
  timestamp: Millis;
  presence: ChatPresence;
}

export interface LeaveSessionRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
}

export interface LeaveSessionAck {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
}

export interface UserLeft {
  sessionId: ClientId;
  userId: string;
  socketId: string;
  timestamp: Millis;
}

/** A message as a client sends it. */
export interface OutgoingMessage {
  /** The idempotency key: resend with the same id after a lost connection. */
  id: ClientId;
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  content: string;
  contentType?: ContentType;
  metadata?: Record<string, unknown>;
  /** Ids of the sender's uploads in this session, not sent before (at most CHAT_ATTACHMENTS_PER_MESSAGE). */
  attachments?: AttachmentId[];
}

export interface SendMessageRequest {
  message: OutgoingMessage;
}

/** The sender's confirmation: the message is stored with this seq. */
export interface MessageSent {
  messageId: ClientId;
  sessionId: ClientId;
  seq: Seq;
  timestamp: Millis;
  /** True when this id was stored before: nothing new was stored or broadcast. */
  duplicate: boolean;
}

export interface HistoryRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** Default 50, clamped to 200. */
  limit?: number;
  /** Counts back from the newest message: 0 is the newest page. */
  offset?: number;
  /** Messages after this seq, oldest first. */
  afterSeq?: number;
}

export interface HistoryResponse {
  sessionId: ClientId;
  /** In seq order. */
  messages: ChatMessage[];
  limit: number;
  offset: number;
  afterSeq: number | null;
  /** With offset: older messages exist. With afterSeq: more follow. */
  hasMore: boolean;
  timestamp: Millis;
}

export interface TypingRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** Renew true every couple of seconds; the server ends it after 5 s without. */
  isTyping: boolean;
}

export interface TypingAck {
  sessionId: ClientId;
  isTyping: boolean;
}

export interface TypingIndicator {
  sessionId: ClientId;
  /** The user, or for an agent its name. */
  userId: string;
  userName: string;
  isTyping: boolean;
  timestamp: Millis;
  /** Present when an agent is typing. */
  senderType?: "agent";
  /** The typing agent's id. */
  agentId?: string;
}

export interface UpdatePresenceRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  status: PresenceStatus;
}

export interface EditMessageRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  messageId: ClientId;
  /** The version being edited; another current version is version_conflict (a repeat of this very edit is acknowledged with duplicate: true). */
  version: Version;
  content: string;
  /** Default: the message's own. */
  contentType?: ContentType;
  /** Default: the message's own. */
  metadata?: Record<string, unknown>;
}

export interface DeleteMessageRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  messageId: ClientId;
  /** Optional: delete only if this is still the current version (otherwise version_conflict). */
  version?: Version;
}

/** An edit or deletion is stored with this version. */
export interface MessageChangeAck {
  sessionId: ClientId;
  messageId: ClientId;
  seq: Seq;
  version: Version;
  /** True when nothing new was stored (a repeat, the same text, or already deleted). */
  duplicate: boolean;
}

/** A message was edited, or an agent reply regenerated: apply it if its version is higher than the one you have. */
export interface MessageUpdated {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  messageId: ClientId;
  seq: Seq;
  version: Version;
  /** The message as it is now, whole. */
  message: ChatMessage;
}

/** A message was deleted: show a tombstone in its place if its version is higher than the one you have. */
export interface MessageDeleted {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  messageId: ClientId;
  seq: Seq;
  version: Version;
  timestamp: Millis;
}

export interface CancelAgentRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** The reply's id (its chunks' messageId) or the id of the user message it answers. */
  messageId: ClientId;
}

export interface CancelAgentAck {
  sessionId: ClientId;
  /** The reply's id. */
  messageId: ClientId;
  inReplyTo: ClientId;
  /** cancelled: it had not started. cancelling: it is running; its final chunk with cancelled: true follows. */
  status: "cancelled" | "cancelling";
}

/** One emoji grapheme (flags, keycaps, skin tones and ZWJ sequences included), at most 16 code points. */
export type Emoji = string;

/** One emoji on a message: how many members reacted with it and (the first CHAT_REACTION_USERS_SHOWN of) who. Reacted by me: your userId is in users. */
export interface Reaction {
  emoji: Emoji;
  count: number;
  users: string[];
}

export interface ReactionRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  messageId: ClientId;
  emoji: Emoji;
}

/** The message's reactions after the request (also when it changed nothing: adding twice, removing an absent one). */
export interface ReactionAck {
  sessionId: ClientId;
  messageId: ClientId;
  emoji: Emoji;
  reactions: Reaction[];
  reactionsVersion: number;
}

/** A message's whole reaction aggregate after a change. Keep the one with the highest reactionsVersion per message: repeated or reordered events converge. */
export interface ReactionsUpdated {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  messageId: ClientId;
  seq: Seq;
  reactions: Reaction[];
  reactionsVersion: number;
  /** Who made the change. */
  userId: string;
  emoji: Emoji;
  /** true: userId added emoji; false: removed it. */
  added: boolean;
  timestamp: Millis;
}

export interface MarkReadRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** The seq of the newest message read; beyond the session's newest it is clamped to it. */
  seq: number;
}

export interface MarkReadAck {
  sessionId: ClientId;
  /** The pointer now (never lower than before). */
  lastReadSeq: number;
  unreadCount: number;
}

/** A member's read pointer moved forward: to the session (read receipts) and to the member's other sockets (unread badges). May arrive twice; pointers only move forward. */
export interface ReadUpdated {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  userId: string;
  seq: number;
  /** userId's unread messages in the session now. */
  unreadCount: number;
  timestamp: Millis;
}

export interface AgentStreamError {
  /** timeout, worker_lost, empty_reply, backend_error, upstream_error... */
  code: string;
  message: string;
}

/** One piece of an agent's reply as it is produced; the last has isComplete: true and chunk ''. The stored reply then arrives as chat:message-received with id = messageId. */
export interface AgentStreamChunk {
  sessionId: ClientId;
  /** The reply's id. */
  messageId: ClientId;
  /** Raw text: render it as text. */
  chunk: string;
  isComplete: boolean;
  timestamp: Millis;
  workspaceId: WorkspaceSlug;
  agentId: string;
  /** The user message it answers. */
  inReplyTo: ClientId;
  /** Counts the reply's events from 0 (text chunks, chat:agent-tool-call and chat:agent-reasoning share one sequence); the final one carries the count. */
  index: number;
  /** Sent only to a socket that joined while the reply streams: chunk is the whole text so far, steps the tool calls and reasoning so far, and index the last event they include. Replace the reply's text and steps with them (unless you hold a higher index) and skip live events whose index is not above it. */
  catchUp?: true;
  /** Catch-up only: the reply's steps so far. */
  steps?: AgentStep[];
  /** Final chunk: the stored reply's seq. */
  seq?: Seq;
  /** Final chunk: the reply was cancelled (stored as far as it got). */
  cancelled?: true;
  /** Final chunk: the reply was cut at the length limit. */
  truncated?: true;
  /** Final chunk: the run failed. */
  error?: AgentStreamError;
  /** Only on a regeneration's chunks: the version of the reply (messageId) they make. Their index counts from 0 again: replace the reply's shown text with them; if the final chunk has an error (or is cancelled with no text), the reply stays as it was. */
  version?: number;
}

export interface RegenerateRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** The agent reply's id. */
  messageId: ClientId;
  /** The client's key for this request: the same requestId again answers with the same run. */
  requestId: ClientId;
}

export interface RegenerateAck {
  sessionId: ClientId;
  /** The reply's id (its chunks carry it). */
  messageId: ClientId;
  /** The user message answered again. */
  inReplyTo: ClientId;
  requestId: ClientId;
  /** The version of the reply this run makes. */
  version: number;
  /** The run's status now. */
  status: "pending" | "running" | "completed" | "failed" | "timed_out" | "cancelled";
  /** True when this requestId was sent before: the run it created. */
  duplicate: boolean;
}

export type Rating = "up" | "down";

export interface RateMessageRequest {
  sessionId: ClientId;
  workspaceId?: WorkspaceSlug;
  /** An agent reply's id. */
  messageId: ClientId;
  /** null clears your rating. */
  rating: Rating | null;
  comment?: string;
}

export interface RateMessageAck {
  sessionId: ClientId;
  messageId: ClientId;
  /** Your rating as stored. */
  rating: Rating | null;
  comment: string;
  /** Every member's ratings of the reply, counted. */
  feedback: {
    up: number;
    down: number;
  };
}

/** One step of an agent's reply, as a catch-up and the stored reply's metadata.steps carry it: a tool call (arguments joined, latest status, result when known) or a run of reasoning. */
export interface AgentStep {
  type: "tool" | "reasoning";
  toolCallId?: string;
  name?: string;
  /** The call's arguments (JSON text as the agent wrote it): show as text. */
  arguments?: string;
  status?: AgentToolStatus;
  /** The tool's result as text (JSON text when structured), when the agent service reported it. */
  result?: string;
  /** Reasoning: raw text, show as text. */
  text?: string;
  truncated?: true;
}

/** started -> running -> completed | failed. The agent service runs tools; the chat server only carries and shows them. */
export type AgentToolStatus = "started" | "running" | "completed" | "failed";

/** A tool call of an agent's reply as it streams (one event per update). index is shared with the reply's chat:agent-stream-chunk and chat:agent-reasoning events. */
export interface AgentToolCall {
  sessionId: ClientId;
  /** The reply's id. */
  messageId: ClientId;
  timestamp: Millis;
  workspaceId: WorkspaceSlug;
  agentId: string;
  inReplyTo: ClientId;
  index: number;
  toolCallId: string;
  name: string;
  /** More of the arguments' JSON text: append it to what the call has. */
  argumentsDelta: string;
  status: AgentToolStatus;
  /** The tool's result as text, when known. */
  result?: string;
  /** Arguments or result were cut at the step limit. */
  truncated?: true;
  /** Only in a regeneration: the version of the reply it makes (as on its chunks). */
  version?: number;
}

/** More of an agent's reasoning summary, where its provider sends one. index is shared with the reply's other events. */
export interface AgentReasoning {
  sessionId: ClientId;
  messageId: ClientId;
  timestamp: Millis;
  workspaceId: WorkspaceSlug;
  agentId: string;
  inReplyTo: ClientId;
  index: number;
  /** Raw text: show it as text. */
  text: string;
  /** Only in a regeneration: the version of the reply it makes (as on its chunks). */
  version?: number;
}

export interface MessageHidden {
  sessionId: ClientId;
  messageId: ClientId;
  workspaceId: WorkspaceSlug;
}

export interface MessageUnhidden {
  sessionId: ClientId;
  messageId: ClientId;
  workspaceId: WorkspaceSlug;
  /** The restored message, whole. */
  message: ChatMessage;
}

export interface SessionClosed {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  closedBy: string;
  timestamp: Millis;
}

export interface SessionUpdated {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  title: string;
  agentId: string | null;
  status: SessionStatus;
  timestamp: Millis;
}

/** Sent to each of the user's sockets in the workspace before they are disconnected. */
export interface Banned {
  workspaceId: WorkspaceSlug;
  timestamp: Millis;
}

/** The server took this socket out of a session it had joined: its access ended (unshared, removed from the workspace, demoted out of a session it was in as a moderator). Nothing more of the session reaches it; joining again fails. */
export interface SessionLeft {
  sessionId: ClientId;
  workspaceId: WorkspaceSlug;
  code: ErrorCode;
  message: string;
  timestamp: Millis;
}

/** Events the server emits; each has exactly one argument, its payload. */
export interface ServerToClientPayloads {
  "chat:join-session-success": JoinSessionSuccess;
  "chat:user-joined": ChatPresence;
  "chat:user-left": UserLeft;
  "chat:message-received": ChatMessage;
  "chat:message-sent": MessageSent;
  "chat:history-response": HistoryResponse;
  "chat:typing-indicator": TypingIndicator;
  "chat:presence-updated": ChatPresence;
  "chat:agent-stream-chunk": AgentStreamChunk;
  "chat:agent-tool-call": AgentToolCall;
  "chat:agent-reasoning": AgentReasoning;
  "chat:message-hidden": MessageHidden;
  "chat:message-unhidden": MessageUnhidden;
  "chat:message-updated": MessageUpdated;
  "chat:message-deleted": MessageDeleted;
  "chat:session-closed": SessionClosed;
  "chat:session-updated": SessionUpdated;
  "chat:banned": Banned;
  "chat:session-left": SessionLeft;
  "chat:reactions-updated": ReactionsUpdated;
  "chat:read-updated": ReadUpdated;
  "chat:join-session-error": ChatError;
  "chat:leave-session-error": ChatError;
  "chat:send-message-error": ChatError;
  "chat:request-history-error": ChatError;
  "chat:typing-error": ChatError;
  "chat:update-presence-error": ChatError;
  "chat:cancel-agent-error": ChatError;
  "chat:add-reaction-error": ChatError;
  "chat:remove-reaction-error": ChatError;
  "chat:mark-read-error": ChatError;
  "chat:regenerate-error": ChatError;
  "chat:rate-message-error": ChatError;
  "chat:edit-message-error": ChatError;
  "chat:delete-message-error": ChatError;
}

/** Events a client emits; each takes one payload and may ask for an acknowledgement. */
export interface ClientToServerPayloads {
  "chat:join-session": JoinSessionRequest;
  "chat:leave-session": LeaveSessionRequest;
  "chat:send-message": SendMessageRequest;
  "chat:request-history": HistoryRequest;
  "chat:typing": TypingRequest;
  "chat:update-presence": UpdatePresenceRequest;
  "chat:cancel-agent": CancelAgentRequest;
  "chat:add-reaction": ReactionRequest;
  "chat:remove-reaction": ReactionRequest;
  "chat:mark-read": MarkReadRequest;
  "chat:regenerate": RegenerateRequest;
  "chat:rate-message": RateMessageRequest;
  "chat:edit-message": EditMessageRequest;
  "chat:delete-message": DeleteMessageRequest;
}

/** The body of each client event's successful acknowledgement, without its `ok: true`. */
export interface AckBodies {
  "chat:join-session": JoinSessionSuccess;
  "chat:leave-session": LeaveSessionAck;
  "chat:send-message": MessageSent;
  "chat:request-history": HistoryResponse;
  "chat:typing": TypingAck;
  "chat:update-presence": ChatPresence;
  "chat:cancel-agent": CancelAgentAck;
  "chat:add-reaction": ReactionAck;
  "chat:remove-reaction": ReactionAck;
  "chat:mark-read": MarkReadAck;
  "chat:regenerate": RegenerateAck;
  "chat:rate-message": RateMessageAck;
  "chat:edit-message": MessageChangeAck;
  "chat:delete-message": MessageChangeAck;
}

/**
 * useChatSession(sessionId, workspaceId): one session of the provider's
 * connection, its state and its actions.  The session is taken in an effect
 * (never during render, so never on the server) and released by its
 * cleanup; sessions are shared, so two components showing the same one
 * join once, and strict mode's double effects rejoin nothing.
 */

import type {
  ChatAttachment,
  ChatSession,
  ContentType,
  MessageItem,
  PresenceStatus,
  SessionSnapshot,
  UploadProgress,
} from "@chatserver/client";
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";

import { useChatSocketContext } from "./context.js";

export interface UseChatSessionOptions {
  /** The agent of a session this join creates. */
  agentId?: string | null;
  /** Messages per history page. */
  pageSize?: number;
}

export interface ChatSessionActions {
  /** Send a message; `attachments` are files uploaded before with `uploadAttachment` (their ids go out). */
  send: (
    text: string,
    options?: { contentType?: ContentType; metadata?: Record<string, unknown>; attachments?: readonly ChatAttachment[] },
  ) => MessageItem | null;
  /** Upload a file to the session (progress from 0 to 1); pass what it resolves with in `send`'s `attachments`. */
  uploadAttachment: (file: Blob, onProgress?: UploadProgress) => Promise<ChatAttachment>;
  /** A download link for one of the session's attachments: its own `url`, or a fresh one (received live, `url: null`). */
  attachmentUrl: (attachment: ChatAttachment) => Promise<string>;
  retry: (messageId: string) => void;
  discard: (messageId: string) => void;
  loadOlder: () => Promise<void>;
  /** Stop an agent's reply (its id, or the id of the message it answers). */
  cancelAgent: (messageId: string) => Promise<unknown>;
  /** Ask the agent again for a reply (its id): the new answer becomes the reply's next version. */
  regenerate: (messageId: string) => Promise<unknown>;
  /** Rate an agent's reply ("up", "down", or null to clear); the entry's `feedback` then holds the counts. */
  rateMessage: (messageId: string, rating: "up" | "down" | null, comment?: string) => Promise<unknown>;
  /** Call on every edit of the message box: typing goes out debounced. */
  noteInput: (text: string) => void;
  stopTyping: () => void;
  setStatus: (status: PresenceStatus) => void;
  dismissError: () => void;
  /** Add our reaction if we have not reacted with `emoji`, remove it if we have. */
  toggleReaction: (messageId: string, emoji: string) => Promise<unknown>;
  /** Mark read up to `seq` (default: the newest message held). */
  markRead: (seq?: number) => Promise<void>;
}

export type ChatSessionState = SessionSnapshot & ChatSessionActions & { session: ChatSession | null };

function placeholder(sessionId: string, workspaceId: string): SessionSnapshot {
  return {
    sessionId,
    workspaceId,
    status: "idle",
    connection: { state: "idle" },
    joined: false,
    closed: false,
    title: null,
    agentId: null,
    self: { userId: null, userName: null },
    messages: [],
    initialLoaded: false,
    hasOlder: false,
    loadingOlder: false,
    typing: [],
    presence: [],
    error: null,
    sendBlockedUntil: 0,
    lastReadSeq: 0,
    unreadCount: 0,
    readReceipts: {},
  };
}

const nothing = () => () => {};

export function useChatSession(sessionId: string, workspaceId: string, options: UseChatSessionOptions = {}): ChatSessionState {
  const { client, user } = useChatSocketContext();
  const { agentId = null, pageSize } = options;
  const [session, setSession] = useState<ChatSession | null>(null);

  useEffect(() => {
    const taken = client.session(sessionId, workspaceId, { agentId, ...(pageSize ? { pageSize } : {}) });
    setSession(taken);
    return () => {
      taken.release();
      setSession((current) => (current === taken ? null : current));
    };
  }, [client, sessionId, workspaceId, agentId, pageSize]);

  useEffect(() => {
    if (session && user) session.identify(user.id, user.name);
  }, [session, user]);

  const empty = useMemo(() => placeholder(sessionId, workspaceId), [sessionId, workspaceId]);
  const current = session && session.sessionId === sessionId && session.workspaceId === workspaceId ? session : null;
  const subscribe = useCallback((onChange: () => void) => (current ? current.subscribe(onChange) : nothing()), [current]);
  const snapshot = useSyncExternalStore(
    subscribe,
    () => (current ? current.getSnapshot() : empty),
    () => empty,
  );

  const actions = useMemo<ChatSessionActions>(
    () => ({
      send: (text, sendOptions) => current?.send(text, sendOptions) ?? null,
      uploadAttachment: (file, onProgress) =>
        current ? current.uploadAttachment(file, onProgress) : Promise.reject(new Error("The session is not open yet.")),
      attachmentUrl: (attachment) =>
        current ? current.attachmentUrl(attachment) : Promise.reject(new Error("The session is not open yet.")),
      retry: (id) => current?.retry(id),
      discard: (id) => current?.discard(id),
      loadOlder: () => current?.loadOlder() ?? Promise.resolve(),
      cancelAgent: (id) => current?.cancelAgent(id) ?? Promise.resolve(null),
      regenerate: (id) => current?.regenerate(id) ?? Promise.resolve(null),
      rateMessage: (id, rating, comment) => current?.rateMessage(id, rating, comment) ?? Promise.resolve(null),
      noteInput: (text) => current?.noteInput(text),
      stopTyping: () => current?.stopTyping(),
      setStatus: (status) => current?.setStatus(status),
      dismissError: () => current?.dismissError(),
      toggleReaction: (id, emoji) => current?.toggleReaction(id, emoji) ?? Promise.resolve(null),
      markRead: (seq) => current?.markRead(seq) ?? Promise.resolve(),
    }),
    [current],
  );
  return useMemo(() => ({ ...snapshot, ...actions, session: current }), [snapshot, actions, current]);
}

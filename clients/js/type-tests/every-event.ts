/**
 * The type test: `npm run typetest` (tsc --noEmit) compiles this against the
 * built @chatserver/client.  It handles every server event and sends every
 * client event with its acknowledgement, through the typed socket and the
 * client's own API.  The handler tables are exhaustive: an event added to
 * the schema fails to compile here until it is handled; a payload field
 * that changes type breaks the lines that read it.
 */

import { ChatClient } from "@chatserver/client";
import type {
  AckResult,
  ChatSocket,
  ClientEventName,
  ClientToServerPayloads,
  ServerEventName,
  ServerToClientPayloads,
} from "@chatserver/client";

type Exhaustive<Names extends string, T extends Record<Names, unknown>> = T;

// --- every server event, through the typed socket -----------------------------------------

const handlers: Exhaustive<ServerEventName, { [E in ServerEventName]: (payload: ServerToClientPayloads[E]) => string }> = {
  "chat:join-session-success": (p) => `${p.sessionId} ${p.workspaceId} ${p.lastSeq.toFixed()} ${p.presence.status} ${p.agentId ?? "-"} ${p.status}`,
  "chat:user-joined": (p) => `${p.userId} ${p.socketId} ${p.lastSeen.toFixed()}`,
  "chat:user-left": (p) => `${p.userId} ${p.socketId} ${p.timestamp.toFixed()}`,
  "chat:message-received": (p) => `${p.id} ${p.seq.toFixed()} ${p.content} ${p.html ?? ""} ${p.senderType} ${p.userId ?? "agent"}`,
  "chat:message-sent": (p) => `${p.messageId} ${p.seq.toFixed()} ${String(p.duplicate)}`,
  "chat:history-response": (p) => `${p.messages.map((m) => m.id).join()} ${String(p.hasMore)} ${p.afterSeq ?? "null"}`,
  "chat:typing-indicator": (p) => `${p.userName} ${String(p.isTyping)} ${p.senderType ?? "user"} ${p.agentId ?? ""}`,
  "chat:presence-updated": (p) => `${p.userId} ${p.status}`,
  "chat:agent-stream-chunk": (p) =>
    `${p.messageId} ${p.chunk} ${p.index.toFixed()} ${String(p.isComplete)} ${p.seq ?? ""} ${p.error?.code ?? ""} ${String(p.cancelled ?? false)} ${p.inReplyTo}`,
  "chat:agent-tool-call": (p) =>
    `${p.messageId} ${p.index.toFixed()} ${p.toolCallId} ${p.name} ${p.argumentsDelta} ${p.status} ${p.result ?? ""}`,
  "chat:agent-reasoning": (p) => `${p.messageId} ${p.index.toFixed()} ${p.text}`,
  "chat:message-hidden": (p) => `${p.messageId}`,
  "chat:message-unhidden": (p) => `${p.messageId} ${p.message.content}`,
  "chat:message-updated": (p) => `${p.messageId} ${p.seq.toFixed()} ${p.version.toFixed()} ${p.message.content} ${String(p.message.deleted ?? false)}`,
  "chat:message-deleted": (p) => `${p.messageId} ${p.seq.toFixed()} ${p.version.toFixed()} ${p.timestamp.toFixed()}`,
  "chat:session-closed": (p) => `${p.sessionId} ${p.closedBy}`,
  "chat:session-updated": (p) => `${p.title} ${p.agentId ?? ""} ${p.status}`,
  "chat:banned": (p) => `${p.workspaceId}`,
  "chat:session-left": (p) => `${p.sessionId} ${p.workspaceId} ${p.code} ${p.message}`,
  "chat:join-session-error": (p) => `${p.code} ${p.error}`,
  "chat:leave-session-error": (p) => `${p.code}`,
  "chat:send-message-error": (p) => `${p.code} ${p.retryAfter ?? 0} ${p.messageId ?? ""}`,
  "chat:request-history-error": (p) => `${p.code}`,
  "chat:typing-error": (p) => `${p.code}`,
  "chat:update-presence-error": (p) => `${p.code}`,
  "chat:cancel-agent-error": (p) => `${p.code}`,
  "chat:reactions-updated": (p) =>
    `${p.messageId} ${p.reactionsVersion.toFixed()} ${p.reactions.map((r) => `${r.emoji}${r.count.toFixed()}${r.users.join()}`).join()} ${p.userId} ${String(p.added)}`,
  "chat:read-updated": (p) => `${p.userId} ${p.seq.toFixed()} ${p.unreadCount.toFixed()}`,
  "chat:add-reaction-error": (p) => `${p.code} ${p.limit ?? 0}`,
  "chat:remove-reaction-error": (p) => `${p.code}`,
  "chat:mark-read-error": (p) => `${p.code}`,
  "chat:regenerate-error": (p) => `${p.code}`,
  "chat:rate-message-error": (p) => `${p.code}`,
  "chat:edit-message-error": (p) => `${p.code} ${p.currentVersion ?? ""}`,
  "chat:delete-message-error": (p) => `${p.code}`,
};

export function listen(socket: ChatSocket): void {
  for (const event of Object.keys(handlers) as ServerEventName[]) {
    socket.on(event, handlers[event] as never);
  }
  socket.on("chat:message-received", (message) => message.content.toUpperCase());
  // @ts-expect-error: not an event of the schema
  socket.on("chat:no-such-event", () => undefined);
}

// --- every client event, with its acknowledgement -------------------------------------------

const requests: Exhaustive<ClientEventName, { [E in ClientEventName]: ClientToServerPayloads[E] }> = {
  "chat:join-session": { sessionId: "s-1", workspaceId: "demo", agentId: "echo" },
  "chat:leave-session": { sessionId: "s-1", workspaceId: "demo" },
  "chat:send-message": { message: { id: "m-1", sessionId: "s-1", content: "hi", contentType: "markdown", metadata: { a: 1 } } },
  "chat:request-history": { sessionId: "s-1", limit: 50, offset: 0, afterSeq: 3 },
  "chat:typing": { sessionId: "s-1", isTyping: true },
  "chat:update-presence": { sessionId: "s-1", status: "idle" },
  "chat:cancel-agent": { sessionId: "s-1", messageId: "r-1" },
  "chat:add-reaction": { sessionId: "s-1", messageId: "m-1", emoji: "👍" },
  "chat:remove-reaction": { sessionId: "s-1", messageId: "m-1", emoji: "👍" },
  "chat:mark-read": { sessionId: "s-1", seq: 3 },
  "chat:regenerate": { sessionId: "s-1", messageId: "r-1", requestId: "q-1" },
  "chat:rate-message": { sessionId: "s-1", messageId: "r-1", rating: null, comment: "meh" },
  "chat:edit-message": { sessionId: "s-1", messageId: "m-1", version: 1, content: "hi again", contentType: "text" },
  "chat:delete-message": { sessionId: "s-1", messageId: "m-1", version: 2 },
};

const acks: { [E in ClientEventName]: (ack: AckResult<E>) => string } = {
  "chat:join-session": (a) => (a.ok ? `${a.lastSeq.toFixed()} ${a.presence.userId}` : a.code),
  "chat:leave-session": (a) => (a.ok ? a.workspaceId : a.error),
  "chat:send-message": (a) => (a.ok ? `${a.seq.toFixed()} ${String(a.duplicate)}` : `${a.code} ${a.retryAfter ?? 0}`),
  "chat:request-history": (a) => (a.ok ? a.messages.map((m) => m.seq.toFixed()).join() : a.code),
  "chat:typing": (a) => (a.ok ? String(a.isTyping) : a.code),
  "chat:update-presence": (a) => (a.ok ? a.status : a.code),
  "chat:cancel-agent": (a) => (a.ok ? `${a.status} ${a.inReplyTo}` : a.code),
  "chat:add-reaction": (a) => (a.ok ? `${a.reactionsVersion.toFixed()} ${a.reactions.length.toFixed()}` : a.code),
  "chat:remove-reaction": (a) => (a.ok ? a.emoji : a.code),
  "chat:mark-read": (a) => (a.ok ? `${a.lastReadSeq.toFixed()} ${a.unreadCount.toFixed()}` : a.code),
  "chat:regenerate": (a) => (a.ok ? `${a.version.toFixed()} ${a.status} ${String(a.duplicate)}` : a.code),
  "chat:rate-message": (a) => (a.ok ? `${a.rating ?? "none"} ${a.feedback.up.toFixed()} ${a.feedback.down.toFixed()}` : a.code),
  "chat:edit-message": (a) => (a.ok ? `${a.version.toFixed()} ${String(a.duplicate)}` : `${a.code} ${a.currentVersion ?? ""}`),
  "chat:delete-message": (a) => (a.ok ? `${a.seq.toFixed()} ${a.version.toFixed()}` : a.code),
};

export async function sendAll(socket: ChatSocket, client: ChatClient): Promise<string[]> {
  const out: string[] = [];
  for (const event of Object.keys(requests) as ClientEventName[]) {
    const viaClient = await client.request(event, requests[event] as never);
    out.push((acks[event] as (ack: typeof viaClient) => string)(viaClient));
  }
  const joined = await socket.timeout(1000).emitWithAck("chat:join-session", requests["chat:join-session"]);
  out.push(joined.ok ? joined.roomId : joined.code);
  socket.emit("chat:typing", { sessionId: "s-1", isTyping: false }, (ack) => out.push(ack.ok ? "typing" : ack.code));
  // @ts-expect-error: isTyping is required
  socket.emit("chat:typing", { sessionId: "s-1" });
  // @ts-expect-error: status is one of active / idle / away
  await client.request("chat:update-presence", { sessionId: "s-1", status: "busy" });
  return out;
}

// --- the session API ------------------------------------------------------------------------

export function useSession(client: ChatClient): void {
  const session = client.session("s-1", "demo", { agentId: "echo" });
  const snapshot = session.getSnapshot();
  for (const item of snapshot.messages) {
    const text: string = item.content;
    const html: string | null = item.html;
    const done: boolean | undefined = item.stream?.done;
    void [text, html, done, item.state satisfies "pending" | "sent" | "failed" | "streaming" | "stored"];
  }
  session.send("hello", { contentType: "markdown", metadata: { x: 1 } });
  void session.cancelAgent("r-1");
  void session.editMessage("m-1", "better", { contentType: "markdown" });
  void session.deleteMessage("m-1");
  for (const item of snapshot.messages) void [item.version.toFixed(), item.editedAt ?? 0, item.deleted satisfies boolean];
  session.release();
}

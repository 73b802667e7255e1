/**
 * @chatserver/client -- a typed client for the chat server's chat:* protocol
 * (docs/protocol.md), on the official socket.io-client.  Framework-free; runs
 * in browsers and in Node.
 *
 *   const client = new ChatClient({ url, getToken }).connect();
 *   const session = client.session("support-1", "demo", { agentId: "echo" });
 *   session.subscribe(() => render(session.getSnapshot()));
 *   session.send("Hello");
 */

export { ChatClient } from "./client.js";
export type {
  ChatClientOptions,
  ChatSocket,
  ConnectionState,
  ConnectionStatus,
  IoFactory,
  TokenSource,
} from "./client.js";
export { ChatSession } from "./session.js";
export type { ErrorScope, SessionError, SessionOptions, SessionSnapshot, SessionStatus } from "./session.js";
export { MessageStore, applyStep, messageSteps } from "./store.js";
export type { ChatErrorInfo, FeedbackInfo, Identity, MessageItem, MessageState, StreamInfo } from "./store.js";
export { NO_REACTIONS, QUICK_REACTIONS, newer as newerReactions, reactionState } from "./reactions.js";
export type { ReactionItem, ReactionState } from "./reactions.js";
export { ReadState } from "./readstate.js";
export { PresenceTracker } from "./presence.js";
export type { Person, Typer } from "./presence.js";
export { ChatRequestError, errorInfo } from "./errors.js";
export { isClientId, newId } from "./ids.js";
export { absolute, attachmentLink, uploadAttachment } from "./attachments.js";
export type { RestTarget, UploadProgress } from "./attachments.js";
export type * from "./events.js";

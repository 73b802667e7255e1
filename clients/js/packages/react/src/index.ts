/**
 * @chatserver/react -- React 18 and 19 bindings for @chatserver/client.
 *
 *   <ChatSocketProvider user={user} getToken={fetchSocketToken}>
 *     <RealTimeChat sessionId="chat-session-1" agentId="echo" workspaceId="demo"
 *                   userId={user.id} userName={user.name} />
 *   </ChatSocketProvider>
 *
 * Styles: import "@chatserver/react/styles.css" (CSS variables, see there).
 */

export { ChatSocketProvider, useChatSocket, useChatSocketContext } from "./context.js";
export type { ChatSocketContextValue, ChatSocketProviderProps, ChatSocketState, ChatUser } from "./context.js";
export { useChatSession } from "./useChatSession.js";
export type { ChatSessionActions, ChatSessionState, UseChatSessionOptions } from "./useChatSession.js";
export { RealTimeChat } from "./RealTimeChat.js";
export type { RealTimeChatProps } from "./RealTimeChat.js";

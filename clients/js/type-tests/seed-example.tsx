/** The seed's frontend example, type-checked against the built @chatserver/react. */

import { ChatSocketProvider, RealTimeChat, useChatSession, useChatSocket } from "@chatserver/react";

export function ChatApp({ getToken }: { getToken: () => Promise<string> }) {
  const user = { id: "user123", name: "John Doe" };
  return (
    <ChatSocketProvider user={user} getToken={getToken}>
      <RealTimeChat
        sessionId="chat-session-1"
        agentId="agent-123"
        workspaceId="workspace-456"
        userId={user.id}
        userName={user.name}
      />
    </ChatSocketProvider>
  );
}

export function Custom() {
  const { status, retryNow } = useChatSocket();
  const chat = useChatSession("chat-session-1", "workspace-456", { agentId: "agent-123" });
  const last = chat.messages.at(-1);
  return (
    <div data-state={status.state} onClick={retryNow}>
      {chat.typing.map((t) => t.name).join(", ")}
      {last?.content}
      <button onClick={() => chat.send("hi", { contentType: "markdown" })}>send</button>
      {last && last.state === "streaming" && <button onClick={() => void chat.cancelAgent(last.id)}>stop</button>}
    </div>
  );
}

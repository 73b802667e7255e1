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

/** Agent replies and files through the hook: upload, send with the attachment, rate, regenerate, links. */
export function WithFiles({ file }: { file: File }) {
  const chat = useChatSession("chat-session-1", "workspace-456");
  const last = chat.messages.at(-1);
  const upload = async () => {
    const attachment = await chat.uploadAttachment(file, (fraction: number) => console.log(fraction));
    chat.send("", { attachments: [attachment] });
    const link: string = await chat.attachmentUrl(attachment);
    return link;
  };
  return (
    <div>
      <RealTimeChat sessionId="chat-session-1" workspaceId="workspace-456" allowAttachments accept="image/*,.pdf" />
      <button onClick={() => void upload()}>attach</button>
      {last?.senderType === "agent" && (
        <>
          <button onClick={() => void chat.rateMessage(last.id, last.feedback?.mine === "up" ? null : "up")}>up</button>
          <button onClick={() => void chat.regenerate(last.id)}>again</button>
        </>
      )}
    </div>
  );
}

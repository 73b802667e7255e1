/**
 * The React bindings under React 18 and 19 (vitest projects react18 / react19):
 * strict mode opens one connection and joins once, server rendering opens none,
 * and messages render as text unless the server sent sanitised html.
 */

import { StrictMode, version } from "react";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeAll, describe, expect, it } from "vitest";

import { chatServer, message, SID, WS } from "../../client/test/fake-server.js";
import { ChatSocketProvider, RealTimeChat, useChatSession, useChatSocket } from "../src/index.js";

let root: Root | null = null;
let container: HTMLElement | null = null;

beforeAll(() => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
});

afterEach(async () => {
  await act(async () => root?.unmount());
  container?.remove();
  root = null;
  container = null;
});

async function render(element: React.ReactElement): Promise<HTMLElement> {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  await act(async () => root!.render(element));
  await settle();
  return container;
}

async function settle(ms = 20): Promise<void> {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

it("runs on the React major its vitest project names", ({ task }) => {
  expect(`react${version.split(".")[0]}`).toBe(task.file.projectName);
});

describe("strict mode", () => {
  it("opens one connection, joins once, and leaves and closes on unmount", async () => {
    const server = chatServer([message(1)]);
    const view = await render(
      <StrictMode>
        <ChatSocketProvider url="http://chat.test" token="chat_x" io={server.io} user={{ id: "ann", name: "Ann" }}>
          <RealTimeChat sessionId={SID} workspaceId={WS} agentId="echo" userId="ann" userName="Ann" />
        </ChatSocketProvider>
      </StrictMode>,
    );
    expect(server.sockets).toHaveLength(1);
    expect(server.sentOf("chat:join-session")).toHaveLength(1);
    expect(server.sentOf("chat:leave-session")).toHaveLength(0);
    expect(view.querySelector('[data-id="m-1"] .rtc-msg__body')?.textContent).toBe("message 1");

    const input = view.querySelector("textarea")!;
    await act(async () => {
      const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value")!.set!;
      setter.call(input, "Hello from React");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await act(async () => {
      view.querySelector<HTMLButtonElement>("button[type=submit]")!.click();
    });
    await settle();
    const sent = server.sentOf("chat:send-message");
    expect(sent.map((p) => p.message.content)).toEqual(["Hello from React"]);
    expect(view.querySelector(`[data-id="${sent[0].message.id}"]`)?.getAttribute("data-state")).toBe("sent");

    await act(async () => root!.unmount());
    root = null;
    await settle();
    expect(server.sentOf("chat:leave-session")).toHaveLength(1);
    expect(server.socket.connected).toBe(false);
  });

  it("shares one connection and one join between components showing the same session", async () => {
    const server = chatServer();
    function Count() {
      const chat = useChatSession(SID, WS);
      const socket = useChatSocket();
      return (
        <p>
          {socket.status.state} {chat.status} {chat.messages.length}
        </p>
      );
    }
    const view = await render(
      <StrictMode>
        <ChatSocketProvider url="http://chat.test" io={server.io}>
          <Count />
          <Count />
        </ChatSocketProvider>
      </StrictMode>,
    );
    expect(server.sockets).toHaveLength(1);
    expect(server.sentOf("chat:join-session")).toHaveLength(1);
    expect([...view.querySelectorAll("p")].map((p) => p.textContent)).toEqual(["connected joined 0", "connected joined 0"]);
  });
});

describe("rendering messages", () => {
  it("shows content as text and only the server's html as html", async () => {
    const server = chatServer([
      message(1, { content: "<img src=x onerror=alert(1)>" }),
      message(2, { contentType: "markdown", content: "**bold**", html: "<p><strong>bold</strong></p>" }),
      message(3, { contentType: "markdown", content: "<script>x</script>", html: null }),
    ]);
    const view = await render(
      <ChatSocketProvider url="http://chat.test" io={server.io}>
        <RealTimeChat sessionId={SID} workspaceId={WS} />
      </ChatSocketProvider>,
    );
    const body = (id: string) => view.querySelector(`[data-id="${id}"] .rtc-msg__body`)!;
    expect(body("m-1").textContent).toBe("<img src=x onerror=alert(1)>");
    expect(body("m-1").querySelector("img")).toBeNull();
    expect(body("m-2").querySelector("strong")?.textContent).toBe("bold");
    expect(body("m-3").textContent).toBe("<script>x</script>");
    expect(view.querySelector("script")).toBeNull();
  });

  it("streams an agent's reply with a Stop button that cancels it", async () => {
    const server = chatServer([message(1)]);
    server.handle("chat:cancel-agent", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, inReplyTo: "m-1", status: "cancelling" }));
    const view = await render(
      <ChatSocketProvider url="http://chat.test" io={server.io}>
        <RealTimeChat sessionId={SID} workspaceId={WS} />
      </ChatSocketProvider>,
    );
    const chunk = { sessionId: SID, workspaceId: WS, messageId: "r-1", agentId: "echo", inReplyTo: "m-1", timestamp: 1, isComplete: false };
    await act(async () => {
      server.push("chat:agent-stream-chunk", { ...chunk, chunk: "Echo:", index: 0 });
      server.push("chat:agent-stream-chunk", { ...chunk, chunk: " hi", index: 1 });
    });
    const row = view.querySelector('[data-id="r-1"]')!;
    expect(row.getAttribute("data-state")).toBe("streaming");
    expect(row.querySelector(".rtc-msg__body")?.textContent).toBe("Echo: hi");
    const stop = [...row.querySelectorAll("button")].find((b) => b.textContent?.startsWith("Stop"))!;
    await act(async () => stop.click());
    await settle();
    expect(server.sentOf("chat:cancel-agent")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-1" }]);
  });
});

describe("reactions", () => {
  it("shows a message's reactions, ours pressed, and toggles one", async () => {
    const server = chatServer([message(1, { reactions: [{ emoji: "👍", count: 1, users: ["bob"] }], reactionsVersion: 1 })]);
    server.handle("chat:add-reaction", () => ({
      ok: true, sessionId: SID, messageId: "m-1", emoji: "👍",
      reactions: [{ emoji: "👍", count: 2, users: ["bob", "ann"] }], reactionsVersion: 2,
    }));
    const view = await render(
      <ChatSocketProvider url="http://chat.test" token="chat_x" io={server.io} user={{ id: "ann", name: "Ann" }}>
        <RealTimeChat sessionId={SID} workspaceId={WS} userId="ann" userName="Ann" />
      </ChatSocketProvider>,
    );
    const thumb = () => view.querySelector<HTMLButtonElement>('[data-id="m-1"] .rtc-reaction[data-emoji="👍"]')!;
    expect(thumb().getAttribute("aria-pressed")).toBe("false");
    expect(thumb().textContent).toBe("👍 1");
    await act(async () => thumb().click());
    await settle();
    expect(server.sentOf("chat:add-reaction")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "m-1", emoji: "👍" }]);
    expect(thumb().getAttribute("aria-pressed")).toBe("true");
    expect(thumb().textContent).toBe("👍 2");
    // A late, older broadcast changes nothing.
    await act(async () =>
      server.push("chat:reactions-updated", {
        sessionId: SID, workspaceId: WS, messageId: "m-1", seq: 1, reactions: [], reactionsVersion: 1,
        userId: "bob", emoji: "👍", added: false, timestamp: 1,
      }),
    );
    expect(thumb().textContent).toBe("👍 2");
  });
});

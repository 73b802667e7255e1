// @vitest-environment node
/** Server rendering (no DOM, as in Next.js): the panel renders and no socket is opened. */

import { renderToString } from "react-dom/server";
import { expect, it } from "vitest";

import { ChatSocketProvider, RealTimeChat } from "../src/index.js";

it("renders the panel without opening a socket", () => {
  let sockets = 0;
  const io = (() => {
    sockets += 1;
    throw new Error("no socket on the server");
  }) as never;
  const html = renderToString(
    <ChatSocketProvider url="http://chat.test" io={io} user={{ id: "ann" }}>
      <RealTimeChat sessionId="s-1" workspaceId="demo" userId="ann" />
    </ChatSocketProvider>,
  );
  expect(typeof window).toBe("undefined");
  expect(sockets).toBe(0);
  expect(html).toContain("<textarea");
  expect(html).toContain("Connecting…");
});

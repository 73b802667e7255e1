/**
 * <RealTimeChat> with agent replies and files, under React 18 and 19: a reply's steps
 * as text (live and stored), thumbs up / down with the ack's counts, Regenerate, Stop;
 * images inline and other files as links, links fetched for files received without one,
 * and uploads with progress that go out with the next message.
 *
 * The socket side is the client's fake server; the REST side (uploads, links) is a real
 * HTTP server on 127.0.0.1 that the page's own XMLHttpRequest and fetch talk to.  happy-dom's
 * XMLHttpRequest sends the upload but reports no upload progress, so the upload test's
 * request (still the real one) reports half of it the way a browser would.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { chatServer, message, SID, WS } from "../../client/test/fake-server.js";
import { ChatSocketProvider, RealTimeChat } from "../src/index.js";

const XSS = "<img src=x onerror=alert(1)>";
const ID = "3f5c0a9e8b7d4c2a9e1f0b6d5c4a3b21";
const DOC = "9a8b7c6d5e4f30211a2b3c4d5e6f7081";
const IMAGE = { id: ID, name: "red <b>.png", contentType: "image/png", size: 120, width: 640, height: 480, url: "/api/v1/attachments/tok-img/" };
const PDF = { id: DOC, name: "report.pdf", contentType: "application/pdf", size: 2048, width: null, height: null, url: "/api/v1/attachments/tok-pdf/" };

// --- the REST side: a real HTTP server -------------------------------------------------------

interface Upload {
  body: string;
  headers: IncomingMessage["headers"];
  release: () => void;
}

let http: Server;
let base = "";
const uploads: Upload[] = [];
const lookups: Array<{ url: string; authorization: string | undefined }> = [];

function cors(request: IncomingMessage, response: ServerResponse): void {
  response.setHeader("Access-Control-Allow-Origin", request.headers.origin ?? "*");
  response.setHeader("Access-Control-Allow-Credentials", "true");
  response.setHeader("Access-Control-Allow-Headers", "Authorization, Accept, Content-Type");
  response.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(JSON.stringify(body));
}

beforeAll(async () => {
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  http = createServer((request, response) => {
    cors(request, response);
    if (request.method === "OPTIONS") {
      response.writeHead(204).end();
      return;
    }
    const path = new URL(request.url ?? "/", "http://x").pathname;
    const sessionPath = `/api/v1/workspaces/${WS}/sessions/${SID}/attachments/`;
    if (request.method === "POST" && path === sessionPath) {
      const parts: Buffer[] = [];
      request.on("data", (part: Buffer) => parts.push(part));
      request.on("end", () => {
        // Held until the test lets it go, so the upload can be seen in progress.
        uploads.push({
          body: Buffer.concat(parts).toString("latin1"),
          headers: request.headers,
          release: () => json(response, 201, IMAGE),
        });
      });
      return;
    }
    if (request.method === "GET" && path.startsWith(sessionPath)) {
      lookups.push({ url: path, authorization: request.headers.authorization });
      const id = path.slice(sessionPath.length).replace(/\/$/, "");
      if (id === DOC) json(response, 200, { ...PDF, url: "/api/v1/attachments/fresh-pdf/" });
      else json(response, 404, { error: "No such attachment.", code: "attachment_not_found" });
      return;
    }
    json(response, 404, { error: "Not found." });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => http.close(resolve));
});

// --- rendering ----------------------------------------------------------------------------------

let root: Root | null = null;
let container: HTMLElement | null = null;

afterEach(async () => {
  await act(async () => root?.unmount());
  container?.remove();
  root = null;
  container = null;
  uploads.length = 0;
  lookups.length = 0;
  vi.unstubAllGlobals();
});

async function settle(ms = 20): Promise<void> {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
  });
}

/** Wait (in act) until `check` holds, up to `ms`. */
async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await settle(10);
  }
}

async function show(server: ReturnType<typeof chatServer>): Promise<HTMLElement> {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  await act(async () =>
    root!.render(
      <ChatSocketProvider url={base} token="chat_x" io={server.io} user={{ id: "ann", name: "Ann" }}>
        <RealTimeChat sessionId={SID} workspaceId={WS} userId="ann" userName="Ann" />
      </ChatSocketProvider>,
    ),
  );
  await settle();
  return container;
}

const button = (scope: ParentNode, action: string) => scope.querySelector<HTMLButtonElement>(`button[data-action="${action}"]`);

function agentReply(seq: number, fields: Record<string, unknown> = {}) {
  return message(seq, { id: `r-${seq}`, senderType: "agent", userId: null, userName: "Echo", content: "Done.", ...fields });
}

const reply = { sessionId: SID, workspaceId: WS, messageId: "r-9", agentId: "echo", inReplyTo: "m-1", timestamp: 1 };

describe("an agent reply's steps", () => {
  it("shows tool calls and reasoning as they stream, every field as text", async () => {
    const server = chatServer([message(1, { userId: "ann" })]);
    const view = await show(server);
    await act(async () => {
      server.push("chat:agent-reasoning", { ...reply, index: 0, text: "Look it " });
      server.push("chat:agent-reasoning", { ...reply, index: 1, text: "up <b>now</b>." });
      server.push("chat:agent-tool-call", {
        ...reply, index: 2, toolCallId: "call-1", name: "search<script>", argumentsDelta: '{"q": "', status: "started",
      });
      server.push("chat:agent-tool-call", {
        ...reply, index: 3, toolCallId: "call-1", name: "search<script>", argumentsDelta: `${XSS}"}`, status: "completed", result: XSS,
      });
      server.push("chat:agent-stream-chunk", { ...reply, index: 4, chunk: "Found it.", isComplete: false });
    });
    const row = view.querySelector('[data-id="r-9"]')!;
    expect(row.getAttribute("data-state")).toBe("streaming");
    const steps = [...row.querySelectorAll<HTMLDetailsElement>("details.rtc-step")];
    expect(steps.map((step) => step.dataset.stepKey)).toEqual(["reasoning:0", "tool:call-1"]);
    expect(steps[0]!.querySelector("summary")!.textContent).toBe("Reasoning");
    expect(steps[0]!.querySelector("pre")!.textContent).toBe("Look it up <b>now</b>.");
    expect(steps[1]!.dataset.status).toBe("completed");
    expect(steps[1]!.querySelector("summary")!.textContent).toBe("Tool search<script> done");
    expect([...steps[1]!.querySelectorAll("pre")].map((pre) => pre.textContent)).toEqual([`{"q": "${XSS}"}`, XSS]);
    expect(row.querySelector("img, script, b")).toBeNull();
    // Collapsed until opened; an opened step stays open as the reply goes on.
    expect(steps[1]!.open).toBe(false);
    await act(async () => steps[1]!.querySelector("summary")!.click());
    expect(steps[1]!.open).toBe(true);
    await act(async () => server.push("chat:agent-stream-chunk", { ...reply, index: 5, chunk: " Bye.", isComplete: false }));
    expect(row.querySelector<HTMLDetailsElement>('details[data-step-key="tool:call-1"]')!.open).toBe(true);
    expect(row.querySelector(".rtc-msg__body")!.textContent).toBe("Found it. Bye.");
  });

  it("shows a stored reply's steps from history, as text", async () => {
    const steps = [
      { type: "tool", toolCallId: "call-1", name: "fetch", arguments: XSS, status: "failed", result: "<svg onload=alert(1)>" },
      { type: "reasoning", text: "<iframe src=javascript:alert(1)>" },
    ];
    const server = chatServer([message(1), agentReply(2, { metadata: { steps } })]);
    const view = await show(server);
    const row = view.querySelector('[data-id="r-2"]')!;
    const texts = [...row.querySelectorAll(".rtc-step pre")].map((pre) => pre.textContent);
    expect(texts).toEqual([XSS, "<svg onload=alert(1)>", "<iframe src=javascript:alert(1)>"]);
    expect(row.querySelector('details[data-step-key="tool:call-1"] .rtc-step__status')!.textContent).toBe("failed");
    expect(row.querySelector("img, svg:not([aria-hidden]), iframe")).toBeNull();
  });
});

describe("an agent reply's controls", () => {
  it("rates a reply, shows our rating and the counts from the ack, and takes it back", async () => {
    const server = chatServer([message(1), agentReply(2)]);
    let stored: "up" | "down" | null = null;
    server.handle("chat:rate-message", (p) => {
      stored = p.rating;
      return {
        ok: true, sessionId: SID, messageId: p.messageId, rating: p.rating, comment: "",
        feedback: { up: 2 + (p.rating === "up" ? 1 : 0), down: p.rating === "down" ? 1 : 0 },
      };
    });
    const view = await show(server);
    const row = view.querySelector('[data-id="r-2"]')!;
    expect(button(row, "rate-up")!.getAttribute("aria-pressed")).toBe("false");
    expect(button(row, "rate-up")!.getAttribute("aria-label")).toBe("Good reply");
    await act(async () => button(row, "rate-up")!.click());
    await settle();
    expect(server.sentOf("chat:rate-message")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-2", rating: "up" }]);
    expect(button(row, "rate-up")!.getAttribute("aria-pressed")).toBe("true");
    expect(button(row, "rate-up")!.getAttribute("aria-label")).toBe("Good reply, 3");
    expect(button(row, "rate-up")!.textContent).toBe("3");
    expect(button(row, "rate-down")!.getAttribute("aria-pressed")).toBe("false");
    // Pressed again: the rating is taken back.
    await act(async () => button(row, "rate-up")!.click());
    await settle();
    expect(server.sentOf("chat:rate-message")[1]).toMatchObject({ messageId: "r-2", rating: null });
    expect(stored).toBeNull();
    expect(button(row, "rate-up")!.getAttribute("aria-pressed")).toBe("false");
    await act(async () => button(row, "rate-down")!.click());
    await settle();
    expect(button(row, "rate-down")!.getAttribute("aria-pressed")).toBe("true");
    expect(button(row, "rate-down")!.getAttribute("aria-label")).toBe("Bad reply, 1");
    // Only agents' replies have them.
    expect(view.querySelector('[data-id="m-1"] .rtc-reply-tools')).toBeNull();
  });

  it("regenerates a reply, and Stop (focused in its place) cancels the new answer", async () => {
    const server = chatServer([message(1, { userId: "ann" }), agentReply(2, { metadata: { inReplyTo: "m-1" } })]);
    server.handle("chat:regenerate", (p) => ({
      ok: true, sessionId: SID, messageId: p.messageId, inReplyTo: "m-1", requestId: p.requestId, version: 2, status: "pending", duplicate: false,
    }));
    server.handle("chat:cancel-agent", (p) => ({ ok: true, sessionId: SID, messageId: p.messageId, inReplyTo: "m-1", status: "cancelling" }));
    const view = await show(server);
    const row = view.querySelector('[data-id="r-2"]')!;
    expect(button(row, "stop")).toBeNull();
    const regenerate = button(row, "regenerate")!;
    expect(regenerate.getAttribute("aria-label")).toBe("Regenerate this reply");
    regenerate.focus();
    await act(async () => regenerate.click());
    await settle();
    const [request] = server.sentOf("chat:regenerate");
    expect(request).toMatchObject({ sessionId: SID, workspaceId: WS, messageId: "r-2" });
    expect(typeof request.requestId).toBe("string");

    const chunk = { ...reply, messageId: "r-2", version: 2, isComplete: false };
    await act(async () => server.push("chat:agent-stream-chunk", { ...chunk, index: 0, chunk: "Again" }));
    expect(row.getAttribute("data-state")).toBe("streaming");
    expect(button(row, "regenerate")).toBeNull();
    expect(button(row, "rate-up")).toBeNull();
    const stop = button(row, "stop")!;
    expect(stop.getAttribute("aria-label")).toBe("Stop the reply");
    expect(document.activeElement).toBe(stop);
    await act(async () => stop.click());
    await settle();
    expect(server.sentOf("chat:cancel-agent")).toEqual([{ sessionId: SID, workspaceId: WS, messageId: "r-2" }]);
  });
});

describe("attachments", () => {
  it("shows an image inline and another file as a link, from their own links", async () => {
    const server = chatServer([message(1, { attachments: [IMAGE, PDF] })]);
    const view = await show(server);
    const row = view.querySelector('[data-id="m-1"]')!;
    const image = row.querySelector<HTMLImageElement>(`[data-attachment-id="${ID}"] img`)!;
    expect(image.getAttribute("src")).toBe(`${base}/api/v1/attachments/tok-img/`);
    expect(image.getAttribute("alt")).toBe("red <b>.png");
    expect([image.getAttribute("width"), image.getAttribute("height")]).toEqual(["320", "240"]);
    const file = row.querySelector<HTMLAnchorElement>(`[data-attachment-id="${DOC}"] a`)!;
    expect(file.getAttribute("href")).toBe(`${base}/api/v1/attachments/tok-pdf/`);
    expect(file.textContent).toBe("report.pdf (2 KB)");
    expect(file.querySelector("img")).toBeNull();
    expect(row.querySelector("b")).toBeNull();
    expect(lookups).toEqual([]); // their own links: nothing asked for
  });

  it("asks the server for a link of a file received live without one, and says so when there is none", async () => {
    const server = chatServer([message(1)]);
    const view = await show(server);
    await act(async () =>
      server.push("chat:message-received", message(2, { attachments: [{ ...PDF, url: null }, { ...IMAGE, id: "0".repeat(32), url: null }] })),
    );
    const row = view.querySelector('[data-id="m-2"]')!;
    await until(() => row.querySelector(`[data-attachment-id="${DOC}"] a`) !== null);
    expect(row.querySelector(`[data-attachment-id="${DOC}"] a`)!.getAttribute("href")).toBe(`${base}/api/v1/attachments/fresh-pdf/`);
    expect(lookups.find((l) => l.url.endsWith(`/${DOC}/`))?.authorization).toBe("Bearer chat_x");
    await until(() => row.querySelector(".rtc-attachment__unavailable") !== null);
    expect(row.querySelector(".rtc-attachment__unavailable")!.textContent).toContain("red <b>.png (120 B) is not available.");
    expect(row.querySelector(`[data-attachment-id="${"0".repeat(32)}"] img`)).toBeNull();
  });

  it("uploads a picked file with progress, then sends it with the message", async () => {
    const Real = globalThis.XMLHttpRequest;
    vi.stubGlobal(
      "XMLHttpRequest",
      class extends Real {
        override send(body?: Document | XMLHttpRequestBodyInit | null): void {
          super.send(body);
          this.upload.dispatchEvent(new ProgressEvent("progress", { lengthComputable: true, loaded: 2, total: 4 }));
        }
      },
    );
    const server = chatServer([message(1)]);
    const view = await show(server);
    const attach = view.querySelector<HTMLButtonElement>('button[aria-label="Attach a file"]')!;
    expect(attach.disabled).toBe(false);
    const input = view.querySelector<HTMLInputElement>("input[type=file]")!;
    const file = new File([new Uint8Array([137, 80, 78, 71])], "red <b>.png", { type: "image/png" });
    await act(async () => {
      Object.defineProperty(input, "files", { configurable: true, value: [file] });
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    await until(() => uploads.length === 1);
    const progress = view.querySelector<HTMLProgressElement>("progress.rtc-upload__progress")!;
    expect(progress.getAttribute("aria-label")).toBe("Uploading red <b>.png");
    expect(progress.value).toBe(0.5);
    expect(view.querySelector(".rtc-upload__percent")!.textContent).toBe("50%");
    expect(view.querySelector(".rtc-upload")!.getAttribute("data-state")).toBe("uploading");
    const send = view.querySelector<HTMLButtonElement>("button[type=submit]")!;
    expect(send.disabled).toBe(true);
    expect(uploads[0]!.headers.authorization).toBe("Bearer chat_x");
    expect(uploads[0]!.body).toContain('name="file"');

    await act(async () => uploads[0]!.release());
    await until(() => view.querySelector(".rtc-upload")?.getAttribute("data-state") === "ready");
    expect(view.querySelector("progress")).toBeNull();
    expect(view.querySelector('button[aria-label="Remove red <b>.png"]')).not.toBeNull();
    expect(send.disabled).toBe(false);
    await act(async () => send.click());
    await settle();
    const [sent] = server.sentOf("chat:send-message");
    expect(sent.message).toMatchObject({ content: "red <b>.png", attachments: [ID] });
    expect(view.querySelector(".rtc-uploads")).toBeNull();
    const row = view.querySelector(`[data-id="${sent.message.id}"]`)!;
    expect(row.querySelector("img")!.getAttribute("src")).toBe(`${base}/api/v1/attachments/tok-img/`);
  });
});

/** Attachments: uploads with progress (XMLHttpRequest) or fetch, refusals as ChatRequestError, sends and links. */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { uploadAttachment } from "../src/attachments.js";
import { ChatClient } from "../src/client.js";
import { ChatRequestError } from "../src/errors.js";
import { chatServer, message, SID, WS } from "./fake-server.js";

const ID = "3f5c0a9e8b7d4c2a9e1f0b6d5c4a3b21";
const ATTACHMENT = { id: ID, name: "red.png", contentType: "image/png", size: 120, width: 4, height: 3, url: "/api/v1/attachments/tok/" };
const TARGET = { base: "http://chat.test", headers: { Authorization: "Bearer chat_x" } };

/** An XMLHttpRequest that records what was sent and answers with `status`/`response` after two progress events. */
class FakeXhr {
  static last: FakeXhr | null = null;
  static status = 201;
  static response: unknown = ATTACHMENT;
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: unknown = null;
  withCredentials = false;
  responseType = "";
  status = 0;
  response: unknown = null;
  private listeners = new Map<string, (event?: unknown) => void>();
  private progress: ((event: { lengthComputable: boolean; loaded: number; total: number }) => void) | null = null;
  upload = { addEventListener: (_: string, listener: any) => (this.progress = listener) };

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  addEventListener(name: string, listener: (event?: unknown) => void) {
    this.listeners.set(name, listener);
  }
  send(body: unknown) {
    this.body = body;
    FakeXhr.last = this;
    queueMicrotask(() => {
      this.progress?.({ lengthComputable: true, loaded: 60, total: 120 });
      this.progress?.({ lengthComputable: true, loaded: 120, total: 120 });
      this.status = FakeXhr.status;
      this.response = FakeXhr.response;
      this.listeners.get("load")?.();
    });
  }
}

afterEach(() => {
  vi.unstubAllGlobals();
  FakeXhr.status = 201;
  FakeXhr.response = ATTACHMENT;
});

describe("uploading", () => {
  it("posts one multipart file part with the credentials and reports progress", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    const progress: number[] = [];
    const file = new File([new Uint8Array([137, 80, 78, 71])], "red.png", { type: "image/png" });
    const attachment = await uploadAttachment(TARGET, WS, SID, file, (fraction) => progress.push(fraction));
    const sent = FakeXhr.last!;
    expect([sent.method, sent.url]).toEqual(["POST", `http://chat.test/api/v1/workspaces/${WS}/sessions/${SID}/attachments/`]);
    expect(sent.headers.Authorization).toBe("Bearer chat_x");
    expect((sent.body as FormData).get("file")).toBeInstanceOf(File);
    expect(((sent.body as FormData).get("file") as File).name).toBe("red.png");
    expect(progress).toEqual([0.5, 1]);
    expect(attachment.url).toBe("http://chat.test/api/v1/attachments/tok/"); // absolute
  });

  it("rejects with the server's code", async () => {
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
    FakeXhr.status = 415;
    FakeXhr.response = { error: "Files of this type are not accepted here.", code: "attachment_type_not_allowed" };
    const upload = uploadAttachment(TARGET, WS, SID, new Blob(["<html>"]));
    await expect(upload).rejects.toBeInstanceOf(ChatRequestError);
    await expect(upload).rejects.toMatchObject({ code: "attachment_type_not_allowed" });
  });

  it("uses fetch where there is no XMLHttpRequest (Node)", async () => {
    vi.stubGlobal("XMLHttpRequest", undefined);
    const fetch = vi.fn(async () => new Response(JSON.stringify({ error: "Too big.", code: "attachment_too_large", maxBytes: 10 }), { status: 413 }));
    vi.stubGlobal("fetch", fetch);
    await expect(uploadAttachment(TARGET, WS, SID, new Blob(["x".repeat(20)]))).rejects.toMatchObject({ code: "attachment_too_large" });
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe(`http://chat.test/api/v1/workspaces/${WS}/sessions/${SID}/attachments/`);
    expect(init.method).toBe("POST");
    expect(init.body).toBeInstanceOf(FormData);
  });
});

describe("sending and showing", () => {
  let clients: ChatClient[] = [];

  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    for (const client of clients) client.close();
    clients = [];
    vi.useRealTimers();
  });

  function connect(server: ReturnType<typeof chatServer>) {
    const client = new ChatClient({ url: "http://chat.test", token: "chat_x", io: server.io });
    clients.push(client);
    return client.connect();
  }

  it("sends the attachments' ids, keeps them on the entry, and names them when nothing was typed", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await vi.advanceTimersByTimeAsync(0);
    const item = session.send("  ", { attachments: [ATTACHMENT] })!;
    expect(item.content).toBe("red.png");
    expect(item.attachments).toEqual([ATTACHMENT]);
    await vi.advanceTimersByTimeAsync(0);
    expect(server.sentOf("chat:send-message")[0].message).toMatchObject({ id: item.id, content: "red.png", attachments: [ID] });
    expect(session.getSnapshot().messages[0]).toMatchObject({ state: "sent", attachments: [ATTACHMENT] });
  });

  it("stores a live message's attachments and asks for a link when it came without one", async () => {
    const server = chatServer();
    const session = connect(server).session(SID, WS);
    await vi.advanceTimersByTimeAsync(0);
    server.push("chat:message-received", message(1, { attachments: [{ ...ATTACHMENT, url: null }] }));
    await vi.advanceTimersByTimeAsync(0);
    const [received] = session.getSnapshot().messages;
    expect(received.attachments).toEqual([{ ...ATTACHMENT, url: null }]);
    const fetch = vi.fn(async () => new Response(JSON.stringify({ ...ATTACHMENT, url: "/api/v1/attachments/fresh/" })));
    vi.stubGlobal("fetch", fetch);
    await expect(session.attachmentUrl(received.attachments[0])).resolves.toBe("http://chat.test/api/v1/attachments/fresh/");
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe(`http://chat.test/api/v1/workspaces/${WS}/sessions/${SID}/attachments/${ID}/`);
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer chat_x");
    await expect(session.attachmentUrl(ATTACHMENT)).resolves.toBe("http://chat.test/api/v1/attachments/tok/");
  });
});

// Two users chat with the echo agent through @chatserver/client in Node: one
// loads the ESM build with an API token, the other the CommonJS build with a
// token callback.  Reads {url, workspace, session, tokens: {alice, bob},
// clientDir} on stdin; prints what each saw as JSON.

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const { url, workspace, session, tokens, clientDir } = input;
const esm = await import(pathToFileURL(`${clientDir}/dist/esm/index.js`).href);
const cjs = createRequire(import.meta.url)(`${clientDir}/dist/cjs/index.js`);

async function until(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = check();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const alice = new esm.ChatClient({ url, token: tokens.alice }).connect();
let issued = 0;
const bob = new cjs.ChatClient({ url, getToken: async () => (issued += 1, tokens.bob) }).connect();
const a = alice.session(session, workspace, { agentId: "echo" });
await until(() => a.getSnapshot().initialLoaded, "alice's join");
const b = bob.session(session, workspace);
await until(() => b.getSnapshot().initialLoaded, "bob's join");

const streamed = [];
a.subscribe(() => {
  for (const item of a.getSnapshot().messages) {
    if (item.state === "streaming" && streamed.at(-1) !== item.content) streamed.push(item.content);
  }
});
const typingSeen = [];
a.subscribe(() => {
  const names = a.getSnapshot().typing.map((typer) => typer.name).join(",");
  if (names && typingSeen.at(-1) !== names) typingSeen.push(names);
});

b.noteInput("hel");
await until(() => typingSeen.includes("bob"), "alice to see bob typing");
b.send("hello from bob");
await until(() => a.getSnapshot().messages.some((m) => m.content === "hello from bob"), "bob's message at alice");
await until(() => a.getSnapshot().messages.some((m) => m.content === "Echo: hello from bob" && m.state === "stored"), "the reply to bob");
a.send("hello from node");
const done = (snapshot) => snapshot.messages.filter((m) => m.senderType === "agent" && m.state === "stored").length === 2;
await until(() => done(a.getSnapshot()) && done(b.getSnapshot()), "both agent replies on both sides");

const view = (s) => s.getSnapshot().messages.map((m) => ({ seq: m.seq, content: m.content, state: m.state, sender: m.senderType, mine: m.mine }));
const result = {
  alice: view(a),
  bob: view(b),
  presenceAtAlice: a.getSnapshot().presence.map((p) => p.userId),
  streamed,
  typingSeen,
  tokensIssued: issued,
  socketIds: [alice.socketId !== null, bob.socketId !== null],
};
a.release();
b.release();
await new Promise((resolve) => setTimeout(resolve, 50));
alice.close();
bob.close();
console.log(JSON.stringify(result));

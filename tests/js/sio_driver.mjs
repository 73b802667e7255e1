// A scripted client around the official socket.io-client, for the Python tests.
//
// Reads one JSON script on stdin:
//   {url, options?, replies?, steps: [...]}
// options go to io() (transports, upgrade, path...; reconnection defaults to
// false); replies maps an event name to the arguments this client answers
// with when the server asks for an ack (default: the event's own arguments).
//
// Steps ("ns" defaults to "/"):
//   {"do":"connect","ns":"/custom","auth":{...},"timeoutMs":5000}
//   {"do":"emit","ns":"/","event":"message","args":[...],"ack":true,"timeoutMs":5000}
//   {"do":"wait","ns":"/","event":"message-back","timeoutMs":5000}  next unseen such event
//   {"do":"waitDisconnect","ns":"/","timeoutMs":5000}
//   {"do":"waitUpgrade","timeoutMs":5000}      until the engine runs on WebSocket
//   {"do":"disconnect","ns":"/"}               without ns: every namespace
//   {"do":"sleep","ms":100}
//   {"do":"transport"}                         {transport, sid} of the engine
//   {"do":"get","path":"/socket.io/?EIO=4&transport=polling&sid=$sid","timeoutMs":5000}
//                                              raw HTTP GET -> {status, body}; $sid is the last recorded engine sid
//
// Binary values are written {"$bin":"<base64>"} both ways.  Prints one JSON
// object: {events, acks, results, connectErrors, disconnects, transport}.
// A wait that times out is a result {"timeout":true}; only a malformed
// script makes the process fail.

import { io } from "socket.io-client";

const toWire = (value) => {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { $bin: Buffer.from(value).toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  return value;
};

const fromWire = (value) => {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
  }
  return value;
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves with check()'s first truthy value, or {timeout: true}.
const until = async (check, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() >= deadline) return { timeout: true };
    await sleep(5);
  }
};

const readStdin = async () => {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
};

const script = await readStdin();
if (typeof script.url !== "string" || !Array.isArray(script.steps)) {
  throw new Error("script needs a url and a list of steps");
}

const options = { reconnection: false, ...(script.options || {}) };
const replies = script.replies || {};
const out = { events: [], acks: [], results: [], connectErrors: [], disconnects: [], transport: null };
const sockets = new Map();
const seen = new Map(); // "ns event" -> how many such events wait steps consumed
let sid = null;
let manager = null;

const socketFor = (ns) => {
  const socket = sockets.get(ns);
  if (!socket) throw new Error(`step uses namespace ${ns} before connecting it`);
  return socket;
};

const open = (ns, auth) => {
  const socket = manager ? manager.socket(ns, auth ? { auth } : {}) : io(script.url + (ns === "/" ? "" : ns), auth ? { ...options, auth } : options);
  manager = manager || socket.io;
  sockets.set(ns, socket);
  socket.onAny((event, ...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : null;
    out.events.push({ ns, name: event, args: toWire(args), ...(ack ? { ackRequested: true } : {}) });
    if (ack) ack(...(event in replies ? fromWire(replies[event]) : args));
  });
  socket.on("connect_error", (error) => out.connectErrors.push({ ns, message: error.message, data: toWire(error.data ?? null) }));
  socket.on("disconnect", (reason) => out.disconnects.push({ ns, reason }));
  return socket;
};

const steps = {
  async connect({ ns = "/", auth, timeoutMs }) {
    const errors = out.connectErrors.length;
    const socket = open(ns, auth);
    return until(
      () => (socket.connected ? { connected: true } : out.connectErrors.length > errors ? { connected: false, error: out.connectErrors.at(-1).message } : null),
      timeoutMs,
    );
  },
  async emit({ ns = "/", event, args = [], ack = false, timeoutMs = 5000 }) {
    const socket = socketFor(ns);
    if (!ack) {
      socket.emit(event, ...fromWire(args));
      return { sent: true };
    }
    return new Promise((resolve) => {
      socket.timeout(timeoutMs).emit(event, ...fromWire(args), (error, ...response) => {
        if (error) return resolve({ timeout: true });
        out.acks.push({ ns, event, args: toWire(response) });
        resolve({ ack: toWire(response) });
      });
    });
  },
  async wait({ ns = "/", event, timeoutMs }) {
    const key = `${ns} ${event}`;
    const index = seen.get(key) || 0;
    const result = await until(() => out.events.filter((e) => e.ns === ns && e.name === event)[index], timeoutMs);
    if (!result.timeout) seen.set(key, index + 1);
    return result.timeout ? result : { args: result.args };
  },
  async waitDisconnect({ ns = "/", timeoutMs }) {
    return until(() => out.disconnects.find((d) => d.ns === ns), timeoutMs);
  },
  async waitUpgrade({ timeoutMs }) {
    return until(() => (manager?.engine?.transport?.name === "websocket" ? { transport: "websocket" } : null), timeoutMs);
  },
  async disconnect({ ns }) {
    for (const [name, socket] of sockets) if (ns === undefined || ns === name) socket.disconnect();
    return { disconnected: true };
  },
  async sleep({ ms }) {
    await sleep(ms);
    return {};
  },
  async transport() {
    sid = manager?.engine?.id ?? sid;
    return { transport: manager?.engine?.transport?.name ?? null, sid };
  },
  async get({ path, timeoutMs = 5000 }) {
    const url = new URL(path.replace("$sid", encodeURIComponent(sid ?? "")), script.url);
    let response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      return { timeout: true };
    }
    const text = await response.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: response.status, body };
  },
};

for (const step of script.steps) {
  const run = steps[step.do];
  if (!run) throw new Error(`unknown step ${JSON.stringify(step)}`);
  out.results.push(await run(step));
}

out.transport = manager?.engine?.transport?.name ?? null;
process.stdout.write(JSON.stringify(out) + "\n");
for (const socket of sockets.values()) socket.disconnect();
process.exit(0);

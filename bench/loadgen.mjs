// Load generator for Socket.IO room broadcast, on the official socket.io-client.
//
//   node bench/loadgen.mjs --config cfg.json --out result.json
//   node bench/loadgen.mjs --url http://127.0.0.1:8000 --mode plain --clients 200 --room-size 10
//
// N clients are split into rooms of K (room r = clients r*K .. r*K+K-1) and
// spread over worker threads room by room, so the sender and every receiver
// of a message live in the same thread and one clock times it.  Every client
// uses its own Engine.IO connection (forceNew) over the websocket transport,
// or long-polling only (--transports polling: no upgrade).
//
// Modes:
//   chat   our chat protocol: connect with auth {token}, chat:join-session,
//          chat:send-message {message: {id, sessionId, content, metadata: {t}}};
//          a delivery is chat:message-received at another member of the session,
//          the sender's confirmation is chat:message-sent.
//          With --with-reactions, every message sent also makes one reaction
//          in its room, at the same rate: another member toggles its emoji
//          (add, then remove next time) on the room's newest confirmed
//          message; and a third marks the room read up to it, unless it marked
//          within the last second (the widget and the JS client mark a busy
//          session read at most once a second, so a member reading along
//          marks about once a second).  Their
//          error events fail the step like a send's; chat:reactions-updated and
//          chat:read-updated are counted (reactionUpdates, readUpdates).
//   plain  the reference: "join" {room} (acked), "broadcast" {room, id, t, content};
//          the server forwards "broadcast" to the room except the sender and
//          answers the sender with "sent" {id}.
//   idle   connect --clients sockets (chat: with a token, no join), print
//          {"event":"idle-connected"} on stdout, hold --hold-ms, disconnect.
//
// --connect-only: connect and join (chat or plain), time each client from
// io() to its join ack ("connectJoinMs"), then disconnect: with
// --connect-concurrency at least the clients per worker thread, every client
// connects and joins at once.
//
// Load: messages are sent per room at `rate` msgs/s, the sender rotating
// through the room's members.  First an "idle" step (--idle-s: everyone
// connected, nothing sent: the server's background CPU, measured by the
// driver), then a warm-up (not counted).  With --fixed-rate R --fixed-steps
// N: N measured steps at R msgs/s per room (a chosen load).  Otherwise the
// rate is raised step by step (x --factor) while a step passes, then bisected
// --refine times between the last pass and the first failure; a failed step
// is re-run --retries times before it counts.  A step passes when, for the messages
// sent in it: p99 latency <= --threshold-ms, nothing lost (every other member
// got it within --drain-ms after the step), nothing duplicated or misrouted,
// no error event, and the achieved send rate is within 3% of the target.
// Each step also reports a per-second timeline (deliveries, mean and max
// latency by send time) to tell a steady overload from a periodic stall.
//
// Output: JSON lines on stdout for the driver (phase, step-start, step-end,
// idle-connected); progress on stderr; the full result in --out.
// Everything is bounded: steps (--max-steps), connects (timeouts) and the
// whole run (--max-run-s, after which it writes what it has and exits 2).

import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { performance, monitorEventLoopDelay } from "node:perf_hooks";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const DEFAULTS = {
  url: "http://127.0.0.1:8000",
  path: "/socket.io/",
  mode: "plain", // chat | plain | idle
  clients: 200,
  roomSize: 10,
  workers: 2,
  transports: ["websocket"], // or ["polling"]: long-polling only, never upgraded
  connectOnly: false, // connect and join, time it, disconnect (no steps)
  withReactions: false, // chat: a reaction per message sent, and marks read as the clients do (see Modes)
  tokens: [], // chat/idle-chat: one per client, reused round-robin if fewer
  tokensFile: null,
  idleAuth: false, // idle mode: send auth {token} (our server needs it)
  workspace: "bench",
  sessionPrefix: "bench",
  contentBytes: 100,
  connectConcurrency: 25, // in flight per worker
  connectTimeoutMs: 20000,
  joinTimeoutMs: 20000,
  idleS: 3, // a step with every client connected and nothing sent: the server's background CPU
  warmupS: 5,
  warmupRate: null, // msgs/s per room during warm-up (default: startRate)
  startRate: 2, // msgs/s per room
  factor: 1.5,
  refine: 2,
  retries: 0, // a failed step is run again this many times before it counts as a failure
  maxSteps: 16,
  stepS: 10,
  drainMs: 3000,
  thresholdMs: 200,
  fixedRate: null, // measured steps at this rate per room, no ramp
  fixedSteps: 1,
  holdMs: 5000, // idle mode
  maxRunS: 900,
  out: null,
};

const WORDS = (
  "the quick brown fox jumps over a lazy dog while we ship the release on friday after " +
  "lunch please review my change to the parser and tell me what you think about latency " +
  "numbers from yesterday meeting notes agenda budget coffee deploy rollback ticket"
).split(" ");

const nowAbs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- statistics -------------------------------------------------------------------------

function percentiles(values) {
  const n = values.length;
  if (n === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const r = (x) => Math.round(x * 100) / 100;
  return { count: n, p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(sorted[n - 1]), mean: r(sum / n) };
}

function concat(arrays) {
  let total = 0;
  for (const a of arrays) total += a.length;
  const out = new Float64Array(total);
  let off = 0;
  for (const a of arrays) {
    out.set(a, off);
    off += a.length;
  }
  return out;
}

class Samples {
  constructor() {
    this.buf = new Float64Array(4096);
    this.n = 0;
  }
  push(x) {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = x;
  }
  take() {
    const out = this.buf.slice(0, this.n);
    this.n = 0;
    return out;
  }
}

// --- worker: the clients of some rooms ---------------------------------------------------

async function workerMain() {
  const { io } = await import("socket.io-client");
  const cfg = workerData.cfg;
  const index = workerData.index;
  const mode = cfg.mode;
  const K = cfg.roomSize;
  // Message text: ordinary words, different for every message, so content
  // filters (character floods, repeated messages) see normal chat.
  let rng = 0x9e3779b9 ^ (index + 1);
  const nextWord = () => {
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return WORDS[(rng >>> 0) % WORDS.length];
  };
  const contentFor = (id) => {
    let text = `message ${id}:`;
    while (text.length < cfg.contentBytes) text += " " + nextWord();
    return text.slice(0, Math.max(1, cfg.contentBytes));
  };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const rooms = []; // {r, name, members: [client], next, sent, phase}
  const clients = [];
  const pending = new Map(); // id -> {t, room, sender, mask, count, acked, step}
  const retired = new Set(); // ids given up on (counted lost); a late arrival is counted as late
  let seq = 0;
  // Per second of the step (by send time): [deliveries, latency sum, latency max],
  // to see whether slow deliveries are spread out or come in periodic stalls.
  let timeline = [];
  let stepStart = null;
  const counters = () => ({
    sent: 0,
    expected: 0,
    delivered: 0,
    duplicates: 0,
    misrouted: 0,
    echoed: 0,
    errors: 0,
    unknown: 0,
    late: 0,
    confirmed: 0,
    disconnects: 0,
    reactionsSent: 0,
    readsSent: 0,
    reactionUpdates: 0,
    readUpdates: 0,
  });
  let c = counters();
  const latencies = new Samples();
  const confirmLatencies = new Samples();
  const errorSamples = [];

  for (const r of workerData.rooms) {
    const room = { r, name: `${cfg.sessionPrefix}-r${r}`, members: [], next: 0, sent: 0, phase: 0, lastSeq: 0, lastId: null };
    for (let pos = 0; pos < workerData.roomSizes[r]; pos++) {
      const globalIndex = r * K + pos;
      const client = { globalIndex, pos, room, socket: null, connectMs: null, joinMs: null, connectJoinMs: null };
      room.members.push(client);
      clients.push(client);
    }
    rooms.push(room);
  }

  const tokenFor = (i) => (cfg.tokens.length ? cfg.tokens[i % cfg.tokens.length] : undefined);

  function onDelivery(client, id) {
    const rec = pending.get(id);
    if (rec === undefined) {
      if (retired.has(id)) c.late++;
      else c.unknown++;
      return;
    }
    if (rec.room !== client.room) {
      c.misrouted++;
      return;
    }
    if (client.pos === rec.sender) {
      c.echoed++;
      return;
    }
    if (rec.mask[client.pos]) {
      c.duplicates++;
      return;
    }
    rec.mask[client.pos] = 1;
    rec.count++;
    c.delivered++;
    const latency = nowAbs() - rec.t;
    latencies.push(latency);
    if (stepStart !== null) {
      const second = Math.max(0, Math.min(timeline.length - 1, Math.floor((rec.t - stepStart) / 1000)));
      timeline[second][0]++;
      timeline[second][1] += latency;
      if (latency > timeline[second][2]) timeline[second][2] = latency;
    }
    if (rec.count === rec.expected && rec.acked) pending.delete(id);
  }

  function onConfirm(id, seqNo) {
    const rec = pending.get(id);
    if (rec === undefined || rec.acked) return;
    if (typeof seqNo === "number" && seqNo > rec.room.lastSeq) {
      rec.room.lastSeq = seqNo;
      rec.room.lastId = id;
    }
    rec.acked = true;
    c.confirmed++;
    confirmLatencies.push(nowAbs() - rec.t);
    if (rec.count === rec.expected) pending.delete(id);
  }

  function onError(payload) {
    c.errors++;
    if (errorSamples.length < 5) errorSamples.push(payload);
  }

  function connectOne(client) {
    return new Promise((resolve) => {
      const started = nowAbs();
      const opts = {
        path: cfg.path,
        transports: cfg.transports,
        upgrade: cfg.transports.includes("websocket"),
        forceNew: true,
        reconnection: false,
        timeout: cfg.connectTimeoutMs,
      };
      const token = tokenFor(client.globalIndex);
      if (mode === "chat" || (mode === "idle" && cfg.idleAuth)) opts.auth = { token };
      const socket = io(cfg.url, opts);
      client.socket = socket;
      let settled = false;
      const done = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(error);
      };
      const timer = setTimeout(() => done("timeout"), cfg.connectTimeoutMs + cfg.joinTimeoutMs);
      socket.on("connect_error", (err) => done(`connect_error: ${err?.message}`));
      socket.on("disconnect", () => {
        c.disconnects++;
      });
      if (mode === "chat") {
        socket.on("chat:message-received", (shape) => onDelivery(client, shape?.id));
        socket.on("chat:message-sent", (conf) => onConfirm(conf?.messageId, conf?.seq));
        socket.on("chat:send-message-error", onError);
        socket.on("chat:join-session-error", onError);
        if (cfg.withReactions) {
          socket.on("chat:add-reaction-error", onError);
          socket.on("chat:remove-reaction-error", onError);
          socket.on("chat:mark-read-error", onError);
          socket.on("chat:reactions-updated", () => c.reactionUpdates++);
          socket.on("chat:read-updated", () => c.readUpdates++);
        }
      } else if (mode === "plain") {
        socket.on("broadcast", (data) => onDelivery(client, data?.id));
        socket.on("sent", (data) => onConfirm(data?.id));
      }
      socket.once("connect", () => {
        client.connectMs = nowAbs() - started;
        if (mode === "idle") return done(null);
        const joinStarted = nowAbs();
        const finish = (err, res) => {
          if (err) return done(`join: ${err.message || err}`);
          if (mode === "chat" && !(res && res.ok)) return done(`join refused: ${JSON.stringify(res)}`);
          client.joinMs = nowAbs() - joinStarted;
          client.connectJoinMs = nowAbs() - started;
          done(null);
        };
        const s = socket.timeout(cfg.joinTimeoutMs);
        if (mode === "chat") {
          s.emit("chat:join-session", { sessionId: client.room.name, workspaceId: cfg.workspace }, finish);
        } else {
          s.emit("join", { room: client.room.name }, finish);
        }
      });
    });
  }

  async function connectAll() {
    const started = nowAbs();
    const failures = [];
    let next = 0;
    const lane = async () => {
      while (next < clients.length) {
        const client = clients[next++];
        const error = await connectOne(client);
        if (error) failures.push({ client: client.globalIndex, error });
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency, clients.length) }, lane));
    return {
      wallMs: nowAbs() - started,
      connectMs: clients.map((x) => x.connectMs).filter((x) => x !== null),
      joinMs: clients.map((x) => x.joinMs).filter((x) => x !== null),
      connectJoinMs: clients.map((x) => x.connectJoinMs).filter((x) => x !== null),
      failures,
    };
  }

  function sendOne(room) {
    const sender = room.members[room.next];
    room.next = (room.next + 1) % room.members.length;
    const id = `m${index}x${seq++}`;
    const t = nowAbs();
    const expected = room.members.length - 1;
    pending.set(id, { t, room, sender: sender.pos, mask: new Uint8Array(K), count: 0, expected, acked: false });
    c.sent++;
    c.expected += expected;
    if (mode === "chat") {
      sender.socket.emit("chat:send-message", {
        message: { id, sessionId: room.name, content: contentFor(id), metadata: { t, bench: 1 } },
      });
      if (cfg.withReactions) reactAndRead(room);
    } else {
      sender.socket.emit("broadcast", { room: room.name, id, t, content: contentFor(id) });
    }
  }

  // --with-reactions: the two members after the sender react to and read the room's newest confirmed message.
  const READ_INTERVAL_MS = 1000; // as the clients: at most one mark a second per member
  const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "👀", "🙏", "🔥"];
  function reactAndRead(room) {
    if (room.lastId === null || room.members.length < 2) return;
    const n = room.members.length;
    const reactor = room.members[room.next % n];
    const reader = room.members[(room.next + 1) % n];
    const emoji = EMOJI[reactor.pos % EMOJI.length];
    // Toggle, so no member ever nears the per-message caps: add on this message, remove on the next turn.
    const add = reactor.reacted !== room.lastId;
    const messageId = add ? room.lastId : reactor.reacted;
    reactor.reacted = add ? room.lastId : null;
    reactor.socket.emit(add ? "chat:add-reaction" : "chat:remove-reaction", { sessionId: room.name, messageId, emoji });
    c.reactionsSent++;
    const now = nowAbs();
    if (now - (reader.markedAt ?? -Infinity) >= READ_INTERVAL_MS) {
      reader.markedAt = now;
      reader.socket.emit("chat:mark-read", { sessionId: room.name, seq: room.lastSeq });
      c.readsSent++;
    }
  }

  // Sends `rate` msgs/s per room for durationMs from startAt, then waits for
  // deliveries up to drainMs; returns the step's numbers.
  async function runStep({ stepIndex, rate, durationMs, startAt, drainMs }) {
    c = counters();
    latencies.take();
    confirmLatencies.take();
    errorSamples.length = 0;
    // Each room has its own phase in [0, 1), so rooms do not send in lock-step
    // and a fractional rate x duration still adds up over all rooms.
    let planned = 0;
    for (const room of rooms) {
      room.sent = 0;
      room.phase = ((room.r * 0.6180339887) % 1 + 1) % 1;
      room.total = Math.floor((rate * durationMs) / 1000 + room.phase);
      planned += room.total;
    }
    while (nowAbs() < startAt) await sleep(Math.min(5, Math.max(0, startAt - nowAbs())));
    timeline = Array.from({ length: Math.ceil(durationMs / 1000) + 1 }, () => [0, 0, 0]);
    stepStart = nowAbs();
    loopDelay.reset();
    const elu0 = performance.eventLoopUtilization();
    const t0 = nowAbs();
    // The send loop: every tick sends what each room is due; bounded by time and count.
    for (;;) {
      const elapsed = nowAbs() - t0;
      const clamped = Math.min(elapsed, durationMs);
      let behind = false;
      for (const room of rooms) {
        const due = Math.min(room.total, Math.floor((rate * clamped) / 1000 + room.phase));
        while (room.sent < due) {
          sendOne(room);
          room.sent++;
        }
        if (room.sent < room.total) behind = true;
      }
      if (elapsed >= durationMs) break;
      await sleep(behind ? 2 : Math.min(20, durationMs - elapsed));
    }
    const sendMs = nowAbs() - t0;
    // Drain: wait for this step's messages, bounded by drainMs.
    const drainStart = nowAbs();
    while (nowAbs() - drainStart < drainMs) {
      if (pending.size === 0) break;
      await sleep(10);
    }
    const drainedMs = nowAbs() - drainStart;
    const elu = performance.eventLoopUtilization(elu0);
    let lost = 0;
    let unconfirmed = 0;
    const lostSamples = [];
    for (const [id, rec] of pending) {
      lost += rec.expected - rec.count;
      if (!rec.acked) unconfirmed++;
      if (rec.count < rec.expected && lostSamples.length < 10) {
        // Which message, how far into the step, and which members did not get it.
        const missing = rec.room.members.filter((m) => m.pos !== rec.sender && !rec.mask[m.pos]).map((m) => m.pos);
        lostSamples.push({ id, room: rec.room.name, sentAtMs: Math.round(rec.t - stepStart), acked: rec.acked, missing });
      }
      retired.add(id);
    }
    pending.clear();
    stepStart = null;
    const lat = latencies.take();
    const conf = confirmLatencies.take();
    return {
      type: "step",
      stepIndex,
      planned,
      counters: { ...c, lost, unconfirmed },
      sendMs,
      drainedMs,
      latencies: lat,
      confirmLatencies: conf,
      elu: elu.utilization,
      timeline,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      errors: errorSamples.slice(),
      lostSamples,
    };
  }

  async function waitQuiet(quietMs, maxMs) {
    // After a failing step the server may still be working off a backlog:
    // wait until nothing has arrived for quietMs (bounded by maxMs).
    const start = nowAbs();
    let last = c.late + c.unknown + c.delivered;
    let lastChange = nowAbs();
    while (nowAbs() - start < maxMs) {
      await sleep(100);
      const seen = c.late + c.unknown + c.delivered;
      if (seen !== last) {
        last = seen;
        lastChange = nowAbs();
      } else if (nowAbs() - lastChange >= quietMs) break;
    }
    return { waitedMs: nowAbs() - start, late: c.late };
  }

  parentPort.on("message", async (msg) => {
    try {
      if (msg.cmd === "connect") {
        const r = await connectAll();
        parentPort.postMessage({ type: "connected", ...r });
      } else if (msg.cmd === "step") {
        const r = await runStep(msg);
        parentPort.postMessage(r, [r.latencies.buffer, r.confirmLatencies.buffer]);
      } else if (msg.cmd === "quiet") {
        const r = await waitQuiet(msg.quietMs, msg.maxMs);
        parentPort.postMessage({ type: "quiet", ...r });
      } else if (msg.cmd === "close") {
        for (const client of clients) client.socket?.close();
        await sleep(200);
        parentPort.postMessage({ type: "closed", disconnects: c.disconnects });
      }
    } catch (error) {
      parentPort.postMessage({ type: "error", error: String(error?.stack || error) });
    }
  });
  parentPort.postMessage({ type: "ready" });
}

// --- main thread: the schedule -----------------------------------------------------------

function parseArgs(argv) {
  const cfg = { ...DEFAULTS };
  const camel = (s) => s.replace(/-([a-z])/g, (_, ch) => ch.toUpperCase());
  let fileCfg = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config") fileCfg = JSON.parse(readFileSync(argv[++i], "utf8"));
  }
  Object.assign(cfg, fileCfg);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    if (arg === "--config") {
      i++;
      continue;
    }
    const key = camel(arg.slice(2));
    if (!(key in DEFAULTS)) throw new Error(`unknown option ${arg}`);
    const raw = argv[++i];
    const def = DEFAULTS[key];
    cfg[key] = typeof def === "number" || (def === null && /^-?[0-9.]+$/.test(raw)) ? Number(raw) : raw;
  }
  if (cfg.tokensFile) cfg.tokens = readFileSync(cfg.tokensFile, "utf8").split(/\s+/).filter(Boolean);
  if (typeof cfg.idleAuth === "string") cfg.idleAuth = cfg.idleAuth === "true" || cfg.idleAuth === "1";
  if (!["chat", "plain", "idle"].includes(cfg.mode)) throw new Error(`unknown mode ${cfg.mode}`);
  if (cfg.mode === "chat" && cfg.tokens.length === 0) throw new Error("chat mode needs tokens");
  if (cfg.mode !== "idle" && cfg.roomSize < 2) throw new Error("room size must be at least 2");
  if (typeof cfg.transports === "string") cfg.transports = cfg.transports.split(",");
  if (!cfg.transports.length || cfg.transports.some((t) => !["websocket", "polling"].includes(t))) {
    throw new Error(`transports must be websocket and/or polling, not ${cfg.transports}`);
  }
  if (typeof cfg.connectOnly === "string") cfg.connectOnly = cfg.connectOnly === "true" || cfg.connectOnly === "1";
  if (typeof cfg.withReactions === "string") cfg.withReactions = cfg.withReactions === "true" || cfg.withReactions === "1";
  return cfg;
}

const emitLine = (obj) => process.stdout.write(JSON.stringify({ ...obj, at: Date.now() }) + "\n");
const log = (...args) => process.stderr.write(`[loadgen] ${args.join(" ")}\n`);

class Pool {
  constructor(cfg) {
    this.cfg = cfg;
    const K = cfg.roomSize;
    const roomCount = Math.ceil(cfg.clients / K);
    const nWorkers = Math.max(1, Math.min(cfg.workers, roomCount));
    this.roomCount = roomCount;
    this.workers = [];
    this.waiters = [];
    const roomSizes = Array.from({ length: roomCount }, (_, r) => Math.min(K, cfg.clients - r * K));
    for (let w = 0; w < nWorkers; w++) {
      const rooms = [];
      for (let r = w; r < roomCount; r += nWorkers) rooms.push(r);
      const worker = new Worker(fileURLToPath(import.meta.url), {
        workerData: { cfg, index: w, rooms, roomSizes, workers: nWorkers },
      });
      const entry = { worker, inbox: [], wake: null };
      worker.on("message", (m) => {
        entry.inbox.push(m);
        if (entry.wake) entry.wake();
      });
      worker.on("error", (e) => {
        entry.inbox.push({ type: "error", error: String(e?.stack || e) });
        if (entry.wake) entry.wake();
      });
      this.workers.push(entry);
    }
  }
  async next(entry, type) {
    for (;;) {
      const i = entry.inbox.findIndex((m) => m.type === type || m.type === "error");
      if (i >= 0) {
        const m = entry.inbox.splice(i, 1)[0];
        if (m.type === "error") throw new Error(`worker failed: ${m.error}`);
        return m;
      }
      await new Promise((resolve) => (entry.wake = resolve));
      entry.wake = null;
    }
  }
  async all(msg, type) {
    for (const e of this.workers) if (msg) e.worker.postMessage(msg);
    return Promise.all(this.workers.map((e) => this.next(e, type)));
  }
  async terminate() {
    await Promise.all(this.workers.map((e) => e.worker.terminate()));
  }
}

function summarizeConnect(parts) {
  return {
    wallMs: Math.round(Math.max(...parts.map((p) => p.wallMs))),
    connected: parts.reduce((n, p) => n + p.connectMs.length, 0),
    joined: parts.reduce((n, p) => n + p.joinMs.length, 0),
    connectMs: percentiles(concat(parts.map((p) => Float64Array.from(p.connectMs)))),
    joinMs: percentiles(concat(parts.map((p) => Float64Array.from(p.joinMs)))),
    connectJoinMs: percentiles(concat(parts.map((p) => Float64Array.from(p.connectJoinMs)))),
    failures: parts.flatMap((p) => p.failures).slice(0, 20),
    failureCount: parts.reduce((n, p) => n + p.failures.length, 0),
  };
}

async function runStep(pool, cfg, stepIndex, rate, label) {
  const seconds0 = { warmup: cfg.warmupS, idle: cfg.idleS }[label] ?? cfg.stepS;
  const durationMs = Math.round(seconds0 * 1000);
  const startAt = nowAbs() + 100;
  emitLine({ event: "step-start", step: stepIndex, label, ratePerRoom: rate });
  const parts = await pool.all({ cmd: "step", stepIndex, rate, durationMs, startAt, drainMs: cfg.drainMs }, "step");
  const sum = (key) => parts.reduce((n, p) => n + p.counters[key], 0);
  const counters = {};
  for (const key of Object.keys(parts[0].counters)) counters[key] = sum(key);
  const seconds = durationMs / 1000;
  // What the schedule sends (about rate x duration per room).
  const target = parts.reduce((n, p) => n + p.planned, 0) / seconds;
  const sendMs = Math.max(...parts.map((p) => p.sendMs));
  const lat = percentiles(concat(parts.map((p) => p.latencies)));
  const confirm = percentiles(concat(parts.map((p) => p.confirmLatencies)));
  const achieved = counters.sent / seconds;
  const problems = [];
  if (label === "idle") {
    // connected, nothing sent: the server's background cost
  } else if (lat.p99 === null || lat.p99 > cfg.thresholdMs) problems.push(`p99 ${lat.p99} ms > ${cfg.thresholdMs} ms`);
  if (counters.lost > 0) problems.push(`${counters.lost} lost`);
  if (counters.duplicates > 0) problems.push(`${counters.duplicates} duplicated`);
  if (counters.misrouted > 0 || counters.echoed > 0) problems.push(`${counters.misrouted + counters.echoed} misrouted`);
  if (counters.errors > 0) {
    const codes = [...new Set(parts.flatMap((p) => p.errors).map((e) => e?.code ?? "?"))].join(",");
    problems.push(`${counters.errors} error events (${codes})`);
  }
  if (counters.disconnects > 0) problems.push(`${counters.disconnects} disconnects`);
  if (achieved < 0.97 * target) problems.push(`sent ${achieved.toFixed(1)}/s of ${target.toFixed(1)}/s`);
  if (sendMs > durationMs * 1.1 + 500) problems.push(`send loop overran (${Math.round(sendMs)} ms)`);
  const result = {
    step: stepIndex,
    label,
    ratePerRoom: rate,
    targetSendsPerSec: target,
    durationS: seconds,
    sendsPerSec: Math.round(achieved * 10) / 10,
    deliveredPerSec: Math.round((counters.delivered / seconds) * 10) / 10,
    expectedDeliveries: counters.expected,
    counters,
    latencyMs: lat,
    confirmLatencyMs: confirm,
    drainMs: Math.round(Math.max(...parts.map((p) => p.drainedMs))),
    loadgen: {
      eventLoopUtilization: parts.map((p) => Math.round(p.elu * 1000) / 1000),
      loopDelayP99Ms: parts.map((p) => Math.round(p.loopDelayP99Ms * 10) / 10),
    },
    errorSamples: parts.flatMap((p) => p.errors).slice(0, 5),
    lostSamples: parts.flatMap((p) => p.lostSamples).slice(0, 10),
    // Per second of the step: deliveries, mean and max latency (ms) of the messages sent in it.
    timeline: parts[0].timeline.map((_, i) => {
      const n = parts.reduce((a, p) => a + p.timeline[i][0], 0);
      const sum = parts.reduce((a, p) => a + p.timeline[i][1], 0);
      const max = Math.max(...parts.map((p) => p.timeline[i][2]));
      return { s: i, deliveries: n, meanMs: n ? Math.round(sum / n) : null, maxMs: Math.round(max) };
    }),
    passed: problems.length === 0,
    problems,
  };
  emitLine({
    event: "step-end",
    step: stepIndex,
    label,
    passed: result.passed,
    deliveredPerSec: result.deliveredPerSec,
    p99: lat.p99,
  });
  log(
    `${label} ${stepIndex}: ${rate}/s/room -> sent ${result.sendsPerSec}/s delivered ${result.deliveredPerSec}/s ` +
      `p50 ${lat.p50} p95 ${lat.p95} p99 ${lat.p99} ms lost ${counters.lost} dup ${counters.duplicates} ` +
      `elu ${result.loadgen.eventLoopUtilization.join("/")} ${result.passed ? "PASS" : "FAIL: " + problems.join("; ")}`,
  );
  return result;
}

async function mainThread() {
  const argv = process.argv.slice(2);
  const cfg = parseArgs(argv);
  const started = Date.now();
  const result = {
    tool: "bench/loadgen.mjs",
    client: "socket.io-client",
    config: { ...cfg, tokens: cfg.tokens.length ? `${cfg.tokens.length} tokens` : [] },
    startedAt: new Date(started).toISOString(),
  };
  const write = () => {
    result.elapsedS = Math.round((Date.now() - started) / 100) / 10;
    if (cfg.out) writeFileSync(cfg.out, JSON.stringify(result, null, 2));
    else process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  };
  const killer = setTimeout(() => {
    result.error = `run exceeded --max-run-s ${cfg.maxRunS}`;
    write();
    process.exit(2);
  }, cfg.maxRunS * 1000);
  killer.unref();

  let pool;
  try {
    pool = new Pool(cfg);
    await pool.all(null, "ready");
    emitLine({ event: "phase", phase: "connect", clients: cfg.clients });
    const connect = summarizeConnect(await pool.all({ cmd: "connect" }, "connected"));
    result.connect = connect;
    log(
      `connected ${connect.connected}/${cfg.clients} in ${connect.wallMs} ms ` +
        `(connect p50 ${connect.connectMs.p50} p99 ${connect.connectMs.p99} ms` +
        (cfg.mode === "idle" ? ")" : `, join p50 ${connect.joinMs.p50} p99 ${connect.joinMs.p99} ms)`),
    );
    if (connect.failureCount > 0) throw new Error(`${connect.failureCount} clients failed to connect: ${JSON.stringify(connect.failures.slice(0, 3))}`);

    if (cfg.mode === "idle") {
      emitLine({ event: "idle-connected", clients: connect.connected });
      await sleep(cfg.holdMs);
    } else if (cfg.connectOnly) {
      log(`connect+join p50 ${connect.connectJoinMs.p50} p99 ${connect.connectJoinMs.p99} ms`);
    } else {
      const steps = [];
      result.steps = steps;
      let index = 0;
      if (cfg.idleS > 0) result.idle = await runStep(pool, cfg, index++, 0, "idle");
      if (cfg.warmupS > 0) {
        result.warmup = await runStep(pool, cfg, index++, cfg.warmupRate ?? cfg.startRate, "warmup");
        if (!result.warmup.passed) await pool.all({ cmd: "quiet", quietMs: 1000, maxMs: 15000 }, "quiet");
      }
      const deadline = started + cfg.maxRunS * 1000 * 0.9;
      const fits = () => Date.now() + (cfg.stepS * 1000 + cfg.drainMs + 2000) < deadline;
      const round = (x) => Math.round(x * 100) / 100;
      if (cfg.fixedRate) {
        for (let i = 0; i < cfg.fixedSteps && fits(); i++) {
          if (i > 0) await pool.all({ cmd: "quiet", quietMs: 1000, maxMs: 15000 }, "quiet");
          steps.push(await runStep(pool, cfg, index++, cfg.fixedRate, "fixed"));
        }
      } else {
        let pass = null;
        let fail = null;
        let rate = cfg.startRate;
        // A failure is confirmed by --retries re-runs at the same rate: one
        // stall of the shared machine must not end the ramp of either server.
        const measure = async (at, label) => {
          let s = await runStep(pool, cfg, index++, at, label);
          steps.push(s);
          for (let r = 0; !s.passed && r < cfg.retries && steps.length < cfg.maxSteps && fits(); r++) {
            await pool.all({ cmd: "quiet", quietMs: 1000, maxMs: 15000 }, "quiet");
            s = await runStep(pool, cfg, index++, at, "retry");
            steps.push(s);
          }
          return s;
        };
        while (steps.length < cfg.maxSteps && fits()) {
          const s = await measure(rate, "ramp");
          if (s.passed) pass = s;
          else {
            fail = s;
            break;
          }
          rate = round(rate * cfg.factor);
        }
        for (let i = 0; fail && i < cfg.refine && steps.length < cfg.maxSteps && fits(); i++) {
          await pool.all({ cmd: "quiet", quietMs: 1000, maxMs: 15000 }, "quiet");
          const low = pass ? pass.ratePerRoom : 0;
          const mid = round((low + fail.ratePerRoom) / 2);
          if (mid <= low || mid >= fail.ratePerRoom) break;
          const s = await measure(mid, "refine");
          if (s.passed) pass = s;
          else fail = s;
        }
      }
      const passing = steps.filter((s) => s.passed);
      const best = passing.sort((a, b) => b.deliveredPerSec - a.deliveredPerSec)[0] || null;
      result.best = best;
      result.summary = best
        ? {
            maxDeliveredPerSec: best.deliveredPerSec,
            maxSendsPerSec: best.sendsPerSec,
            ratePerRoom: best.ratePerRoom,
            latencyMs: best.latencyMs,
            confirmLatencyMs: best.confirmLatencyMs,
          }
        : { maxDeliveredPerSec: 0, note: "no step passed" };
      result.totals = {
        lost: steps.reduce((n, s) => n + s.counters.lost, 0),
        duplicates: steps.reduce((n, s) => n + s.counters.duplicates, 0),
        misrouted: steps.reduce((n, s) => n + s.counters.misrouted + s.counters.echoed, 0),
        errors: steps.reduce((n, s) => n + s.counters.errors, 0),
      };
    }
    emitLine({ event: "phase", phase: "close" });
    await pool.all({ cmd: "close" }, "closed");
  } catch (error) {
    result.error = String(error?.message || error);
    log(`error: ${result.error}`);
  }
  write();
  if (pool) await pool.terminate();
  emitLine({ event: "done", ok: !result.error });
  process.exit(result.error ? 1 : 0);
}

if (isMainThread) {
  mainThread().catch((error) => {
    process.stderr.write(`[loadgen] fatal: ${error?.stack || error}\n`);
    process.exit(1);
  });
} else {
  workerMain().catch((error) => {
    parentPort.postMessage({ type: "error", error: String(error?.stack || error) });
  });
}

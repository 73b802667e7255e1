/**
 * One Socket.IO connection (the official socket.io-client, global `io`) and its state for people.
 *
 * States, shown by the connection banner:
 *   connecting   -- the first attempt
 *   connected
 *   reconnecting -- the connection was lost; socket.io-client retries with backoff
 *   offline      -- the browser says it has no network; we retry when it comes back
 *   failed       -- the server refused who we are (`connect_error` "unauthenticated"),
 *                   or removed us; retrying cannot help
 *
 * Authentication: without `getToken` the site's session cookie is used (the
 * page at /).  With it, every connection attempt asks for a fresh one-time
 * token (the widget): a token is good for one connection only, so a
 * reconnect needs a new one.
 *
 * Requests use acknowledgements with a timeout.  Nothing is left in
 * socket.io-client's send buffer while disconnected: a request made then
 * fails at once (`offline`), and the caller decides what to do after the
 * next "connect" event (rejoin, resend with the same ids).
 */

export const ConnectionState = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  FAILED: "failed",
});

const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** After a refused token, try once more with a new one before giving up. */
const MAX_AUTH_RETRIES = 1;
/** After the server closed our socket (not a ban), wait this long before connecting again. */
const SERVER_DISCONNECT_RETRY_MS = 1_000;
/** After a refused connection (connection_limit), wait this long before trying again. */
const REFUSED_RETRY_MS = 10_000;

export class RequestError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class Connection extends EventTarget {
  /**
   * @param {object} options
   * @param {string} [options.url] the server, default this page's origin
   * @param {() => Promise<string>|string} [options.getToken] one-time token source (widget)
   */
  constructor({ url, path = "/socket.io/", getToken = null, ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS, io } = {}) {
    super();
    this.url = url;
    this.path = path;
    this.getToken = getToken;
    this.ackTimeoutMs = ackTimeoutMs;
    this.io = io ?? globalThis.io;
    this.state = ConnectionState.CONNECTING;
    this.detail = {};
    this.everConnected = false;
    this.socket = null;
    this._authFailures = 0;
    this._ended = false;
  }

  get connected() {
    return Boolean(this.socket?.connected);
  }

  get id() {
    return this.socket?.id ?? null;
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  start() {
    if (typeof this.io !== "function") {
      this._setState(ConnectionState.FAILED, {
        reason: "no_client",
        message: "The chat client did not load. Reload the page.",
      });
      return this;
    }
    const options = {
      path: this.path,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5_000,
      timeout: 10_000,
    };
    if (this.getToken) options.auth = (callback) => this._auth(callback);
    this.socket = this.url ? this.io(this.url, options) : this.io(options);
    const manager = this.socket.io;

    this.socket.on("connect", () => {
      const first = !this.everConnected;
      this.everConnected = true;
      this._authFailures = 0;
      this._setState(ConnectionState.CONNECTED, { recovered: !first });
      this.dispatchEvent(new CustomEvent("connect", { detail: { first } }));
    });
    this.socket.on("disconnect", (reason) => {
      this.socket.sendBuffer = []; // never replay stale requests before we rejoin
      this.dispatchEvent(new CustomEvent("disconnect", { detail: { reason } }));
      if (this._ended) return;
      if (reason === "io client disconnect") return;
      this._lost();
      if (reason === "io server disconnect") {
        // The server closed this socket (a restart, a removal).  socket.io-client does not retry
        // these by itself; a removal comes with its own event and ends() us first.
        setTimeout(() => {
          if (!this._ended && !this.socket.connected) this.socket.connect();
        }, SERVER_DISCONNECT_RETRY_MS);
      }
    });
    this.socket.on("connect_error", (error) => this._connectError(error));
    manager.on("reconnect_attempt", (attempt) => {
      if (this.state !== ConnectionState.OFFLINE) this._setState(ConnectionState.RECONNECTING, { attempt });
    });
    globalThis.addEventListener?.("offline", () => {
      if (!this.connected && !this._ended) this._setState(ConnectionState.OFFLINE);
    });
    globalThis.addEventListener?.("online", () => {
      if (!this.connected && !this._ended) this.retryNow();
    });
    return this;
  }

  _lost() {
    const offline = globalThis.navigator?.onLine === false;
    this._setState(offline ? ConnectionState.OFFLINE : ConnectionState.RECONNECTING, { attempt: 0 });
  }

  _auth(callback) {
    Promise.resolve()
      .then(() => this.getToken())
      .then(
        (token) => callback({ token: typeof token === "string" ? token : "" }),
        (error) => {
          this._tokenError = error;
          callback({ token: "" });
        },
      );
  }

  _connectError(error) {
    const data = error?.data ?? {};
    if (data.code === "unauthenticated" || data.code === "invalid_packet") {
      // Refused by the server: socket.io-client will not retry this by itself.
      if (this.getToken && data.code === "unauthenticated" && this._authFailures < MAX_AUTH_RETRIES) {
        this._authFailures += 1;
        setTimeout(() => this.socket.connect(), 300);
        return;
      }
      const message = this.getToken
        ? "The chat could not sign you in. Reload the page to try again."
        : "You are no longer logged in.";
      this.end(ConnectionState.FAILED, { reason: data.reason || data.code, message, login: !this.getToken });
      return;
    }
    if (data.code === "connection_limit" || data.code === "rate_limited") {
      // Refused for now (too many tabs, too many attempts): socket.io-client will not retry these.
      const message =
        data.code === "connection_limit"
          ? "Too many open chat windows. Close one; retrying…"
          : "Too many connection attempts; retrying shortly…";
      this._setState(ConnectionState.RECONNECTING, { attempt: 0, message });
      setTimeout(() => {
        if (!this._ended && !this.socket.connected) this.socket.connect();
      }, data.retryAfter ?? REFUSED_RETRY_MS);
      return;
    }
    // A transport failure: the manager retries with backoff.
    if (globalThis.navigator?.onLine === false) this._setState(ConnectionState.OFFLINE);
    else if (this.everConnected || this.state === ConnectionState.RECONNECTING) {
      this._setState(ConnectionState.RECONNECTING, { attempt: this.detail.attempt ?? 0 });
    } else this._setState(ConnectionState.CONNECTING, { retrying: true });
  }

  /** Stop for good (a removal, a refused login): the banner says why. */
  end(state = ConnectionState.FAILED, detail = {}) {
    this._ended = true;
    this.socket?.disconnect();
    this._setState(state, detail);
  }

  /** Skip the backoff wait ("Retry now", the network came back). */
  retryNow() {
    if (this._ended || !this.socket || this.socket.connected) return;
    this.socket.disconnect();
    this.socket.connect();
    this._setState(this.everConnected ? ConnectionState.RECONNECTING : ConnectionState.CONNECTING, { attempt: 0 });
  }

  on(event, handler) {
    this.socket.on(event, handler);
  }

  off(event, handler) {
    this.socket?.off(event, handler);
  }

  /**
   * Emit with an acknowledgement; resolves with the ack (`{ok: true, ...}` or `{ok: false, code, ...}`).
   * Rejects with RequestError `offline` (not connected) or `timeout` (no answer in time).
   */
  async request(event, payload, timeoutMs = this.ackTimeoutMs) {
    if (!this.connected) throw new RequestError("offline", "Not connected.");
    try {
      return await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch {
      throw new RequestError(this.connected ? "timeout" : "offline", "No answer from the server.");
    }
  }
}

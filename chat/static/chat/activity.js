/**
 * The user's own presence status from their activity: active, then idle, then away.
 *
 * Activity is any key press, pointer move or press, scroll wheel, touch, or
 * the page becoming visible again.  Without any, the status turns `idle`
 * after `idleAfterMs` (2 minutes on this site) and `away` after
 * `awayAfterMs` (10 minutes); the next activity makes it `active` again at
 * once.  A hidden tab has no activity, so it drifts to idle and away too.
 * Dispatches "change" with `detail.status` on every change (and only then).
 */

export const Status = Object.freeze({ ACTIVE: "active", IDLE: "idle", AWAY: "away" });

const ACTIVITY_EVENTS = ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"];
/** Pointer moves come in floods: look at most this often. */
const THROTTLE_MS = 500;

export class ActivityMonitor extends EventTarget {
  constructor({ idleAfterMs = 120_000, awayAfterMs = 600_000, target = globalThis, doc = globalThis.document } = {}) {
    super();
    this.idleAfterMs = idleAfterMs;
    this.awayAfterMs = Math.max(awayAfterMs, idleAfterMs);
    this.target = target;
    this.doc = doc;
    this.status = Status.ACTIVE;
    this._last = 0;
    this._timers = [];
    this._onActivity = () => this.activity();
    this._onVisibility = () => {
      if (this.doc.visibilityState === "visible") this.activity();
    };
  }

  start() {
    for (const name of ACTIVITY_EVENTS) this.target.addEventListener(name, this._onActivity, { passive: true, capture: true });
    this.doc?.addEventListener("visibilitychange", this._onVisibility);
    this.activity(true);
    return this;
  }

  stop() {
    for (const name of ACTIVITY_EVENTS) this.target.removeEventListener(name, this._onActivity, { capture: true });
    this.doc?.removeEventListener("visibilitychange", this._onVisibility);
    this._clear();
  }

  _clear() {
    this._timers.forEach(clearTimeout);
    this._timers = [];
  }

  _set(status) {
    if (status === this.status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("change", { detail: { status } }));
  }

  /** Something the user did: active now, and the clocks start again. */
  activity(force = false) {
    const now = Date.now();
    if (!force && this.status === Status.ACTIVE && now - this._last < THROTTLE_MS) return;
    this._last = now;
    this._set(Status.ACTIVE);
    this._clear();
    this._timers.push(setTimeout(() => this._set(Status.IDLE), this.idleAfterMs));
    this._timers.push(setTimeout(() => this._set(Status.AWAY), this.awayAfterMs));
  }
}

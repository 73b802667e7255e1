/**
 * Browsing the earlier versions of a regenerated agent reply ("2/3", with previous / next).
 *
 * Pure state, no DOM: which version of each reply is shown, and the earlier versions fetched once
 * per reply from the REST API (`GET .../messages/{id}/versions/`, through the page's `fetchVersions`).
 * Where there is no REST access (the embedded widget) there is nothing to browse: the reply shows
 * its current version and says which it is.
 */

export class VersionBrowser {
  /** @param {((id: string) => Promise<{results: Array<object>}>) | null} fetchVersions */
  constructor(fetchVersions) {
    this.fetchVersions = fetchVersions;
    /** id -> {current, shown, versions: Map<number, object>} */
    this.state = new Map();
  }

  get enabled() {
    return typeof this.fetchVersions === "function";
  }

  /** `{shown, total}` for a reply with earlier versions, else null; a newer current version resets it. */
  position(item) {
    const total = item.version ?? 1;
    if (!this.enabled || total < 2 || item.state === "streaming") return null;
    const entry = this.state.get(item.id);
    if (!entry || entry.current !== total) return { shown: total, total };
    return { shown: entry.shown, total };
  }

  /** The earlier version shown instead of the current one (`{content, contentType, html}`), or null. */
  shownVersion(item) {
    const position = this.position(item);
    if (!position || position.shown === position.total) return null;
    return this.state.get(item.id)?.versions.get(position.shown) ?? null;
  }

  /** Show the previous (-1) or next (+1) version; true when something changed. */
  async step(item, delta) {
    const position = this.position(item);
    if (!position) return false;
    const shown = Math.min(position.total, Math.max(1, position.shown + delta));
    if (shown === position.shown) return false;
    let entry = this.state.get(item.id);
    if (!entry || entry.current !== position.total) {
      const body = await this.fetchVersions(item.id);
      const versions = new Map((body?.results ?? []).map((v) => [v.version, v]));
      entry = { current: position.total, shown: position.total, versions };
      this.state.set(item.id, entry);
    }
    if (shown !== position.total && !entry.versions.has(shown)) return false;
    entry.shown = shown;
    return true;
  }
}

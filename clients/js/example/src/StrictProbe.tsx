/**
 * Counts how often React ran its effect on mount: twice under strict mode in a
 * development build.  The browser tests read `window.__strictMountEffects` to
 * know strict mode was really on while the chat opened one connection.
 */

import { useEffect } from "react";

declare global {
  interface Window {
    __strictMountEffects?: number;
  }
}

export function StrictProbe() {
  useEffect(() => {
    window.__strictMountEffects = (window.__strictMountEffects ?? 0) + 1;
  }, []);
  return null;
}

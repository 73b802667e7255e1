/**
 * The example app, served by Vite in front of the chat server.
 *
 * Vite proxies the chat server's paths (the socket, the REST API, log in and
 * out, its static files), so the page, its cookies and its socket share one
 * origin, as they would behind a deployment's reverse proxy.  The chat
 * server is CHAT_SERVER (default http://127.0.0.1:8000, `make run`).
 *
 *   npm run example                       (dev server, http://127.0.0.1:5173/)
 *   npm run build:example && npx vite preview --config example/vite.config.ts   (the built app)
 */

import { defineConfig } from "vite";

const target = process.env.CHAT_SERVER ?? "http://127.0.0.1:8000";
const proxy = {
  "/socket.io": { target, ws: true },
  "/api": { target },
  "/login": { target },
  "/logout": { target },
  "/static": { target },
};

export default defineConfig({
  root: import.meta.dirname,
  server: { host: "127.0.0.1", port: 5173, proxy },
  preview: { host: "127.0.0.1", port: 4173, proxy },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
});

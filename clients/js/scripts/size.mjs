#!/usr/bin/env node
/**
 * Package sizes as an application ships them: each package's ESM build bundled
 * by esbuild with everything it imports from other packages left out
 * (socket.io-client, react, @chatserver/client), minified, then gzipped (level 9).
 * socket.io-client is measured the same way for reference.   `npm run size`
 */

import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";

import { build } from "esbuild";

async function measure(label, entry, external) {
  const result = await build({
    stdin: { contents: entry, resolveDir: process.cwd(), loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2020",
    platform: "browser",
    write: false,
    external,
    logLevel: "silent",
  });
  const code = result.outputFiles[0].contents;
  return { label, minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

const rows = [
  await measure("@chatserver/client", 'export * from "@chatserver/client";', ["socket.io-client"]),
  await measure("@chatserver/react", 'export * from "@chatserver/react";', [
    "react",
    "react-dom",
    "react/jsx-runtime",
    "@chatserver/client",
    "socket.io-client",
  ]),
  await measure("socket.io-client (reference)", 'export * from "socket.io-client";', []),
];
const css = readFileSync("packages/react/dist/styles.css", "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\s+/g, " ");
rows.push({ label: "@chatserver/react/styles.css", minified: css.length, gzipped: gzipSync(css, { level: 9 }).length });

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} kB`;
console.log("| package | minified | minified + gzip |\n|---|---:|---:|");
for (const row of rows) console.log(`| ${row.label} | ${kb(row.minified)} | ${kb(row.gzipped)} |`);

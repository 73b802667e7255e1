#!/usr/bin/env node
/**
 * Builds the package in the current directory with tsc, twice:
 *   dist/esm  ES modules + declarations   (package.json "import")
 *   dist/cjs  CommonJS + declarations     (package.json "require")
 * each with a package.json naming its module type, plus src/*.css copied to dist/.
 */

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const run = (...args) => {
  try {
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.json", ...args], { stdio: "inherit" });
  } catch {
    process.exit(1); // tsc printed why
  }
};

rmSync("dist", { recursive: true, force: true });
run("--outDir", "dist/esm");
run("--outDir", "dist/cjs", "--module", "commonjs", "--moduleResolution", "node10", "--verbatimModuleSyntax", "false");
writeFileSync("dist/esm/package.json", '{ "type": "module" }\n');
writeFileSync("dist/cjs/package.json", '{ "type": "commonjs" }\n');
if (existsSync("src")) {
  mkdirSync("dist", { recursive: true });
  for (const name of readdirSync("src")) if (name.endsWith(".css")) copyFileSync(join("src", name), join("dist", name));
}

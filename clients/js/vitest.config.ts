import { fileURLToPath } from "node:url";

import { defineConfig } from "vitest/config";

const react18 = (name: string) => fileURLToPath(new URL(`./react18/node_modules/${name}`, import.meta.url));

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "client", include: ["packages/client/test/**/*.test.ts", "scripts/**/*.test.mjs"], environment: "node" },
      },
      {
        test: { name: "react19", include: ["packages/react/test/**/*.test.tsx"], environment: "happy-dom" },
      },
      {
        resolve: {
          alias: [
            { find: /^react$/, replacement: react18("react") },
            { find: /^react\/(.*)$/, replacement: `${react18("react")}/$1` },
            { find: /^react-dom$/, replacement: react18("react-dom") },
            { find: /^react-dom\/(.*)$/, replacement: `${react18("react-dom")}/$1` },
          ],
        },
        test: { name: "react18", include: ["packages/react/test/**/*.test.tsx"], environment: "happy-dom" },
      },
    ],
  },
});
